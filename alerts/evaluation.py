"""Alert rule evaluation (PRODUCT.md section 7), run by Celery beat every few seconds.

Per threshold rule, one set-based query gives each matching series' window aggregate
(``store.window_values``); per PromQL rule, one instant query through ``query/`` gives every
series in breach. Per instance (and, for PromQL rules, per series), the state moves as in
Prometheus:

    inactive → pending (breaching, ``for`` not yet met) → firing → resolved

Pending is a PendingBreach row; firing is an open Alert (one per episode, deduplicated by
fingerprint); recovery resolves it, and a later breach opens a new episode. Each rule's changes
commit in one transaction, so a crash loses at most the rule being evaluated, which the next run
redoes. One run at a time: a PostgreSQL advisory lock makes a second evaluator skip its run.

Before the rules, "instance down" alerts for instances silent for 3 agent intervals (so that
the alerts they inhibit open muted); after them, the ``silenced`` and ``inhibited`` marks,
every instance's status (alerts/instance_status.py) and repeat notices. Every change of an
alert's state goes through alerts/lifecycle.py.
"""

import gc
import json
import logging
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from alerts import instance_status, lifecycle, metrics, recording
from alerts.models import (
    Alert,
    AlertRule,
    PendingBreach,
    Silence,
    fingerprint,
    labels_match,
    rule_fingerprint,
)
from instances import store
from instances.models import Instance
from instances.samples import samples_engine
from query.engine import evaluate
from query.values import QueryError, Vector, without_name

logger = logging.getLogger(__name__)

# Advisory lock key of the evaluation run ("VigilEvl"), as SQL for store.session_lock.
RUN_LOCK = str(0x5669_6769_6C45_766C)


@dataclass
class RunSummary:
    rules: int = 0
    failed_rules: int = 0
    pending: int = 0
    fired: int = 0
    resolved: int = 0
    seconds: float = 0.0


class Pending(NamedTuple):
    """A PendingBreach row as evaluation reads it: a hundred thousand of them are read each
    run, and plain tuples cost a fraction of model instances."""

    pk: int
    since: datetime
    severity: str


@dataclass(frozen=True)
class Observation:
    """One instance's value for a rule (None: no data), and the labels of the series behind it."""

    value: float | None
    labels: dict


@shared_task(name="alerts.evaluate_rules", ignore_result=True)
def evaluate_rules_task() -> None:
    """Celery beat's entry: one run (skipped if another evaluator is already running)."""
    evaluate_rules()


def evaluate_rules(now: datetime | None = None) -> RunSummary | None:
    """Evaluate every enabled rule at ``now``; None if another evaluator holds the run."""
    now = now or timezone.now()
    with store.session_lock(RUN_LOCK) as held, collector_paused():
        if not held:
            logger.info("alert evaluation skipped: another run is in progress")
            return None
        started = time.perf_counter()
        summary = RunSummary()
        instances = {instance.pk: instance for instance in Instance.objects.all()}
        silences = list(Silence.objects.active(now))
        with_alerts = set(
            Alert.objects.filter(resolved_at__isnull=True, rule__isnull=False).values_list(
                "rule_id", flat=True
            )
        )
        # Only evaluation writes pending breaches and the run lock makes it one at a time, so
        # they are read once per run, not once per rule.
        pending = defaultdict(dict)
        for (
            pk,
            rule_id,
            instance_id,
            series_fingerprint,
            since,
            severity,
        ) in PendingBreach.objects.values_list(
            "pk", "rule_id", "instance_id", "fingerprint", "since", "severity"
        ):
            pending[rule_id][(instance_id, series_fingerprint)] = Pending(pk, since, severity)
        # Recording rules first, so alerting rules may read what they record at this time.
        recording.record(now)
        # Instances down before the rules, so that their rules' alerts open already muted.
        watch_instances(instances.values(), silences, now, summary)
        shared, firings = {}, []
        for rule in AlertRule.objects.filter(enabled=True).order_by("pk"):
            summary.rules += 1
            rule_pending = pending.pop(rule.pk, {})
            try:
                if rule.expr:
                    evaluate_promql_rule(
                        rule, instances, silences, now, summary, rule.pk in with_alerts,
                        rule_pending, firings,
                    )  # fmt: skip
                    continue
                evaluate_rule(
                    rule,
                    instances,
                    silences,
                    now,
                    summary,
                    rule.pk in with_alerts,
                    {instance_id: breach for (instance_id, _), breach in rule_pending.items()},
                    shared,
                    firings,
                )
            except (DatabaseError, QueryError) as error:
                # One broken rule (say, a regex PostgreSQL rejects) must not stop the others.
                logger.error("alert rule %s (%s) failed to evaluate: %s", rule.pk, rule.name, error)
                summary.failed_rules += 1
        # The breaches that have lasted their rules' ``for``, all at once (their pending rows
        # go as their alerts open: if this fails, the next run fires them).
        summary.fired += len(lifecycle.fire(firings, silences, now))
        resolve_orphans(now, summary)
        lifecycle.mark_silenced(silences)
        lifecycle.mark_inhibited()
        instance_status.derive_statuses(now)
        lifecycle.send_repeats(silences, now)
        summary.seconds = time.perf_counter() - started
        metrics.observe_evaluation(summary.seconds)
        return summary


@contextmanager
def collector_paused():
    """Pause Python's cyclic garbage collector for a run. A run holds a few hundred thousand
    small objects at once (pending rows, observations), and the collector's repeated passes
    over them were most of the CPU of reading them (90,000 pending rows: 0.78 s with it, 0.31 s
    without); they hold no cycles, and what does is collected once it resumes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def observe(rule: AlertRule, rows: list[store.SeriesValue]) -> dict[object, Observation]:
    """Each instance's value for ``rule`` from its matching series' window values."""
    by_instance = defaultdict(list)
    for row in rows:
        by_instance[row.instance_id].append(row)
    observed = {}
    for instance_id, series in by_instance.items():
        with_data = [row for row in series if row.value is not None]
        if not with_data:
            observed[instance_id] = Observation(None, {})
        elif rule.denominator_matchers is not None:
            numerator = sum(
                row.value for row in with_data if labels_match(row.labels, rule.label_matchers)
            )
            denominator = sum(row.value for row in with_data)
            value = numerator / denominator if denominator else None
            observed[instance_id] = Observation(value, {})
        elif rule.reduce == AlertRule.Reduce.SUM:
            observed[instance_id] = Observation(sum(row.value for row in with_data), {})
        else:
            worst = with_data[0]
            for row in with_data[1:]:
                if rule.worse(row.value, worst.value) != worst.value:
                    worst = row
            observed[instance_id] = Observation(worst.value, worst.labels)
    return observed


class Breaches:
    """PendingBreach changes of one rule, and its open alerts' new values, written in bulk at
    the end of its transaction: a rule firing on a hundred instances is a few statements per
    run, not a hundred."""

    def __init__(self, rule: AlertRule, now: datetime):
        self.rule, self.now = rule, now
        # (instance id, series fingerprint, severity, value, labels) of new pending breaches.
        self.created: list[tuple] = []
        self.updated, self.deleted = [], []
        self.alerts = []

    def save(self) -> None:
        if self.created:
            # From arrays too: a whole fleet turning pending at once is a hundred thousand rows.
            instance_ids, fingerprints, severities, values, labels = zip(*self.created, strict=True)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {PendingBreach._meta.db_table} (rule_id, since, instance_id, "
                    "fingerprint, severity, value, labels) SELECT %s, %s, v.* FROM unnest("
                    "%s::uuid[], %s::text[], %s::text[], %s::float8[], %s::jsonb[]) AS v",
                    [
                        self.rule.pk,
                        self.now,
                        list(instance_ids),
                        list(fingerprints),
                        list(severities),
                        list(values),
                        [json.dumps(one) for one in labels],
                    ],
                )
        if self.updated:
            PendingBreach.objects.bulk_update(self.updated, ["severity", "value", "labels"])
        if self.deleted:
            PendingBreach.objects.filter(pk__in=self.deleted).delete()
        if self.alerts:
            # One statement from arrays: bulk_update's CASE per row costs more in Python than
            # the UPDATE in PostgreSQL.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {Alert._meta.db_table} a SET severity = v.severity, "
                    "value = v.value, message = v.message, labels = v.labels, "
                    "keep_firing_since = v.keep_firing_since FROM unnest(%s::uuid[], %s::text[], "
                    "%s::float8[], %s::text[], %s::jsonb[], %s::timestamptz[]) "
                    "AS v(id, severity, value, message, labels, keep_firing_since) "
                    "WHERE a.id = v.id",
                    [
                        [alert.pk for alert in self.alerts],
                        [alert.severity for alert in self.alerts],
                        [alert.value for alert in self.alerts],
                        [alert.message for alert in self.alerts],
                        [json.dumps(alert.labels) for alert in self.alerts],
                        [alert.keep_firing_since for alert in self.alerts],
                    ],
                )


def evaluate_rule(
    rule,
    instances: dict,
    silences: list,
    now: datetime,
    summary,
    has_alerts: bool,
    pending: dict,
    shared: dict,
    firings: list,
) -> None:
    """Move every (rule, instance) state one step, in one transaction (those that fire are
    added to ``firings``, for the run to open at once).

    ``has_alerts`` False says the rule has no open alert; ``pending`` holds its pending breaches
    by instance id. With neither, nothing needs writing unless something breaches now.
    ``shared`` memoises window queries and observations of them within a run: rules differing
    only in thresholds read the same values.
    """
    scoped = None
    if rule.scope != AlertRule.Scope.ALL:
        scoped = tuple(sorted(pk for pk, instance in instances.items() if rule.in_scope(instance)))
    matchers = rule.label_matchers
    if rule.denominator_matchers is not None:
        matchers = rule.denominator_matchers
    query = (rule.metric, json.dumps(matchers), scoped, rule.window, rule.aggregation)
    if query not in shared:
        shared[query] = samples_engine().window_values(
            rule.metric, matchers, scoped, now - rule.window, now, rule.aggregation
        )
    # What a rule makes of the values depends on these alone: rules differing only in their
    # thresholds, ``for`` or channels observe once.
    numerator = json.dumps(rule.label_matchers) if rule.denominator_matchers is not None else None
    observed = ("observed", query, rule.reduce, rule.comparator, numerator)
    if observed not in shared:
        shared[observed] = observe(rule, shared[query])
    verdicts = {}
    for instance_id, observation in shared[observed].items():
        severity = rule.severity_of(observation.value)
        if observation.value is None:
            if rule.no_data == AlertRule.NoData.KEEP:
                continue
            if rule.no_data == AlertRule.NoData.ALERT:
                severity = rule.no_data_severity
        verdicts[instance_id] = (observation, severity)
    if not has_alerts and not pending and not any(sev for _, sev in verdicts.values()):
        return
    with transaction.atomic():
        open_alerts = {}
        if has_alerts:
            open_alerts = {
                alert.instance_id: alert
                for alert in Alert.objects.select_for_update().filter(
                    rule=rule, resolved_at__isnull=True
                )
            }
        breaches = Breaches(rule, now)
        for instance_id in verdicts.keys() | open_alerts.keys() | pending.keys():
            instance = instances.get(instance_id)
            if instance is None:
                continue
            if instance_id in verdicts:
                observation, severity = verdicts[instance_id]
            elif rule.in_scope(instance) and rule.no_data == AlertRule.NoData.KEEP:
                continue  # its series are gone: no data
            else:
                observation, severity = Observation(None, {}), None
                if rule.in_scope(instance) and rule.no_data == AlertRule.NoData.ALERT:
                    severity = rule.no_data_severity
            step(
                rule,
                instance,
                observation,
                severity,
                open_alerts.get(instance_id),
                pending.get(instance_id),
                breaches,
                silences,
                now,
                summary,
                firings,
            )
        breaches.save()


def evaluate_promql_rule(
    rule,
    instances: dict,
    silences: list,
    now: datetime,
    summary,
    has_alerts: bool,
    pending: dict,
    firings: list,
) -> None:
    """A PromQL rule: every series its expression returns at ``now`` is in breach, as in
    Prometheus; each moves through the same states as a threshold rule's instance, keyed by
    (instance, its labels' fingerprint)."""
    at_ms = int(now.timestamp() * 1000)
    result = evaluate(rule.expr, at_ms, at_ms, 1)
    if not isinstance(result, Vector):
        raise QueryError(f"the expression of rule {rule.name!r} must give an instant vector")
    by_agent = {instance.agent_id: instance for instance in instances.values()}
    verdicts = {}
    for labels, values, present in zip(result.labels, result.values, result.present, strict=True):
        if not present[0]:
            continue
        alert_labels = {**without_name(labels), **rule.labels}
        instance = Instance.named_by_label(alert_labels.get("instance", ""), by_agent)
        instances.setdefault(instance.pk, instance)
        key = (instance.pk, rule_fingerprint(rule.pk, instance.pk, alert_labels))
        verdicts[key] = Observation(float(values[0]), alert_labels)
    if not has_alerts and not pending and not verdicts:
        return
    with transaction.atomic():
        open_alerts = {}
        if has_alerts:
            open_alerts = {
                (alert.instance_id, alert.fingerprint): alert
                for alert in Alert.objects.select_for_update().filter(
                    rule=rule, resolved_at__isnull=True
                )
            }
        breaches = Breaches(rule, now)
        for key in verdicts.keys() | open_alerts.keys() | pending.keys():
            instance = instances.get(key[0])
            if instance is None:
                continue
            observation = verdicts.get(key, Observation(None, {}))
            severity = rule.promql_severity if key in verdicts else None
            step(
                rule, instance, observation, severity, open_alerts.get(key), pending.get(key),
                breaches, silences, now, summary, firings, series_fingerprint=key[1],
            )  # fmt: skip
        breaches.save()


def step(
    rule,
    instance,
    observation,
    severity,
    alert,
    breach: Pending | None,
    breaches,
    silences,
    now,
    summary,
    firings: list,
    series_fingerprint: str = "",
) -> None:
    """One (rule, instance) state transition (for a PromQL rule, of one of its series)."""
    if severity is None:
        if breach is not None:
            breaches.deleted.append(breach.pk)
        if alert is not None and rule.keep_firing_for and keeps_firing(alert, rule, now):
            return
        if alert is not None:
            # With the value it recovered at (None: no data).
            lifecycle.recover(alert, now, value=observation.value)
            summary.resolved += 1
        return
    if alert is not None:
        changes = {
            "severity": severity,
            "value": observation.value,
            "message": rule.describe(observation.value, severity, observation.labels),
            "labels": observation.labels or alert.labels,
            "keep_firing_since": None,
        }
        if severity != alert.severity:
            lifecycle.update_firing(alert, silences, now, **changes)
        elif any(getattr(alert, field) != value for field, value in changes.items()):
            # Same severity, new value: no transition, written in bulk with the others.
            for field, value in changes.items():
                setattr(alert, field, value)
            breaches.alerts.append(alert)
        return
    since = now if breach is None else breach.since
    if now - since < rule.for_duration:
        if breach is None:
            breaches.created.append(
                (instance.pk, series_fingerprint, severity, observation.value, observation.labels)
            )
        elif breach.severity != severity:
            breaches.updated.append(
                PendingBreach(
                    pk=breach.pk,
                    severity=severity,
                    value=observation.value,
                    labels=observation.labels,
                )
            )
        summary.pending += 1
        return
    firings.append(
        lifecycle.Firing(
            rule=rule,
            instance=instance,
            severity=severity,
            value=observation.value,
            labels=observation.labels,
            message=rule.describe(observation.value, severity, observation.labels),
            pending_since=since,
            fingerprint=series_fingerprint,
            breach_id=None if breach is None else breach.pk,
        )
    )


def keeps_firing(alert: Alert, rule, now: datetime) -> bool:
    """As Prometheus's keep_firing_for: a firing alert whose breach has ended fires on for that
    long, counted from the first evaluation that found it over."""
    if alert.keep_firing_since is None:
        alert.keep_firing_since = now
        alert.save(update_fields=["keep_firing_since"])
    return now - alert.keep_firing_since < rule.keep_firing_for


def resolve_orphans(now: datetime, summary) -> None:
    """Open alerts of deleted or disabled rules can never recover by evaluation: resolve them."""
    with transaction.atomic():
        orphans = Alert.objects.select_for_update(of=("self",)).filter(
            Q(rule__isnull=True) | Q(rule__enabled=False),
            source=Alert.Source.RULE,
            resolved_at__isnull=True,
        )
        for alert in orphans:
            lifecycle.recover(alert, now, note="Its rule was disabled or deleted.")
            summary.resolved += 1


def watch_instances(instances, silences: list, now: datetime, summary) -> None:
    """The dead man's switch: an instance silent for 3 agent intervals is down."""
    cutoff = now - timedelta(seconds=3 * settings.AGENT_INTERVAL_SECONDS)
    with transaction.atomic():
        down = {
            alert.instance_id: alert
            for alert in Alert.objects.select_for_update().filter(
                source=Alert.Source.SYSTEM,
                alert_type=Alert.INSTANCE_DOWN,
                resolved_at__isnull=True,
            )
        }
        for instance in instances:
            silent = instance.last_seen is not None and instance.last_seen < cutoff
            alert = down.get(instance.pk)
            if silent and alert is None:
                alert = Alert(
                    instance=instance,
                    source=Alert.Source.SYSTEM,
                    alert_type=Alert.INSTANCE_DOWN,
                    severity=Alert.Severity.CRITICAL,
                    message=f"No data from {instance.name} since "
                    f"{instance.last_seen:%Y-%m-%d %H:%M:%S} UTC",
                    fingerprint=fingerprint(instance.pk, Alert.INSTANCE_DOWN),
                    created_at=now,
                    fired_at=now,
                )
                lifecycle.open_episode(alert, silences, now)
                summary.fired += 1
            elif not silent and alert is not None:
                lifecycle.recover(alert, now)
                summary.resolved += 1
