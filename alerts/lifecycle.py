"""Every change of an alert's state, in one place (PRODUCT.md section 7).

    open ──▶ active ◀──unacknowledge── acknowledged
               │  ──acknowledge──▶        │
               ├──resolve / recover──▶ resolved ◀──┘
               ◀──────────reopen──────────┘

An open episode reported again by its source (``repeat``) or gone worse (``update_firing``)
stays the same episode: one fingerprint, one open episode.

A rule's breach is pending (a PendingBreach row, no alert) until it has lasted the rule's
``for``; ``fire`` then opens the episode. Silences do not change an alert's state: ``silence``
and ``expire`` change what covers it, and its ``silenced`` mark follows.

Each transition locks the alert's row and decides from the row as it is now, not from the
caller's copy, which may be stale: acknowledging an alert that evaluation has just resolved is
refused instead of reopening it. Each saves only the fields it changes, and leaves its audit
event, tells open dashboards and queues its notifications here, all after commit. Evaluation,
the APIs and the views only choose which transition to apply.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import AuditEvent
from alerts import events, grouping, tasks
from alerts.models import (
    Alert,
    AlertRule,
    InhibitRule,
    PendingBreach,
    Silence,
    labels_match,
    match_labels,
    rule_fingerprint,
)
from instances.models import Instance


class Refused(Exception):
    """The transition does not apply to the alert as it is now."""


def covered(silences: list[Silence], alert: Alert) -> bool:
    return any(silence.covers(alert) for silence in silences)


def _lock(alert: Alert) -> None:
    """Lock the alert's row until the transaction ends and read it as it is now."""
    Alert.objects.select_for_update().filter(pk=alert.pk).values_list("pk").get()
    alert.refresh_from_db()


def _save(alert: Alert, fields: list[str]) -> None:
    alert.save(update_fields=fields)
    events.publish_alert_changed(alert)


def _audit(alert: Alert, action: str, actor, token_name: str, note: str) -> None:
    """No user and no token: Vigil itself did it."""
    AuditEvent.record(actor or token_name or None, f"alert.{action}", alert, note=note)


def open_episode(alert: Alert, silences: list[Silence], now: datetime) -> Alert:
    """Open a new episode (``alert`` not saved yet): it fires, notifying unless silenced or
    inhibited (then it notifies when that ends, through ``send_repeats``)."""
    alert.silenced = covered(silences, alert)
    alert.inhibited = alert.pk in inhibited_on_opening([alert])
    muted = alert.silenced or alert.inhibited
    if not muted:
        alert.last_notified_at = now
    alert.save()
    events.publish_alert_changed(alert)
    if not muted:
        tasks.dispatch(alert, "firing")
    return alert


def inhibited_on_opening(alerts: list[Alert]) -> set:
    """The pks of ``alerts``, as they open, that an open alert or one of them inhibits (read
    from the rules' likely sources only, once for all of them: opening is many alerts at once
    when a whole fleet goes down)."""
    labelled = [(alert, alert.match_labels()) for alert in alerts]
    opening = {alert.pk for alert in alerts}
    inhibited = set()
    for rule in InhibitRule.objects.filter(enabled=True):
        if not any(labels_match(labels, rule.target_matchers) for _, labels in labelled):
            continue
        sources = [(source, source.match_labels()) for source in rule.source_candidates()]
        inhibited |= rule.inhibited([*labelled, *sources]) & opening
    return inhibited


class OpenAlert(NamedTuple):
    """An open alert as ``mark_inhibited`` reads it, every run: plain values, not models."""

    pk: uuid.UUID
    instance_id: uuid.UUID
    inhibited: bool


def mark_inhibited() -> None:
    """Keep each open alert's ``inhibited`` mark in step with the other open alerts: muted
    while its source is open, notifying (``send_repeats``) once the source resolves."""
    labelled = [
        (OpenAlert(pk, instance_id, inhibited), match_labels(agent_id, severity, labels, name))
        for pk, instance_id, inhibited, agent_id, severity, labels, name in Alert.objects.filter(
            resolved_at__isnull=True
        ).values_list(
            "pk", "instance_id", "inhibited", "instance__agent_id", "severity", "labels",
            "alert_type",
        )
    ]  # fmt: skip
    inhibited = set()
    for rule in InhibitRule.objects.filter(enabled=True):
        inhibited |= rule.inhibited(labelled)
    changed = [alert for alert, _ in labelled if (alert.pk in inhibited) != alert.inhibited]
    for mark in (True, False):
        pks = [alert.pk for alert in changed if alert.inhibited != mark]
        if pks:
            Alert.objects.filter(pk__in=pks).update(inhibited=mark)
    events.publish_alerts_changed(changed)


@dataclass
class Firing:
    """A rule's breach of an instance (for a PromQL rule, of one series) that has lasted the
    rule's ``for``: the episode ``fire`` opens."""

    rule: AlertRule
    instance: Instance
    severity: str
    value: float | None
    labels: dict
    message: str
    pending_since: datetime
    fingerprint: str
    # Its PendingBreach row (None when the rule has no ``for``), deleted as the alert opens.
    breach_id: int | None


def fire(firings: list[Firing], silences: list[Silence], now: datetime) -> list[Alert]:
    """Pending → firing, for every breach of a run that has lasted its rule's ``for``, at once:
    one transaction inserts the alerts and deletes their pending breaches, one event per batch
    tells open dashboards and one task per batch plans the notices of those not silenced or
    inhibited. A breach whose episode is already open (its fingerprint is taken) opens nothing,
    and its pending row stays deleted. Returns the alerts opened."""
    alerts = [
        Alert(
            instance=firing.instance,
            rule=firing.rule,
            source=Alert.Source.RULE,
            alert_type=firing.rule.name,
            severity=firing.severity,
            peak_severity=firing.severity,
            message=firing.message,
            fingerprint=firing.fingerprint or rule_fingerprint(firing.rule.pk, firing.instance.pk),
            labels=firing.labels,
            value=firing.value,
            created_at=now,
            pending_since=firing.pending_since,
            fired_at=now,
        )
        for firing in firings
    ]
    inhibited = inhibited_on_opening(alerts)
    for alert in alerts:
        alert.silenced = covered(silences, alert)
        alert.inhibited = alert.pk in inhibited
        if not (alert.silenced or alert.inhibited):
            alert.last_notified_at = now
    with transaction.atomic():
        inserted = _insert_opening(alerts)
        breaches = [firing.breach_id for firing in firings if firing.breach_id is not None]
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {PendingBreach._meta.db_table} WHERE id = ANY(%s)", [breaches]
            )
        opened = [alert for alert in alerts if alert.pk in inserted]
        events.publish_alerts_changed(opened)
        tasks.dispatch_many([alert for alert in opened if alert.last_notified_at], "firing")
    return opened


# The columns a new rule alert is written with, and their types; the others are their
# defaults, written as constants, or NULL.
OPENING_COLUMNS = {
    "id": "uuid",
    "instance_id": "uuid",
    "rule_id": "bigint",
    "source": "text",
    "alert_type": "text",
    "severity": "text",
    "peak_severity": "text",
    "message": "text",
    "fingerprint": "text",
    "labels": "jsonb",
    "value": "float8",
    "created_at": "timestamptz",
    "pending_since": "timestamptz",
    "fired_at": "timestamptz",
    "last_notified_at": "timestamptz",
    "silenced": "bool",
    "inhibited": "bool",
}


def _insert_opening(alerts: list[Alert]) -> set:
    """Insert new rule alerts in one statement from arrays (bulk_create's per-value
    preparation of ten thousand rows costs more in Python than the insert in PostgreSQL);
    returns the pks inserted, without those whose fingerprint has an open episode already."""
    if not alerts:
        return set()
    arrays = [
        [json.dumps(alert.labels) for alert in alerts]
        if column == "labels"
        else [getattr(alert, column) for alert in alerts]
        for column in OPENING_COLUMNS
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Alert._meta.db_table} ({', '.join(OPENING_COLUMNS)}, status, "
            "occurrences, acted_by_token, note) SELECT v.*, %s, 1, '', '' FROM unnest("
            + ", ".join(f"%s::{kind}[]" for kind in OPENING_COLUMNS.values())
            + ") AS v ON CONFLICT DO NOTHING RETURNING id",
            [Alert.Status.ACTIVE, *arrays],
        )
        return {pk for (pk,) in cursor.fetchall()}


def update_firing(alert: Alert, silences: list[Silence], now: datetime, **changes) -> bool:
    """An open episode goes on with new details (severity, message, value, ...); a worse
    severity notifies again unless acknowledged or silenced. False when it is resolved."""
    with transaction.atomic():
        _lock(alert)
        if not alert.is_open:
            return False
        severity = changes.get("severity", alert.severity)
        escalated = Alert.SEVERITY_RANK[severity] > Alert.SEVERITY_RANK[alert.severity]
        for field, value in changes.items():
            setattr(alert, field, value)
        fields = list(changes)
        notify = (
            escalated
            and alert.status == Alert.Status.ACTIVE
            and not alert.inhibited
            and not covered(silences, alert)
        )
        if notify:
            alert.last_notified_at = now
            fields.append("last_notified_at")
        _save(alert, fields)
        if notify:
            tasks.dispatch(alert, "firing")
    return True


def repeat(alert: Alert, now: datetime, message: str) -> bool:
    """Its source reports the open episode again (an agent re-posting its alert each cycle):
    counted and dated, with the newest message, and no new notification. False when it is
    resolved."""
    with transaction.atomic():
        _lock(alert)
        if not alert.is_open:
            return False
        alert.occurrences += 1
        alert.last_seen_at = now
        alert.message = message or alert.message
        _save(alert, ["occurrences", "last_seen_at", "message"])
    return True


def acknowledge(alert: Alert, actor=None, note: str = "", token_name: str = "") -> None:
    """Someone is on it: no more repeats. Acknowledging again keeps the first time."""
    with transaction.atomic():
        _lock(alert)
        if not alert.is_open:
            raise Refused("it is resolved; reopen it first")
        alert.status = Alert.Status.ACKNOWLEDGED
        alert.acknowledged_at = alert.acknowledged_at or timezone.now()
        alert.acknowledged_by = actor or alert.acknowledged_by
        alert.note, alert.acted_by_token = note or alert.note, token_name
        _save(alert, ["status", "acknowledged_at", "acknowledged_by", "note", "acted_by_token"])
        _audit(alert, "acknowledge", actor, token_name, note)


def unacknowledge(alert: Alert, actor=None, note: str = "", token_name: str = "") -> None:
    """Nobody is on it after all: it is active again and repeats resume."""
    with transaction.atomic():
        _lock(alert)
        if alert.status != Alert.Status.ACKNOWLEDGED:
            raise Refused(f"it is {alert.status}, not acknowledged")
        _make_active(alert, note, token_name)
        _audit(alert, "unacknowledge", actor, token_name, note)


def reopen(alert: Alert, actor=None, note: str = "", token_name: str = "") -> None:
    """Active again, as if never acknowledged or resolved (an active alert stays as it is)."""
    with transaction.atomic():
        _lock(alert)
        if alert.status == Alert.Status.ACTIVE:
            return
        try:
            with transaction.atomic():
                _make_active(alert, note, token_name)
        except IntegrityError:
            raise Refused("a newer episode of this alert is open; act on that one") from None
        _audit(alert, "reopen", actor, token_name, note)


def _make_active(alert: Alert, note: str, token_name: str) -> None:
    alert.status = Alert.Status.ACTIVE
    alert.acknowledged_at = alert.acknowledged_by = alert.resolved_at = None
    alert.note, alert.acted_by_token = note or alert.note, token_name
    _save(
        alert,
        ["status", "acknowledged_at", "acknowledged_by", "resolved_at", "note", "acted_by_token"],
    )


def resolve(alert: Alert, actor=None, note: str = "", token_name: str = "") -> bool:
    """Someone (or, with no actor and no token, Vigil itself) ends the episode; False when it
    already was."""
    with transaction.atomic():
        if not _close(alert, timezone.now(), note, token_name, {}):
            return False
        _audit(alert, "resolve", actor, token_name, note)
    return True


def recover(alert: Alert, now: datetime, note: str = "", **changes) -> bool:
    """The condition is over (a rule recovered, the source said so): the episode ends, with
    ``changes`` (say, the value it recovered at); False when it already had."""
    with transaction.atomic():
        return _close(alert, now, note, "", changes)


def _close(alert: Alert, now: datetime, note: str, token_name: str, changes: dict) -> bool:
    _lock(alert)
    if not alert.is_open:
        return False
    for field, value in changes.items():
        setattr(alert, field, value)
    alert.status, alert.resolved_at = Alert.Status.RESOLVED, now
    alert.note, alert.acted_by_token = note or alert.note, token_name
    _save(alert, ["status", "resolved_at", "note", "acted_by_token", *changes])
    tasks.dispatch(alert, "resolved")
    return True


def silence(alert: Alert, user, duration: timedelta, comment: str = "") -> Silence:
    """Silence this problem (its rule, instance and labels) from now for ``duration``; the
    alert keeps showing, marked, as does every other open alert the silence covers."""
    now = timezone.now()
    with transaction.atomic():
        created = Silence.objects.create(
            rule=alert.rule,
            instance=alert.instance,
            matchers=[
                {"label": key, "op": "=", "value": str(value)}
                for key, value in sorted(alert.labels.items())
            ],
            starts_at=now,
            ends_at=now + duration,
            created_by=user,
            comment=comment or f"Silenced from the alert {alert.alert_type}.",
        )
        AuditEvent.record(
            user, "silence.create", created, alert=str(alert.pk), ends_at=created.ends_at
        )
        mark_silenced(list(Silence.objects.active(now)))
    alert.refresh_from_db(fields=["silenced"])
    return created


def expire(silence: Silence, actor, alert: Alert | None = None, request=None) -> None:
    """End a silence now, audited (with the alert it was ended from); the alerts it covered
    lose their mark at once and notify again at the next repeat."""
    with transaction.atomic():
        silence.ends_at = min(silence.ends_at, timezone.now())
        silence.save(update_fields=["ends_at"])
        details = {"alert": str(alert.pk)} if alert is not None else {}
        AuditEvent.record(actor, "silence.end", silence, request=request, **details)
        mark_silenced(list(Silence.objects.active()))


def unsilence(alert: Alert, user) -> int:
    """Expire every active silence covering this alert; returns how many."""
    with transaction.atomic():
        ended = alert.covering_silences()
        for covering in ended:
            expire(covering, user, alert=alert)
    alert.refresh_from_db(fields=["silenced"])
    return len(ended)


def mark_silenced(silences: list[Silence]) -> None:
    """Keep each open alert's ``silenced`` mark in step with the active silences."""
    changed = []
    open_alerts = Alert.objects.filter(resolved_at__isnull=True)
    if not silences:
        # Only a marked alert can change: with no silence, an alert storm reads none.
        open_alerts = open_alerts.filter(silenced=True)
    for alert in open_alerts.only(
        "pk", "instance_id", "rule_id", "alert_type", "severity", "labels", "silenced", "status"
    ):
        if covered(silences, alert) != alert.silenced:
            alert.silenced = not alert.silenced
            changed.append(alert)
    if changed:
        Alert.objects.bulk_update(changed, ["silenced"])
        events.publish_alerts_changed(changed)


def send_repeats(silences: list[Silence], now: datetime) -> None:
    """Notify what is due: each alert group's first notice, its changes and its repeats
    (alerts/grouping.py), alerts whose silence or inhibition ended among them."""
    grouping.flush_due(silences, now)
