import hashlib
import re
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, URLValidator
from django.db import models
from django.utils import timezone
from django.utils.functional import cached_property

from accounts.models import AuditEvent
from config.encryption import EncryptedJSONField, EncryptedTextField
from instances import humanize
from instances.formats import iso8601
from instances.models import Instance
from instances.store import WINDOW_AGGREGATES
from query.engine import parse
from query.values import QueryError

# The seed API's severities, taken as Vigil's.
SEED_SEVERITIES = {"low": "info", "medium": "warning", "high": "error"}

# Label matcher operators, as in Prometheus selectors; regexes match the whole value.
MATCHER_OPS = ("=", "!=", "=~", "!~")


def parse_severity(raw: str) -> str:
    """A Vigil severity from Vigil's names or the seed's ``low`` ``medium`` ``high``."""
    severity = SEED_SEVERITIES.get(raw.lower(), raw.lower())
    if severity not in Alert.Severity.values:
        accepted = ", ".join([*Alert.Severity.values, *SEED_SEVERITIES])
        raise ValueError(f"must be one of {accepted}")
    return severity


def fingerprint(instance_id, alert_type: str) -> str:
    """What makes two alerts the same problem, for deduplication."""
    return hashlib.sha256(f"{instance_id}\x00{alert_type}".encode()).hexdigest()


def agent_fingerprint(instance_id, alert_type: str, severity: str) -> str:
    """An agent's alert (``POST /api/v1/alerts``) is one problem per instance, type and
    severity: posting it again goes on with the open episode."""
    return fingerprint(instance_id, f"api:{alert_type}\x00{severity}")


def rule_fingerprint(rule_id, instance_id, labels: dict | None = None) -> str:
    """A rule's alerts on one instance are one problem, whatever the rule is renamed to; a
    PromQL rule's are one per label set of the series it returned."""
    if labels is None:
        return fingerprint(instance_id, f"rule:{rule_id}")
    canonical = "\x00".join(f"{key}={value}" for key, value in sorted(labels.items()))
    return fingerprint(instance_id, f"rule:{rule_id}:{canonical}")


# {{ $labels.name }}, {{ $value }} and {{ $value | humanize }}: the parts of Prometheus's alert
# templates that rules use to say what broke; anything else is left as written.
TEMPLATE_FIELD = re.compile(
    r"\{\{\s*\$(labels\.([a-zA-Z_][a-zA-Z0-9_]*)|value)\s*(\|\s*humanize\s*)?\}\}"
)


def render_template(template: str, labels: dict, value: float | None) -> str:
    def field(found: re.Match) -> str:
        if found.group(2) is not None:
            return labels.get(found.group(2), "")
        if value is None:
            return ""
        return humanize.quantity(value) if found.group(3) else f"{value:g}"

    return TEMPLATE_FIELD.sub(field, template)


def match_labels(agent_id: str, severity: str, labels: dict, alert_type: str) -> dict:
    """An alert's labels as matchers see them (``Alert.match_labels``), from its columns."""
    return {"instance": agent_id, "severity": severity, **labels, "alertname": alert_type}


def validate_matchers(matchers) -> None:
    """Matchers are ``[{"label": ..., "op": "=" | "!=" | "=~" | "!~", "value": ...}, ...]``."""
    if not isinstance(matchers, list):
        raise ValidationError("must be a list of {label, op, value} objects")
    for index, matcher in enumerate(matchers):
        if not isinstance(matcher, dict) or set(matcher) != {"label", "op", "value"}:
            raise ValidationError(f"matcher {index}: must have exactly label, op and value")
        if matcher["op"] not in MATCHER_OPS:
            raise ValidationError(f"matcher {index}: op must be one of {', '.join(MATCHER_OPS)}")
        if not all(isinstance(matcher[key], str) for key in ("label", "value")):
            raise ValidationError(f"matcher {index}: label and value must be strings")
        if matcher["op"] in ("=~", "!~"):
            try:
                re.compile(matcher["value"])
            except re.error as error:
                raise ValidationError(f"matcher {index}: bad regex: {error}") from None


def labels_match(labels: dict, matchers: list) -> bool:
    """Whether a label set satisfies every matcher (a missing label counts as "")."""
    for matcher in matchers:
        value = str(labels.get(matcher["label"], ""))
        op, wanted = matcher["op"], matcher["value"]
        if op == "=" and value != wanted or op == "!=" and value == wanted:
            return False
        if op in ("=~", "!~") and (re.fullmatch(wanted, value) is None) == (op == "=~"):
            return False
    return True


def matchers_text(matchers: list) -> str:
    """Label matchers as Prometheus writes them: ``{alertname="instance_down",mount=~"/.*"}``."""
    return "{" + ",".join(f'{m["label"]}{m["op"]}"{m["value"]}"' for m in matchers) + "}"


def validate_http_url(value: str) -> None:
    """Channels send over HTTP only: any other scheme (file:, ftp:, gopher: …) is refused."""
    if urlsplit(value).scheme.lower() not in ("http", "https"):
        raise ValidationError(
            "Enter an http:// or https:// URL; other kinds of address are refused.",
            code="scheme",
        )
    URLValidator(schemes=["http", "https"])(value)


def _strings_in(value) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [text for item in value for text in _strings_in(item)]
    return []


class NotificationChannel(models.Model):
    """Where notifications go: a mailbox, a chat room, a pager or any webhook receiver."""

    class Kind(models.TextChoices):
        EMAIL = "email"
        SLACK = "slack"
        GOOGLE_CHAT = "google_chat", "Google Chat"
        TEAMS = "teams", "Microsoft Teams"
        DISCORD = "discord"
        TELEGRAM = "telegram"
        NTFY = "ntfy"
        PAGERDUTY = "pagerduty", "PagerDuty"
        OPSGENIE = "opsgenie", "Opsgenie"
        WEBHOOK = "webhook"

    # Severity routing (PRODUCT.md 7): critical pages, warnings go to chat and email.
    DEFAULT_SEVERITIES = {
        Kind.EMAIL: ["critical", "error", "warning"],
        Kind.SLACK: ["critical", "error", "warning"],
        Kind.GOOGLE_CHAT: ["critical", "error", "warning"],
        Kind.TEAMS: ["critical", "error", "warning"],
        Kind.DISCORD: ["critical", "error", "warning"],
        Kind.TELEGRAM: ["critical", "error", "warning"],
        Kind.NTFY: ["critical", "error", "warning"],
        Kind.PAGERDUTY: ["critical"],
        Kind.OPSGENIE: ["critical"],
        Kind.WEBHOOK: ["critical", "error", "warning", "info"],
    }
    # Kinds whose target may stay empty: the provider's public API is the default.
    PROVIDER_DEFAULT_URLS = {
        Kind.PAGERDUTY: "PagerDuty Events API",
        Kind.OPSGENIE: "Opsgenie API",
        Kind.TELEGRAM: "Telegram Bot API",
        Kind.NTFY: "ntfy.sh",
    }
    # Kinds that cannot send without their secret (routing key, API key, bot token).
    SECRET_NEEDED = {
        Kind.PAGERDUTY: "PagerDuty needs its integration's routing key",
        Kind.OPSGENIE: "Opsgenie needs an API integration's key",
        Kind.TELEGRAM: "Telegram needs the bot's token",
    }
    # Options kept in ``config`` that a kind cannot do without.
    CONFIG_NEEDED = {
        Kind.TELEGRAM: {"chat_id": "Telegram needs the chat to post in"},
        Kind.NTFY: {"topic": "ntfy needs the topic to publish to"},
    }

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # A chat webhook's URL is its credential: target, secret and config are encrypted in the
    # database (config/encryption.py), for every kind alike.
    target = EncryptedTextField(
        blank=True,
        help_text="Webhook URL, or comma-separated email addresses. PagerDuty, Opsgenie, "
        "Telegram, ntfy: optional API URL (default: the provider's).",
    )
    secret = EncryptedTextField(
        blank=True,
        help_text="Webhook HMAC key, PagerDuty routing key, Opsgenie API key, Telegram bot "
        "token or ntfy access token.",
    )
    config = EncryptedJSONField(
        default=dict,
        blank=True,
        help_text="Options of the kind: Telegram chat_id, ntfy topic, email info_digest.",
    )
    severities = models.JSONField(
        default=list,
        blank=True,
        help_text="Severities this channel receives; empty means the default for its kind.",
    )
    message_template = models.TextField(
        blank=True,
        help_text="The words of each notice, as a Django template; empty: the kind's default.",
    )
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def clean(self) -> None:
        unknown = set(self.severities or []) - set(Alert.Severity.values)
        if unknown:
            raise ValidationError({"severities": f"unknown severities: {sorted(unknown)}"})
        if self.kind in self.SECRET_NEEDED and not self.secret:
            raise ValidationError({"secret": self.SECRET_NEEDED[self.kind]})
        for key, problem in self.CONFIG_NEEDED.get(self.kind, {}).items():
            if not str((self.config or {}).get(key, "")).strip():
                raise ValidationError(problem)
        if self.kind not in self.PROVIDER_DEFAULT_URLS and not self.target:
            raise ValidationError({"target": "required for this kind"})
        if self.kind != self.Kind.EMAIL and self.target:
            try:
                validate_http_url(self.target)
            except ValidationError as error:
                raise ValidationError({"target": error.messages}) from error

    @property
    def destination(self) -> str:
        """Where it sends, safe to show: addresses, or a URL's host (a chat webhook's path is
        its secret)."""
        if self.kind == self.Kind.EMAIL:
            return self.target
        if not self.target:
            return self.PROVIDER_DEFAULT_URLS.get(self.kind, "")
        return urlsplit(self.target).netloc or self.target

    def redact(self, text: str) -> str:
        """``text`` with this channel's secrets (a webhook URL's path and query, its secret, its
        options' values) replaced by ``[redacted]``; a URL keeps its host, to say where it went."""
        secrets = [self.secret, *_strings_in(self.config)]
        if self.kind != self.Kind.EMAIL and self.target:
            url = urlsplit(self.target)
            hidden = url.path + (f"?{url.query}" if url.query else "")
            text = text.replace(self.target, f"{url.scheme}://{url.hostname}/[redacted]")
            secrets += [hidden, url.path, url.query, url.password or "", url.username or ""]
        # Longest first, so a secret that contains another is replaced whole; very short
        # values ("/", "on") would only garble the text.
        for secret in sorted(set(secrets), key=len, reverse=True):
            if len(secret) >= 6:
                text = text.replace(secret, "[redacted]")
        return text

    @property
    def email_addresses(self) -> list[str]:
        """An e-mail channel's recipients, from its comma-separated target."""
        return [address.strip() for address in self.target.split(",") if address.strip()]

    @property
    def takes_info_digest(self) -> bool:
        """An e-mail channel gets the daily info digest unless its ``info_digest`` is off."""
        return self.kind == self.Kind.EMAIL and self.config.get("info_digest", True) is not False

    @property
    def routed_severities(self) -> list[str]:
        return self.severities or self.DEFAULT_SEVERITIES[self.kind]

    def routes(self, severity: str) -> bool:
        return severity in self.routed_severities


class AlertRuleQuerySet(models.QuerySet):
    def with_firing(self) -> "AlertRuleQuerySet":
        """Each rule with ``firing``: how many of its alerts are open (acknowledged or not),
        and how many of those are ``silenced`` and ``inhibited``."""
        open_alerts = models.Q(alerts__resolved_at__isnull=True)
        return self.annotate(
            firing=models.Count("alerts", filter=open_alerts),
            silenced=models.Count("alerts", filter=open_alerts & models.Q(alerts__silenced=True)),
            inhibited=models.Count("alerts", filter=open_alerts & models.Q(alerts__inhibited=True)),
        )


class AlertRule(models.Model):
    """A condition evaluated every few seconds: a threshold over one metric, or a PromQL
    expression.

    A threshold rule compares ``aggregation`` of each matching series over the last ``window``,
    for every instance in scope; an instance with several matching series is judged by its worst
    one (or their sum). With ``denominator_matchers`` set, the value is sum(matching series) /
    sum(series matching the denominator), e.g. successful requests over all requests.

    A PromQL rule (``expr`` set) is a Prometheus alerting rule: every series the expression
    returns is a breach, of the instance its ``instance`` label names (else of Vigil itself),
    labelled with the series' labels and the rule's ``labels`` (``severity`` among them).
    """

    class Scope(models.TextChoices):
        ALL = "all", "All instances"
        INSTANCE = "instance", "One instance"
        TYPE = "type", "Instances of a type"
        REGION = "region", "Instances in a region"

    class Comparator(models.TextChoices):
        GT = ">"
        GE = ">="
        LT = "<"
        LE = "<="

    class NoData(models.TextChoices):
        OK = "ok", "Treat as OK (resolves)"
        KEEP = "keep", "Keep the last state"
        ALERT = "alert", "Alert"

    class Reduce(models.TextChoices):
        WORST = "worst", "Worst series"
        SUM = "sum", "Sum of series"

    Aggregation = models.TextChoices("Aggregation", [(key, key) for key in WINDOW_AGGREGATES])

    name = models.CharField(max_length=100, unique=True)
    expr = models.TextField(
        "PromQL expression",
        blank=True,
        help_text="Set to make this a PromQL rule: every series it returns is an alert.",
    )
    labels = models.JSONField(
        default=dict,
        blank=True,
        help_text='Added to its alerts\' labels, e.g. {"severity": "critical"}.',
    )
    annotations = models.JSONField(
        default=dict,
        blank=True,
        help_text="summary and description, with {{ $labels.name }} and {{ $value }}.",
    )
    metric = models.CharField(max_length=200, blank=True)
    label_matchers = models.JSONField(
        default=list,
        blank=True,
        help_text='[{"label": "mount", "op": "=", "value": "/"}]; op is = != =~ or !~',
        validators=[validate_matchers],
    )
    denominator_matchers = models.JSONField(
        null=True,
        blank=True,
        help_text="Set (even to []) to compare a ratio: matching series over these series.",
        validators=[validate_matchers],
    )
    reduce = models.CharField(max_length=8, choices=Reduce.choices, default=Reduce.WORST)
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.ALL)
    scope_instance = models.ForeignKey(
        Instance, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    scope_value = models.CharField(max_length=100, blank=True, help_text="The type or region.")
    aggregation = models.CharField(max_length=8, choices=Aggregation.choices, default="avg")
    window = models.DurationField(default=timedelta(minutes=1))
    comparator = models.CharField(max_length=2, choices=Comparator.choices, default=Comparator.GT)
    warning_threshold = models.FloatField(null=True, blank=True)
    critical_threshold = models.FloatField(null=True, blank=True)
    for_duration = models.DurationField(
        "for", default=timedelta(minutes=2), help_text="How long it must breach before firing."
    )
    keep_firing_for = models.DurationField(
        default=timedelta(0),
        help_text="How long a firing alert stays firing after its breach ends.",
    )
    no_data = models.CharField(max_length=8, choices=NoData.choices, default=NoData.KEEP)
    channels = models.ManyToManyField(
        NotificationChannel,
        blank=True,
        related_name="rules",
        help_text="None selected: every enabled channel, by its severity routing.",
    )
    runbook_url = models.URLField(blank=True)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now, editable=False)
    updated = models.DateTimeField(auto_now=True)

    objects = AlertRuleQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.expr:
            self.clean_promql()
            return
        if not self.metric:
            raise ValidationError({"metric": "Name the metric, or give a PromQL expression."})
        if self.warning_threshold is None and self.critical_threshold is None:
            raise ValidationError("Set a warning threshold, a critical threshold or both.")
        if self.scope == self.Scope.INSTANCE and self.scope_instance_id is None:
            raise ValidationError({"scope_instance": "Pick the instance."})
        if self.scope in (self.Scope.TYPE, self.Scope.REGION) and not self.scope_value:
            raise ValidationError({"scope_value": "Name the type or region."})

    @property
    def selector(self) -> str:
        """The metric and its label matchers as a Prometheus selector: ``disk_usage{mount="/"}``."""
        if not self.label_matchers:
            return self.metric
        return f"{self.metric}{matchers_text(self.label_matchers)}"

    def clean_promql(self) -> None:
        try:
            parse(self.expr)
        except QueryError as error:
            raise ValidationError({"expr": str(error)}) from None
        for field in ("labels", "annotations"):
            value = getattr(self, field)
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise ValidationError({field: "Give an object of text values."})
        severity = self.labels.get("severity")
        if severity is not None and severity not in Alert.Severity.values:
            raise ValidationError(
                {"labels": f"severity must be one of {', '.join(Alert.Severity.values)}."}
            )

    @property
    def promql_severity(self) -> str:
        """A PromQL rule's alerts are as severe as its ``severity`` label says."""
        severity = self.labels.get("severity")
        return severity if severity in Alert.Severity.values else Alert.Severity.WARNING

    def set_enabled(self, enabled: bool, user, request=None) -> bool:
        """Turn evaluation on or off, audited; False when it already was.

        A disabled rule's open alerts are resolved by the next evaluation (``resolve_orphans``).
        """
        if self.enabled == enabled:
            return False
        self.enabled = enabled
        self.save(update_fields=["enabled", "updated"])
        action = "alertrule.enable" if enabled else "alertrule.disable"
        AuditEvent.record(user, action, self, request=request)
        return True

    def breaches(self, value: float, threshold: float | None) -> bool:
        if threshold is None:
            return False
        return {
            ">": value > threshold,
            ">=": value >= threshold,
            "<": value < threshold,
            "<=": value <= threshold,
        }[self.comparator]

    def severity_of(self, value: float | None) -> str | None:
        """The severity a value breaches at, or None when it is fine."""
        if value is None:
            return None
        if self.breaches(value, self.critical_threshold):
            return Alert.Severity.CRITICAL
        if self.breaches(value, self.warning_threshold):
            return Alert.Severity.WARNING
        return None

    @property
    def no_data_severity(self) -> str:
        if self.critical_threshold is not None:
            return Alert.Severity.CRITICAL
        return Alert.Severity.WARNING

    def worse(self, a: float, b: float) -> float:
        """The value further into breach territory."""
        return max(a, b) if self.comparator in (">", ">=") else min(a, b)

    def in_scope(self, instance: Instance) -> bool:
        return {
            self.Scope.ALL: True,
            self.Scope.INSTANCE: instance.pk == self.scope_instance_id,
            self.Scope.TYPE: instance.type == self.scope_value,
            self.Scope.REGION: instance.region == self.scope_value,
        }[self.scope]

    def describe_recovery(self, value: float | None, labels: dict) -> str:
        """What a recovered alert of this rule says: ``cpu_usage avg over 1m is 42 now``."""
        if self.expr:
            return f"{self.expr} no longer returns this series"
        what = self.watched(labels)
        if value is None:
            return f"no data now for {what}"
        return f"{what} is {humanize.quantity(value)} now"

    def describe(self, value: float | None, severity: str | None, labels: dict) -> str:
        """What an alert of this rule says, e.g. ``cpu_usage avg over 1m is 99 (> 90)``; a
        PromQL rule's says its summary (or description) annotation."""
        if self.expr:
            template = self.annotations.get("summary") or self.annotations.get("description")
            if template:
                return render_template(template, labels, value)
            return f"{self.expr} is {humanize.quantity(value)}" if value is not None else ""
        what = self.watched(labels)
        if value is None:
            return f"no data for {what}"
        threshold = (
            self.critical_threshold
            if severity == Alert.Severity.CRITICAL
            else self.warning_threshold
        )
        return f"{what} is {humanize.quantity(value)} ({self.comparator} {threshold:g})"

    def watched(self, labels: dict) -> str:
        """What it reads of one series: ``disk_usage{mount="/"} avg over 1m``."""
        selector = self.metric
        if labels:
            selector += "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
        return f"{selector} {self.aggregation} over {humanize.duration(self.window)}"


class RecordingRule(models.Model):
    """A Prometheus recording rule: each evaluation stores the series its PromQL expression
    returns as samples of the metric ``record`` (labelled with the series' labels and the rule's
    ``labels``), on the instance its ``instance`` label names, else on Vigil itself."""

    record = models.CharField(
        max_length=200, unique=True, validators=[RegexValidator(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")]
    )
    expr = models.TextField("PromQL expression")
    labels = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    created = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["record"]

    def __str__(self) -> str:
        return self.record

    def clean(self) -> None:
        try:
            parse(self.expr)
        except QueryError as error:
            raise ValidationError({"expr": str(error)}) from None
        if not isinstance(self.labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.labels.items()
        ):
            raise ValidationError({"labels": "Give an object of text values."})


class Alert(models.Model):
    """A problem of one instance, raised by an agent through the API or by a rule.

    A rule alert is one episode: it opens when the rule fires (after pending for the rule's
    ``for``) and closes when the condition recovers. At most one episode per fingerprint is
    open at a time: an agent posting its alert again goes on with the open one.
    """

    class Severity(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        ERROR = "error"
        CRITICAL = "critical"

    class Status(models.TextChoices):
        ACTIVE = "active"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    class Source(models.TextChoices):
        API = "api"
        RULE = "rule"
        # Vigil's own checks: "instance down".
        SYSTEM = "system"
        # Sent by a Prometheus through the Alertmanager API.
        PROMETHEUS = "prometheus"

    INSTANCE_DOWN = "instance_down"
    SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="alerts")
    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    alert_type = models.CharField(max_length=100)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    # The worst severity of the episode (severity itself follows the value down again).
    peak_severity = models.CharField(max_length=16, choices=Severity.choices, blank=True)
    message = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.API)
    fingerprint = models.CharField(max_length=64, db_index=True, editable=False)
    # The labels of the series that breached (rule alerts), for silences and notifications.
    labels = models.JSONField(default=dict, blank=True)
    value = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    pending_since = models.DateTimeField(null=True, blank=True)
    fired_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    # When the breach of a rule with keep_firing_for ended (it fires on for that long).
    keep_firing_since = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    # Derived at each evaluation from the active silences; silenced alerts still show, marked.
    silenced = models.BooleanField(default=False)
    # Derived from the inhibition rules and the other open alerts: muted like a silenced one.
    inhibited = models.BooleanField(default=False)
    # How many times its source reported it (an agent re-posting it each cycle), and when last.
    occurrences = models.PositiveIntegerField(default=1)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # The name of the API token behind the last acknowledge or resolve, when no user was.
    acted_by_token = models.CharField(max_length=100, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "-created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=models.Q(resolved_at__isnull=True),
                name="alert_one_open_episode_per_fingerprint",
            )
        ]

    def __str__(self) -> str:
        return f"{self.alert_type} on {self.instance}"

    def save(self, *args, **kwargs) -> None:
        if not self.fingerprint and self.source == self.Source.API:
            self.fingerprint = agent_fingerprint(self.instance_id, self.alert_type, self.severity)
        elif not self.fingerprint:
            self.fingerprint = fingerprint(self.instance_id, self.alert_type)
        rank = self.SEVERITY_RANK
        if rank[self.severity] > rank.get(self.peak_severity, -1):
            self.peak_severity = self.severity
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = [*kwargs["update_fields"], "peak_severity"]
        if self.fired_at is None:
            self.fired_at = self.created_at
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        # The alert page belongs to the dashboard, which depends on alerts, not the reverse.
        return f"/alerts/{self.pk}/"

    def recovery_summary(self) -> str:
        """The resolved notice's words: who or what ended it, the value now (a rule's alert that
        recovered by itself), how long it lasted and the worst severity it reached."""
        resolution = (
            AuditEvent.objects.filter(action="alert.resolve", target_id=str(self.pk))
            .order_by("-created")
            .first()
        )
        if resolution is not None:
            ended = f"Resolved by {resolution.actor_display}"
            ended += f": {self.note}" if self.note else "."
        elif self.rule is not None and self.source == self.Source.RULE:
            ended = f"Recovered: {self.rule.describe_recovery(self.value, self.labels)}."
        else:
            ended = f"Recovered{f': {self.note}' if self.note else '.'}"
        started = self.fired_at or self.created_at
        lasted = humanize.duration((self.resolved_at or timezone.now()) - started)
        worst = self.peak_severity or self.severity
        return f"{ended} It lasted {lasted} and reached {worst} at worst."

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def episode(self) -> str:
        """Names this episode of the problem: links signed for it die when it ends."""
        started = iso8601(self.fired_at or self.created_at)
        return hashlib.sha256(f"{self.fingerprint}\x00{started}".encode()).hexdigest()[:32]

    def covering_silences(self) -> list["Silence"]:
        return [silence for silence in Silence.objects.active() if silence.covers(self)]

    @cached_property
    def silenced_by(self) -> list["Silence"]:
        """The active silences that mute it, for the badges naming them (``prefetch_muting``
        fills it for a whole page at once)."""
        return self.covering_silences() if self.silenced and self.is_open else []

    @cached_property
    def inhibited_by(self) -> list["Alert"]:
        """The open alerts that inhibit it, for the badges naming them (``prefetch_muting``
        fills it for a whole page at once)."""
        if not (self.inhibited and self.is_open):
            return []
        return inhibiting_alerts([self]).get(self.pk, [])

    def inhibits(self) -> list["Alert"]:
        """The open alerts this one inhibits now (an instance that is down: its other alerts)."""
        labels = self.match_labels()
        rules = [
            rule
            for rule in InhibitRule.objects.filter(enabled=True)
            if labels_match(labels, rule.source_matchers)
        ]
        if not (self.is_open and rules):
            return []
        muted = [
            (alert, alert.match_labels())
            for alert in Alert.objects.filter(resolved_at__isnull=True, inhibited=True)
            .exclude(pk=self.pk)
            .select_related("instance")
            .order_by("-created_at")
        ]
        inhibited = set()
        for rule in rules:
            inhibited |= set(rule.inhibitors(muted, [(self, labels)]))
        return [alert for alert, _ in muted if alert.pk in inhibited]

    def wants_notification(self, now=None) -> bool:
        """Firing and repeat notices go out only while nobody has acknowledged it, no silence
        covers it and no other open alert inhibits it."""
        return (
            self.status == self.Status.ACTIVE
            and self.resolved_at is None
            and not self.inhibited
            and not Silence.objects.active(now).covering(self)
        )

    def match_labels(self) -> dict:
        """The labels silences, inhibition rules and the Alertmanager API match: its own, with
        its instance's agent id, its severity and its name."""
        return match_labels(self.instance.agent_id, self.severity, self.labels, self.alert_type)

    def to_api(self) -> dict:
        """The seed API's alert object (PRODUCT.md 5.2), plus when it was acknowledged or
        resolved, the note, and how often and when last its source reported it."""
        return {
            "id": str(self.pk),
            "instanceId": str(self.instance_id),
            "alertType": self.alert_type,
            "severity": self.severity,
            "message": self.message,
            "status": self.status,
            "createdAt": iso8601(self.created_at),
            "acknowledgedAt": iso8601(self.acknowledged_at),
            "resolvedAt": iso8601(self.resolved_at),
            "note": self.note,
            "occurrences": self.occurrences,
            "lastSeenAt": iso8601(self.last_seen_at or self.created_at),
        }


class PendingBreach(models.Model):
    """A rule breaching on an instance, not yet for the rule's ``for``: no alert yet.

    Kept apart from Alert so that lists, counts and notifications only ever see alerts that
    fired, as in Prometheus, where pending alerts never reach Alertmanager.
    """

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="pending")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+")
    # A PromQL rule's breaches are one per returned series: its fingerprint (else "").
    fingerprint = models.CharField(max_length=64, blank=True, default="")
    since = models.DateTimeField()
    severity = models.CharField(max_length=16, choices=Alert.Severity.choices)
    value = models.FloatField(null=True, blank=True)
    labels = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "pending breaches"
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "instance", "fingerprint"], name="pending_one_per_rule_series"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule} pending on {self.instance} since {self.since:%H:%M:%S}"


class SilenceQuerySet(models.QuerySet):
    def active(self, now=None):
        now = now or timezone.now()
        return self.filter(starts_at__lte=now, ends_at__gt=now)

    def covering(self, alert: Alert) -> bool:
        return any(silence.covers(alert) for silence in self)


class Silence(models.Model):
    """A maintenance window: alerts it covers still show (marked) but notify nobody."""

    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.CASCADE, related_name="silences"
    )
    instance = models.ForeignKey(
        Instance, null=True, blank=True, on_delete=models.CASCADE, related_name="silences"
    )
    matchers = models.JSONField(
        default=list,
        blank=True,
        help_text='On the alert\'s labels: [{"label": "mount", "op": "=", "value": "/"}]',
        validators=[validate_matchers],
    )
    severity = models.CharField(
        max_length=16, choices=Alert.Severity.choices, blank=True, help_text="Blank: any."
    )
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now, editable=False)

    objects = SilenceQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["ends_at"])]

    def __str__(self) -> str:
        return f"Silence until {self.ends_at:%Y-%m-%d %H:%M} ({self.comment or 'no comment'})"

    def clean(self) -> None:
        if self.ends_at and self.starts_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "must be after the start"})

    @property
    def selector(self) -> str:
        """Its label matchers as Prometheus writes them ("" when it has none)."""
        return matchers_text(self.matchers) if self.matchers else ""

    def covers(self, alert: Alert) -> bool:
        return (
            (self.rule_id is None or self.rule_id == alert.rule_id)
            and (self.instance_id is None or self.instance_id == alert.instance_id)
            and (not self.severity or self.severity == alert.severity)
            and labels_match({**alert.labels, "alertname": alert.alert_type}, self.matchers)
        )


class InhibitRule(models.Model):
    """While an open alert matches ``source_matchers``, open alerts matching
    ``target_matchers`` with the same values of the ``equal`` labels are inhibited: shown,
    marked, and notifying nobody (as Alertmanager's inhibit_rules). Shipped: an instance that
    is down mutes its other alerts."""

    name = models.CharField(max_length=100, unique=True)
    source_matchers = models.JSONField(default=list, validators=[validate_matchers])
    target_matchers = models.JSONField(default=list, validators=[validate_matchers])
    equal = models.JSONField(
        default=list, blank=True, help_text='Labels source and target share, e.g. ["instance"].'
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not isinstance(self.equal, list) or not all(isinstance(n, str) for n in self.equal):
            raise ValidationError({"equal": "Give a list of label names."})

    @property
    def source_selector(self) -> str:
        return matchers_text(self.source_matchers)

    @property
    def target_selector(self) -> str:
        return matchers_text(self.target_matchers)

    def source_candidates(self) -> "models.QuerySet[Alert]":
        """The open alerts that may be its sources: all of them, narrowed by name when its
        source matchers name the alert."""
        candidates = Alert.objects.filter(resolved_at__isnull=True).select_related("instance")
        for matcher in self.source_matchers:
            if (matcher["label"], matcher["op"]) == ("alertname", "="):
                candidates = candidates.filter(alert_type=matcher["value"])
        return candidates

    def inhibited(self, labelled: list[tuple["Alert", dict]]) -> set:
        """The pks of the alerts in ``labelled`` (each with its match labels) this rule
        inhibits; an alert never inhibits itself."""
        return set(self.inhibitors(labelled, labelled))

    def inhibitors(
        self, targets: list[tuple["Alert", dict]], sources: list[tuple["Alert", dict]]
    ) -> dict:
        """For each alert of ``targets`` this rule inhibits, the alerts of ``sources`` that
        inhibit it (both given with their match labels), keyed by the target's pk."""
        sources_by_equal = {}
        for alert, labels in sources:
            if labels_match(labels, self.source_matchers):
                key = tuple(labels.get(name, "") for name in self.equal)
                sources_by_equal.setdefault(key, []).append(alert)
        found = {}
        for alert, labels in targets:
            if not labels_match(labels, self.target_matchers):
                continue
            key = tuple(labels.get(name, "") for name in self.equal)
            inhibiting = [other for other in sources_by_equal.get(key, []) if other.pk != alert.pk]
            if inhibiting:
                found[alert.pk] = inhibiting
        return found


def inhibiting_alerts(alerts: list[Alert]) -> dict:
    """The open alerts that inhibit each of ``alerts`` by the enabled inhibition rules, keyed
    by its pk (absent: nothing inhibits it); one query per rule for its likely sources."""
    targets = [(alert, alert.match_labels()) for alert in alerts]
    found = {}
    for rule in InhibitRule.objects.filter(enabled=True):
        sources = [(source, source.match_labels()) for source in rule.source_candidates()]
        for pk, inhibiting in rule.inhibitors(targets, sources).items():
            known = found.setdefault(pk, [])
            known.extend(alert for alert in inhibiting if alert not in known)
    return found


def prefetch_muting(alerts: list[Alert]) -> None:
    """Fill the ``silenced_by`` and ``inhibited_by`` of a page's alerts with one query for the
    silences and one per inhibition rule, instead of some per alert."""
    silenced = {alert.pk for alert in alerts if alert.silenced and alert.is_open}
    silences = list(Silence.objects.active().select_related("created_by")) if silenced else []
    inhibited = [alert for alert in alerts if alert.inhibited and alert.is_open]
    inhibitors = inhibiting_alerts(inhibited) if inhibited else {}
    for alert in alerts:
        alert.silenced_by = (
            [silence for silence in silences if silence.covers(alert)]
            if alert.pk in silenced
            else []
        )
        alert.inhibited_by = inhibitors.get(alert.pk, [])


class Notification(models.Model):
    """One delivery attempt of one notice to one channel, succeeded or not."""

    class Kind(models.TextChoices):
        FIRING = "firing"
        REPEAT = "repeat"
        RESOLVED = "resolved"
        TEST = "test"
        # The daily mail of info alerts (alerts/digest.py), to an e-mail channel.
        DIGEST = "digest"

    class Status(models.TextChoices):
        SENDING = "sending"
        SENT = "sent"
        # Failed, another attempt is scheduled.
        FAILED = "failed"
        # Failed for good: a permanent error or the last attempt.
        GAVE_UP = "gave_up", "Gave up"

    id = models.BigAutoField(primary_key=True)
    # All attempts of one notice share it: a delivered dispatch is never sent again.
    dispatch = models.UUIDField(db_index=True)
    # The alert told of; none for a test, a digest or a group's notice of several alerts.
    alert = models.ForeignKey(
        Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    group = models.ForeignKey(
        "AlertGroup", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A group's notice of several alerts: those it listed. Kept here because the group and its
    # members are deleted once their alerts resolved, and the alerts' pages still show it.
    listed_alerts = models.ManyToManyField(Alert, blank=True, related_name="group_notifications")
    channel = models.ForeignKey(
        NotificationChannel, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # The key the receiver knows the notice's incident by (PagerDuty's dedup key, Opsgenie's
    # alias): an alert told under it is resolved under it, whichever group holds it then.
    incident_key = models.CharField(max_length=80, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.SENDING)
    attempt = models.PositiveSmallIntegerField(default=1)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["alert", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} to {self.channel.name}: {self.status} (attempt {self.attempt})"

    def record_sent(self, response_code: int | None, problem: str = "") -> None:
        """Delivered; ``problem`` says what went wrong on the way (a message template that
        failed and gave way to the default)."""
        self.status, self.response_code, self.sent_at = (
            self.Status.SENT,
            response_code,
            timezone.now(),
        )
        self.error = problem[:2000]
        self.save(update_fields=["status", "response_code", "sent_at", "error"])

    def record_failure(self, error: str, response_code: int | None, final: bool) -> None:
        self.status = self.Status.GAVE_UP if final else self.Status.FAILED
        self.error, self.response_code = error[:2000], response_code
        self.save(update_fields=["status", "error", "response_code"])


# ``group_by: ["..."]`` groups by every label, as in Alertmanager: each alert on its own.
GROUP_BY_ALL = "..."


class Route(models.Model):
    """A node of the notification routing tree (Alertmanager's ``route``).

    An alert enters at the root and goes down to the first child whose matchers it satisfies
    (to the next matching siblings too while the matched child says ``continue``), as deep as
    it matches; the routes it ends on notify it. Each such route groups its alerts by the
    values of ``group_by`` and notifies a group once its ``group_wait`` has passed, again
    when the group's alerts changed and ``group_interval`` has passed, and again after
    ``repeat_interval`` (alerts/grouping.py). A child leaves a setting empty (null, or no
    channels) to take its parent's.

    The root route ships with today's behaviour: every alert its own group, notified at once,
    repeated after ALERT_REPEAT_INTERVAL_SECONDS, to every enabled channel its severity routes
    to. A rule that names channels keeps them: its alerts go to those channels whatever route
    they take (the rule overrides the route's channels, not its grouping or timing).
    """

    name = models.CharField(max_length=100, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    # Siblings are tried in this order.
    position = models.PositiveIntegerField(default=0)
    matchers = models.JSONField(
        default=list,
        blank=True,
        help_text='On the alert\'s labels: [{"label": "team", "op": "=", "value": "db"}]',
        validators=[validate_matchers],
    )
    channels = models.ManyToManyField(
        NotificationChannel,
        blank=True,
        related_name="in_routes",
        help_text="None selected: the parent's (the root's: every enabled channel).",
    )
    group_by = models.JSONField(
        null=True,
        blank=True,
        help_text='Labels that make a group, e.g. ["alertname"]; ["..."]: every label. '
        "Empty: the parent's.",
    )
    group_wait = models.DurationField(
        null=True, blank=True, help_text="Before a new group's first notice. Empty: the parent's."
    )
    group_interval = models.DurationField(
        null=True,
        blank=True,
        help_text="Between notices of a group's changes. Empty: the parent's.",
    )
    repeat_interval = models.DurationField(
        null=True,
        blank=True,
        help_text="Before the same notice is sent again. Empty: the parent's "
        "(the root's: ALERT_REPEAT_INTERVAL_SECONDS).",
    )
    continue_matching = models.BooleanField(
        "continue",
        default=False,
        help_text="Go on to the next siblings after this route matched.",
    )

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.group_by is not None and (
            not isinstance(self.group_by, list)
            or not all(isinstance(label, str) and label for label in self.group_by)
        ):
            raise ValidationError({"group_by": 'Give a list of label names, or ["..."].'})
        if self.parent_id is None:
            roots = Route.objects.filter(parent__isnull=True).exclude(pk=self.pk)
            if roots.exists():
                raise ValidationError({"parent": "There is one root route; pick a parent."})
        elif self.pk is not None and self.pk in self.parent.lineage_pks():
            raise ValidationError({"parent": "A route can not be below itself."})
        for field in ("group_wait", "group_interval", "repeat_interval"):
            value = getattr(self, field)
            if value is not None and value < timedelta(0):
                raise ValidationError({field: "Must not be negative."})

    def descendant_pks(self) -> set[int]:
        """Its own pk and every route's below it."""
        below, frontier = {self.pk}, {self.pk}
        while frontier:
            frontier = (
                set(Route.objects.filter(parent__in=frontier).values_list("pk", flat=True)) - below
            )
            below |= frontier
        return below

    def lineage_pks(self) -> list[int]:
        """Its own pk and its ancestors', nearest first."""
        pks, route = [], self
        while route is not None:
            pks.append(route.pk)
            route = route.parent
        return pks

    @property
    def is_root(self) -> bool:
        return self.parent_id is None


class AlertGroup(models.Model):
    """The alerts one route gathers under one value of its ``group_by`` labels, and what the
    group last told its channels (Alertmanager's aggregation group)."""

    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="groups")
    # sha256 of the group's labels (of the alert's fingerprint when grouping by every label).
    key = models.CharField(max_length=64)
    labels = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    last_notified_at = models.DateTimeField(null=True, blank=True)
    # When a change it holds may be told (its group_wait or group_interval over); null when
    # none waits. Repeats are due by last_notified_at and the route's repeat_interval.
    next_flush_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Its notices' incident key names its route as well as its labels. False for a group that
    # had told before keys named routes: its open incident keeps the key it was opened with.
    keyed_by_route = models.BooleanField(default=True, db_default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["route", "key"], name="alert_group_one_per_route_key")
        ]

    def __str__(self) -> str:
        shown = ", ".join(f"{key}={value}" for key, value in sorted(self.labels.items()))
        return f"{self.route.name}: {{{shown}}}"


class AlertGroupMember(models.Model):
    """An alert in a group, and what the group told of it."""

    group = models.ForeignKey(AlertGroup, on_delete=models.CASCADE, related_name="members")
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="group_memberships")
    # The severity it was last notified firing at ("": not yet).
    notified_severity = models.CharField(max_length=16, blank=True)
    # The alert's last_notified_at when the group last told of it: the lifecycle moves it to
    # ask for a firing notice (an episode opened or worsened), which a replay does not.
    told_at = models.DateTimeField(null=True, blank=True)
    # Its lifecycle asked for a firing notice not yet sent.
    firing_asked = models.BooleanField(default=False)
    # The channels told it fired: they hear that it resolved.
    told_channels = models.JSONField(default=list, blank=True)
    # By channel pk (as text), the incident key another group told it under on that channel
    # (a route since deleted, or before routes existed): its notices there keep that key, so
    # that incident is the one they go on and close. A channel not named: its group's key.
    told_keys = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "alert"], name="alert_group_member_once")
        ]

    def __str__(self) -> str:
        return f"{self.alert} in {self.group}"
