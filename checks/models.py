"""Checks (PRODUCT.md section 15): uptime probes Vigil runs, and heartbeats that jobs send.

Each check has an instance of its own (agent id ``check:<uuid>``) whose samples are its probe
results, so rules, Explore and PromQL read ``probe_success{instance="check:..."}`` like any
other metric, and whose alerts are the check's down, late and certificate problems.

A check's state moves only through its methods here: ``record_probes`` (probes' results),
``record_ping`` (a heartbeat's ping) and ``watch_heartbeat`` (time passing without one). Each
takes the row lock, so a probe, a ping and the runner never race on one check.
"""

import random
import re
import secrets
import uuid
import zoneinfo
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from croniter import croniter
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.utils import timezone

from accounts.models import AuditEvent
from checks import history, signals
from checks.events import publish_checks_changed
from checks.probes import ProbeResult, resolver_address, status_matches
from checks.safety import is_ip_address, literal_address_reason
from instances import humanize, store
from instances.models import Instance
from instances.samples import samples_engine

CHECK_INSTANCE_TYPE = "check"
MIN_INTERVAL_SECONDS = 20
# A heartbeat's last ping's body is kept up to this size (Healthchecks' default).
PING_BODY_LIMIT_BYTES = 100_000
# Pings kept per check; older ones are deleted as new ones come.
PINGS_KEPT = 100


def new_badge_key() -> str:
    return secrets.token_urlsafe(16)


def new_ping_key() -> str:
    return secrets.token_urlsafe(16)


class CheckGroup(models.Model):
    """Checks that belong together, as a Healthchecks project: shown on one public status page
    (``/status/<slug>/``) when the group has one, and pinged by slug under the group's ping key
    (``/ping/<ping key>/<check slug>``)."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True, help_text="Its status page's address.")
    status_page = models.BooleanField(
        default=False,
        help_text="Show the names and states of its checks at /status/<slug>/, without login.",
    )
    # Not the slug: knowing a status page's address must not let anyone ping its heartbeats.
    ping_key = models.CharField(max_length=32, unique=True, default=new_ping_key, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Check(models.Model):
    class Kind(models.TextChoices):
        HTTP = "http", "HTTP(S)"
        TCP = "tcp", "TCP connect"
        DNS = "dns", "DNS record"
        ICMP = "icmp", "ICMP ping"
        HEARTBEAT = "heartbeat", "Heartbeat"

    class State(models.TextChoices):
        NEW = "new"
        UP = "up"
        LATE = "late"
        DOWN = "down"
        PAUSED = "paused"

    PROBE_KINDS = (Kind.HTTP, Kind.TCP, Kind.DNS, Kind.ICMP)

    # Also the heartbeat's ping key: /ping/<id>.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    instance = models.OneToOneField(
        Instance, on_delete=models.CASCADE, related_name="uptime_check", editable=False
    )
    paused = models.BooleanField(default=False)
    group = models.ForeignKey(
        CheckGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="checks"
    )
    slug = models.SlugField(
        max_length=100,
        blank=True,
        help_text="Heartbeats: also pinged at /ping/<its group's ping key>/<slug>.",
    )

    # Probe targets: the URL for HTTP, host (and port for TCP) for the others.
    url = models.URLField(max_length=2000, blank=True)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    http_method = models.CharField(
        max_length=8,
        default="GET",
        choices=[(method, method) for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")],
    )
    http_headers = models.JSONField(default=dict, blank=True)
    http_body = models.TextField(blank=True)
    expected_statuses = models.CharField(
        max_length=200, default="200-299", help_text="Statuses that mean up, e.g. 200-299,301."
    )
    keyword = models.CharField(max_length=500, blank=True)
    keyword_absent = models.BooleanField(
        default=False, help_text="Up when the keyword is absent rather than present."
    )
    json_path = models.CharField(
        max_length=500,
        blank=True,
        help_text="A dotted path into a JSON answer, e.g. status or checks.0.state.",
    )
    json_expected = models.CharField(
        max_length=500, blank=True, help_text="What the value at the JSON path must be."
    )
    follow_redirects = models.BooleanField(default=True)
    max_redirects = models.PositiveSmallIntegerField(default=10)
    ignore_tls_errors = models.BooleanField(
        default=False, help_text="Probe HTTPS even when its certificate does not verify."
    )
    dns_record_type = models.CharField(
        max_length=8,
        default="A",
        choices=[(t, t) for t in ("A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "SRV", "CAA")],
    )
    dns_expected = models.CharField(max_length=500, blank=True)
    dns_resolver = models.CharField(
        max_length=100, blank=True, help_text="Resolver address[:port]; empty uses the system's."
    )

    interval_seconds = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(MIN_INTERVAL_SECONDS)]
    )
    timeout_seconds = models.FloatField(
        default=10, validators=[MinValueValidator(0.1), MaxValueValidator(60)]
    )
    retries = models.PositiveSmallIntegerField(
        default=1, help_text="Failed probes in a row, after the first, before the check is down."
    )
    jitter_seconds = models.FloatField(
        default=5,
        validators=[MinValueValidator(0)],
        help_text="Each run is moved by up to this much, so checks do not fire in lockstep.",
    )
    certificate_warning_days = models.PositiveSmallIntegerField(default=14)
    certificate_critical_days = models.PositiveSmallIntegerField(default=3)

    # Heartbeats: a ping is due every period (or at each time of the cron expression in the
    # time zone), and the check is late after that, down after the grace too.
    period_seconds = models.PositiveIntegerField(
        default=86_400, validators=[MinValueValidator(MIN_INTERVAL_SECONDS)]
    )
    grace_seconds = models.PositiveIntegerField(default=3_600)
    cron = models.CharField(
        max_length=100, blank=True, help_text="A cron expression; empty uses the period."
    )
    time_zone = models.CharField(max_length=64, default="UTC")
    late_alerts = models.BooleanField(
        default=True,
        help_text="Heartbeats: a warning alert while a ping is overdue. Off, late only shows "
        "(as in Healthchecks) and the alert comes when the grace has passed too.",
    )
    # Pinged by Vigil's own backup runs (checks/backup_heartbeat.py), its schedule following
    # theirs.
    watches_backups = models.BooleanField(default=False, editable=False)
    # Paused because the backups had no enabled schedule: resumed when they have one again (a
    # pause of the user's own stays).
    paused_without_schedule = models.BooleanField(default=False, editable=False)

    # The key of its public SVG badges (/badge/<key>.svg): not the id, which pings use.
    badge_key = models.CharField(max_length=32, unique=True, default=new_badge_key, editable=False)
    state = models.CharField(max_length=8, choices=State.choices, default=State.NEW)
    # Failed probes in a row; down once past ``retries``.
    failures = models.PositiveIntegerField(default=0, editable=False)
    # When the runner next looks at the check: its next probe, or when a heartbeat turns late
    # or down. Null when there is nothing to wait for (paused, a heartbeat never pinged).
    next_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_duration = models.FloatField(null=True, blank=True, editable=False)
    last_reason = models.TextField(blank=True, editable=False)
    certificate_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_ping_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set by /start, cleared by the ping that ends the run; run time is measured from it.
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    created = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(
                fields=["next_run_at"],
                name="check_due",
                condition=models.Q(next_run_at__isnull=False),
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(interval_seconds__gte=MIN_INTERVAL_SECONDS),
                name="check_interval_at_least_20s",
            ),
            models.UniqueConstraint(
                fields=["group", "slug"],
                condition=~models.Q(slug=""),
                name="check_slug_unique_in_group",
                violation_error_message="Another check of this group has this slug.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # A whole save (made, or edited in admin): the instance follows the name and target,
        # and a check just made, paused or resumed gets its next run. The state methods save
        # only their fields and skip this.
        if kwargs.get("update_fields") is None:
            if self.instance_id is None:
                self.instance = Instance.register(
                    self.agent_id, name=self.name, type=CHECK_INSTANCE_TYPE, endpoint=self.target
                )
            else:
                self.instance.update(name=self.name, endpoint=self.target)
            if self._state.adding or self.paused != (self.state == self.State.PAUSED):
                if not self.paused and self.state == self.State.PAUSED:
                    self.state = self.State.NEW
                self.reschedule(timezone.now())
        super().save(*args, **kwargs)
        publish_checks_changed([self.pk])

    def delete_recorded(self, actor, request=None) -> None:
        """Delete the check, audited under ``actor`` (a user, or a token's name): its instance,
        with the samples and alerts, goes with it (ChecksConfig's post_delete), its pings too."""
        with transaction.atomic():
            AuditEvent.record(actor, "check.delete", self, request=request)
            self.delete()

    @property
    def agent_id(self) -> str:
        return f"check:{self.pk}"

    @property
    def is_heartbeat(self) -> bool:
        return self.kind == self.Kind.HEARTBEAT

    @property
    def target(self) -> str:
        """What the check looks at, in a few words."""
        if self.kind == self.Kind.HTTP:
            return self.url
        if self.kind == self.Kind.TCP:
            return f"{self.host}:{self.port}"
        if self.kind == self.Kind.HEARTBEAT:
            return f"/ping/{self.pk}"
        return self.host

    def to_api(self) -> dict:
        """The check as the API shows it: its settings under the names it is made with, and
        its status."""
        settings = {name: getattr(self, name) for name in API_SETTINGS}
        return {
            "id": str(self.pk),
            "kind": self.kind,
            **settings,
            "group": self.group.slug if self.group_id else None,
            "target": self.target,
            "created": self.created.isoformat(),
            **self.status_api(),
        }

    def status_api(self) -> dict:
        """Where the check stands: its state and what its last probe or ping found."""

        def moment(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "state": self.state,
            "last_run_at": moment(self.last_run_at),
            "last_duration": self.last_duration,
            "last_reason": self.last_reason,
            "last_ping_at": moment(self.last_ping_at),
            "certificate_expires_at": moment(self.certificate_expires_at),
            "badge_url": f"/badge/{self.badge_key}.svg",
        }

    def clean(self) -> None:
        errors = {}
        if self.kind == self.Kind.HTTP:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                errors["url"] = "Give an http:// or https:// URL."
            elif reason := literal_address_reason(parts.hostname):
                errors["url"] = reason
        elif self.kind in self.PROBE_KINDS:
            if not self.host:
                errors["host"] = "Give the host to probe."
            elif reason := literal_address_reason(self.host):
                errors["host"] = reason
            if self.kind == self.Kind.TCP and not self.port:
                errors["port"] = "Give the port to connect to."
        if not _is_header_map(self.http_headers):
            errors["http_headers"] = 'An object of header names and values, e.g. {"Accept": "*/*"}.'
        if self.dns_resolver:
            address, _port = resolver_address(self.dns_resolver)
            if not is_ip_address(address):
                errors["dns_resolver"] = "The resolver's IP address, with :port if not 53."
            elif reason := literal_address_reason(address):
                errors["dns_resolver"] = reason
        if self.expected_statuses:
            try:
                status_matches(self.expected_statuses, 200)
            except ValueError:
                errors["expected_statuses"] = "Statuses and ranges, e.g. 200-299,301."
        if self.slug and self.group_id is None:
            errors["slug"] = "A slug is pinged under its group's ping key: choose a group."
        if self.cron and not croniter.is_valid(self.cron):
            errors["cron"] = "Not a cron expression."
        if self.time_zone not in zoneinfo.available_timezones():
            errors["time_zone"] = "Not a time zone name, e.g. Europe/Berlin."
        if errors:
            raise ValidationError(errors)

    def reschedule(self, now: datetime) -> None:
        """Set ``next_run_at`` for the check's state (not saved): a probe soon after now, a
        heartbeat when it would turn late or down, nothing while paused."""
        if self.paused:
            self.state, self.next_run_at = self.State.PAUSED, None
        elif not self.is_heartbeat:
            self.next_run_at = now + timedelta(seconds=random.uniform(0, self.jitter_seconds))
        else:
            self.next_run_at = min(self.heartbeat_deadlines(), default=None)

    def heartbeat_deadlines(self) -> list[datetime]:
        """When a heartbeat's state would next change for want of a ping: late when the ping
        after the last is due, down a grace later, down when a started run outlasts the grace."""
        deadlines = []
        if self.state == self.State.DOWN:
            return deadlines
        if self.started_at is not None:
            deadlines.append(self.started_at + self.grace)
        if self.state == self.State.UP:
            deadlines.append(self.ping_due_after(self.last_ping_at))
        elif self.state == self.State.LATE:
            deadlines.append(self.ping_due_after(self.last_ping_at) + self.grace)
        return deadlines

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.grace_seconds)

    def ping_due_after(self, pinged_at: datetime) -> datetime:
        """When the ping after one at ``pinged_at`` is due."""
        if not self.cron:
            return pinged_at + timedelta(seconds=self.period_seconds)
        zone = zoneinfo.ZoneInfo(self.time_zone)
        return croniter(self.cron, pinged_at.astimezone(zone)).get_next(datetime)

    # --- probes --------------------------------------------------------------------------

    def lock(self) -> bool:
        """Inside a transaction: take the check's row lock and reload it; False if it has been
        deleted meanwhile."""
        try:
            self.refresh_from_db(from_queryset=Check.objects.select_for_update())
        except Check.DoesNotExist:
            return False
        return True

    def next_probe_at(self, now: datetime) -> datetime:
        """When a probe run at ``now`` runs again: an interval on, moved by the jitter."""
        return now + timedelta(
            seconds=self.interval_seconds + random.uniform(0, self.jitter_seconds)
        )

    @classmethod
    def record_probes(cls, results: Sequence[tuple[str, datetime, ProbeResult]]) -> int:
        """Store a batch of probe results, ``(check id, when the probe started, result)``:
        their samples in one write, each check's state moved (down after ``retries`` failures
        in a row past the first, up at the first success) and its problems announced. Checks
        deleted or paused since their probe started are left out; returns how many were not."""
        by_id = {str(pk): (started, result) for pk, started, result in results}
        with transaction.atomic():
            checks = list(
                cls.objects.select_for_update(of=("self",))
                .select_related("instance")
                .filter(pk__in=by_id, paused=False)
                .order_by("pk")
            )
            changes = [check.apply_probe(*by_id[str(check.pk)]) for check in checks]
            cls.objects.bulk_update(checks, PROBE_FIELDS)
            rows = []
            for check in checks:
                started, result = by_id[str(check.pk)]
                rows += check.sample_rows(started, probe_samples(result))
            samples_engine().write_samples(rows)
            Instance.objects.filter(pk__in=[check.instance_id for check in checks]).update(
                last_seen=timezone.now()
            )
            publish_checks_changed([check.pk for check in checks])
            for check, (change, certificate_was_close) in zip(checks, changes, strict=True):
                if change == cls.State.DOWN:
                    check.announce_down(check.last_reason)
                elif change == cls.State.UP:
                    check.announce_over(signals.DOWN, f"{check.name} is up again.")
                check.judge_certificate(check.last_run_at, certificate_was_close)
        return len(checks)

    def apply_probe(self, started: datetime, result: ProbeResult) -> tuple[str | None, bool]:
        """Move the check's fields for a probe's result (not saved). Returns the state it went
        to if it went down or came back up (else None), and whether its certificate was close
        to expiry before."""
        certificate_was_close = self.certificate_is_close(started)
        self.last_run_at, self.last_duration = started, result.duration
        self.last_reason = result.reason
        self.certificate_expires_at = result.certificate_expires_at
        self.failures = 0 if result.success else self.failures + 1
        change = None
        if result.success:
            change = self.State.UP if self.state == self.State.DOWN else None
            self.state = self.State.UP
        elif self.failures > self.retries:
            change = self.State.DOWN if self.state != self.State.DOWN else None
            self.state = self.State.DOWN
        return change, certificate_was_close

    def certificate_is_close(self, now: datetime) -> bool:
        return (
            self.certificate_expires_at is not None
            and self.certificate_expires_at - now < timedelta(days=self.certificate_warning_days)
        )

    def judge_certificate(self, now: datetime, was_close: bool) -> None:
        """A certificate close to expiry is a problem of its own, warning then critical; it is
        over when a certificate further off replaces it."""
        if self.certificate_expires_at is None:
            return
        days_left = (self.certificate_expires_at - now).total_seconds() / 86_400
        if days_left < self.certificate_critical_days:
            severity = "critical"
        elif days_left < self.certificate_warning_days:
            severity = "warning"
        else:
            if was_close:
                self.announce_over(
                    signals.CERTIFICATE, f"The certificate of {self.name} is renewed."
                )
            return
        self.announce(
            signals.CERTIFICATE,
            severity,
            f"The TLS certificate of {self.name} ({self.target}) expires in {days_left:.0f} "
            f"days, on {self.certificate_expires_at:%Y-%m-%d %H:%M} UTC.",
        )

    def announce(self, problem: str, severity: str, message: str) -> None:
        signals.problem_started.send(
            Check, instance=self.instance, problem=problem, severity=severity, message=message
        )

    def announce_down(self, reason: str) -> None:
        self.announce(signals.DOWN, "critical", f"{self.name} ({self.target}) is down: {reason}")

    def announce_over(self, problem: str, message: str) -> None:
        signals.problem_ended.send(Check, instance=self.instance, problem=problem, message=message)

    def sample_rows(self, ts: datetime, values: dict[str, float]) -> list[tuple]:
        """``(series id, ts, value)`` rows of the check's results: samples of its instance, one
        series per metric name."""
        keys = [store.SeriesKey(name, {}, UNITS.get(name, "")) for name in values]
        series = store.resolve_series(self.instance_id, keys)
        return [(series[(key.name, key.labels_key)], ts, values[key.name]) for key in keys]

    def write_samples(self, now: datetime, values: dict[str, float]) -> None:
        samples_engine().write_samples(self.sample_rows(now, values))
        Instance.objects.filter(pk=self.instance_id).update(last_seen=now)

    def uptime(self, window: timedelta) -> float | None:
        """The share of the window's probes (or heartbeat pings) that succeeded; None without
        any."""
        return history.uptimes([self], window)[self.pk]

    # --- heartbeats ----------------------------------------------------------------------

    def record_ping(self, kind: str, now: datetime, body: bytes = b"", **details) -> "Ping":
        """A heartbeat ping: ``start`` begins a run, ``success`` and ``fail`` end one (and say
        how it went). The ping is stored with its body; a paused check resumes, as in
        Healthchecks; the state moves and problems are announced or declared over."""
        with transaction.atomic():
            self.refresh_from_db(from_queryset=Check.objects.select_for_update())
            run_time = None
            if kind != Ping.Kind.START and self.started_at is not None:
                run_time = (now - self.started_at).total_seconds()
            publish_checks_changed([self.pk])
            ping = Ping.objects.create(
                heartbeat=self,
                kind=kind,
                created=now,
                body=body[:PING_BODY_LIMIT_BYTES].decode(errors="replace"),
                duration=run_time,
                **details,
            )
            older = Ping.objects.filter(heartbeat=self).order_by("-created")[PINGS_KEPT:]
            Ping.objects.filter(pk__in=older.values("pk")).delete()
            if kind == Ping.Kind.START:
                self.started_at = now
                if not self.paused:
                    self.reschedule(now)
                self.save(update_fields=["started_at", "next_run_at"])
                return ping
            was = self.state
            succeeded = kind == Ping.Kind.SUCCESS
            self.started_at, self.last_ping_at, self.paused = None, now, False
            self.state = self.State.UP if succeeded else self.State.DOWN
            self.last_reason = "" if succeeded else _failure_reason(details)
            self.reschedule(now)
            self.save(
                update_fields=[
                    "started_at",
                    "last_ping_at",
                    "paused",
                    "state",
                    "last_reason",
                    "next_run_at",
                ]
            )
            samples = {"probe_success": float(succeeded)}
            if run_time is not None:
                samples["probe_duration_seconds"] = run_time
            self.write_samples(now, samples)
            if was == self.State.LATE:
                self.announce_over(signals.LATE, f"{self.name} pinged.")
            if not succeeded:
                self.announce_down(self.last_reason)
            elif was == self.State.DOWN:
                self.announce_over(signals.DOWN, f"{self.name} pinged and is up again.")
            return ping

    def watch_heartbeat(self, now: datetime) -> None:
        """A deadline of the heartbeat has come: late once a ping is overdue, down once the
        grace has passed too, or once a started run has outlasted the grace."""
        with transaction.atomic():
            if not self.lock() or self.paused or self.state == self.State.DOWN:
                return
            was = self.state
            self.state, self.last_reason = self.heartbeat_state_at(now)
            self.reschedule(now)
            self.save(update_fields=["state", "last_reason", "next_run_at"])
            publish_checks_changed([self.pk])
            if self.state == was:
                return
            if self.state == self.State.DOWN:
                self.write_samples(now, {"probe_success": 0.0})
                if was == self.State.LATE:
                    self.announce_over(signals.LATE, f"{self.name} is down, no longer late.")
                self.announce_down(self.last_reason)
            elif self.late_alerts:
                self.announce(signals.LATE, "warning", f"{self.name} is {self.last_reason}.")

    def heartbeat_state_at(self, now: datetime) -> tuple[str, str]:
        """The heartbeat's state at ``now`` given the pings it had, and why."""
        if self.started_at is not None and now >= self.started_at + self.grace:
            return self.State.DOWN, (
                f"a run started at {self.started_at:%Y-%m-%d %H:%M:%S} UTC did not finish "
                f"within {humanize.duration(self.grace)}"
            )
        if self.last_ping_at is None:
            return self.state, self.last_reason
        due = self.ping_due_after(self.last_ping_at)
        overdue = f"no ping since {self.last_ping_at:%Y-%m-%d %H:%M:%S} UTC"
        if now >= due + self.grace:
            return self.State.DOWN, overdue
        if now >= due:
            return self.State.LATE, f"late: {overdue}"
        return self.state, self.last_reason


class Ping(models.Model):
    """One ping of a heartbeat check, with what the job sent."""

    class Kind(models.TextChoices):
        START = "start"
        SUCCESS = "success"
        FAIL = "fail"

    id = models.BigAutoField(primary_key=True)
    heartbeat = models.ForeignKey(Check, on_delete=models.CASCADE, related_name="pings")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    created = models.DateTimeField(default=timezone.now)
    exit_status = models.PositiveSmallIntegerField(null=True, blank=True)
    method = models.CharField(max_length=8, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    # Run time, from the /start before it.
    duration = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["heartbeat", "-created"])]

    def __str__(self) -> str:
        return f"{self.kind} ping of {self.heartbeat_id} at {self.created:%Y-%m-%d %H:%M:%S}"


# The settings the API shows (and takes) under their own names.
API_SETTINGS = [
    "name",
    "slug",
    "paused",
    "url",
    "host",
    "port",
    "http_method",
    "http_headers",
    "http_body",
    "expected_statuses",
    "keyword",
    "keyword_absent",
    "json_path",
    "json_expected",
    "follow_redirects",
    "max_redirects",
    "ignore_tls_errors",
    "dns_record_type",
    "dns_expected",
    "dns_resolver",
    "interval_seconds",
    "timeout_seconds",
    "retries",
    "jitter_seconds",
    "certificate_warning_days",
    "certificate_critical_days",
    "period_seconds",
    "grace_seconds",
    "cron",
    "time_zone",
    "late_alerts",
]
# What a probe's result changes on its check.
PROBE_FIELDS = [
    "last_run_at",
    "last_duration",
    "last_reason",
    "certificate_expires_at",
    "failures",
    "state",
]
UNITS = {"probe_duration_seconds": "seconds", "probe_dns_lookup_time_seconds": "seconds"}


def probe_samples(result: ProbeResult) -> dict[str, float]:
    """A probe's result under the blackbox exporter's metric names."""
    samples = {"probe_success": float(result.success), "probe_duration_seconds": result.duration}
    if result.http_status is not None:
        samples["probe_http_status_code"] = float(result.http_status)
    if result.certificate_expires_at is not None:
        samples["probe_ssl_earliest_cert_expiry"] = result.certificate_expires_at.timestamp()
    if result.dns_lookup_seconds is not None:
        samples["probe_dns_lookup_time_seconds"] = result.dns_lookup_seconds
    if result.packet_loss is not None:
        samples["probe_icmp_packet_loss_ratio"] = result.packet_loss
    return samples


HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _is_header_map(headers) -> bool:
    """Header names are HTTP tokens; values are text without line breaks."""
    return isinstance(headers, dict) and all(
        HEADER_NAME.fullmatch(name) and isinstance(value, str) and not re.search(r"[\r\n\0]", value)
        for name, value in headers.items()
    )


def _failure_reason(details: dict) -> str:
    if details.get("exit_status"):
        return f"the job exited with status {details['exit_status']}"
    return "the job reported a failure"
