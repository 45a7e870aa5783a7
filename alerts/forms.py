"""The forms of the Rules, Inhibition, Channels and Routes pages.

The alert rule form has every field of a rule, validated by the model itself (the matchers'
validators and ``AlertRule.clean``), durations written as Prometheus writes them. Each kind of
notification channel has a form of its own, with that transport's fields only."""

import re
from datetime import timedelta

from django import forms
from django.db import models
from django.template import TemplateSyntaxError

from alerts import message_templates
from alerts.models import (
    Alert,
    AlertRule,
    InhibitRule,
    NotificationChannel,
    Route,
    validate_http_url,
)

DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
PROMETHEUS_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def rule_formfield(field, **kwargs):
    """A rule field's form field; a runbook address typed without a scheme is an https one
    (Django 6's default)."""
    if isinstance(field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return field.formfield(**kwargs)


def format_duration(value: timedelta | None) -> str:
    """``2m``, ``1h30m``, ``90s`` (whole seconds): how a Prometheus rule's ``for`` reads."""
    if value is None:
        return ""
    seconds = round(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in DURATION_UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


class PrometheusDurationField(forms.DurationField):
    """Takes ``2m``, ``1h30m`` or ``45s`` as well as Django's ``HH:MM:SS``; shows ``2m``."""

    def prepare_value(self, value):
        return format_duration(value) if isinstance(value, timedelta) else value

    def to_python(self, value):
        match = PROMETHEUS_DURATION.fullmatch(str(value or "").strip().lower())
        if match and any(match.groups()):
            return timedelta(
                seconds=sum(
                    int(count) * size
                    for count, size in zip(match.groups(), DURATION_UNITS.values(), strict=True)
                    if count
                )
            )
        return super().to_python(value)


class MatchersField(forms.JSONField):
    """Label matchers as JSON text; no matchers at all (None) shows as an empty box, not null."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


class LabelNamesField(forms.CharField):
    """Label names written with commas between them (``instance, mount``), kept as a list."""

    label_name = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value) -> list[str]:
        names = [name.strip() for name in super().to_python(value).split(",")]
        names = [name for name in names if name]
        for name in names:
            if not self.label_name.fullmatch(name):
                raise forms.ValidationError(f"{name!r} is not a label name.")
        return names


class InhibitRuleForm(forms.ModelForm):
    """An inhibition rule: the matchers of the alerts that mute, of the alerts muted, and the
    labels both must share."""

    equal = LabelNamesField(
        required=False,
        label="Equal labels",
        help_text="Labels the two alerts must share, e.g. instance (empty: any source mutes "
        "every target).",
    )

    class Meta:
        model = InhibitRule
        fields = ["name", "source_matchers", "target_matchers", "equal", "enabled"]
        field_classes = {"source_matchers": MatchersField, "target_matchers": MatchersField}
        widgets = {
            "source_matchers": forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
            "target_matchers": forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        }
        labels = {
            "source_matchers": "Source matchers (the alerts that mute)",
            "target_matchers": "Target matchers (the alerts muted)",
        }
        help_texts = {
            "source_matchers": 'E.g. [{"label": "alertname", "op": "=", "value": '
            '"instance_down"}]; alerts carry their labels, instance (agent id), severity and '
            "alertname.",
            "target_matchers": 'E.g. [{"label": "severity", "op": "!=", "value": "critical"}]; '
            "empty: every alert.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, label_suffix="", **kwargs)
        # No target matchers: every alert but the source itself may be muted.
        self.fields["target_matchers"].required = False

    def clean_target_matchers(self) -> list:
        return self.cleaned_data["target_matchers"] or []


COMPARATOR_WORDS = {">": "above", ">=": "at or above", "<": "below", "<=": "at or below"}

# The groups the Rules page and Django admin show a rule's fields in.
RULE_FIELDSETS = [
    ("Rule", ["name", "description", "enabled", "runbook_url"]),
    ("PromQL (instead of What and When's thresholds)", ["expr", "labels", "annotations"]),
    (
        "What",
        ["metric", "label_matchers", "denominator_matchers", "aggregation", "window", "reduce"],
    ),
    ("Where", ["scope", "scope_instance", "scope_value"]),
    (
        "When",
        [
            "comparator",
            "warning_threshold",
            "critical_threshold",
            "for_duration",
            "keep_firing_for",
            "no_data",
        ],
    ),
    ("Who hears of it", ["channels"]),
]


class AlertRuleForm(forms.ModelForm):
    """Every field of an alert rule."""

    class Meta:
        model = AlertRule
        fields = [name for _, names in RULE_FIELDSETS for name in names]
        formfield_callback = rule_formfield
        field_classes = {
            "label_matchers": MatchersField,
            "denominator_matchers": MatchersField,
            "window": PrometheusDurationField,
            "for_duration": PrometheusDurationField,
            "keep_firing_for": PrometheusDurationField,
        }
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "label_matchers": forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
            "denominator_matchers": forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
            "channels": forms.CheckboxSelectMultiple,
            "expr": forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
            "labels": forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
            "annotations": forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        }
        labels = {
            "runbook_url": "Runbook URL",
            "scope_instance": "Instance",
            "scope_value": "Type or region",
            "no_data": "When there is no data",
        }
        help_texts = {
            "scope_instance": "With the scope One instance.",
            "scope_value": "With the scope by type or by region.",
            "window": "The span aggregated, e.g. 1m, 5m or 1h.",
            "for_duration": "How long it must breach before firing, e.g. 2m (0s: at once).",
            "keep_firing_for": "How long it stays firing once the breach ends, e.g. 5m (0s: "
            "resolves at once).",
            "expr": "Every series it returns is an alert, e.g. disk_used_percent > 90.",
            "labels": 'Added to its alerts, e.g. {"severity": "critical"} (severity: info, '
            "warning, error or critical).",
            "annotations": '{"summary": "{{ $labels.instance }} is {{ $value }}% full"}',
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, label_suffix="", **kwargs)
        # ">" alone reads as "Gt" in a list; say what it compares.
        self.fields["comparator"].choices = [
            (value, f"{value} {COMPARATOR_WORDS[value]}") for value in AlertRule.Comparator.values
        ]
        self.fields["keep_firing_for"].required = False
        channels = self.fields["channels"]
        if not channels.queryset.exists():
            channels.help_text = "No channels yet: add them on the Channels page."

    def clean_keep_firing_for(self):
        # Left empty, as most rules leave it: resolve as soon as the breach ends.
        return self.cleaned_data["keep_firing_for"] or timedelta(0)

    def clean_label_matchers(self):
        # An emptied box means "no matchers": the column holds a list, never null.
        return self.cleaned_data["label_matchers"] or []

    def fieldsets(self) -> list:
        """(title, bound fields) per group, for the template."""
        return [(title, [self[name] for name in names]) for title, names in RULE_FIELDSETS]


class ChannelForm(forms.ModelForm):
    """A notification channel of any kind (Django admin's form): the secret is never shown
    back and an empty secret box keeps the stored one; severities are boxes to tick."""

    secret = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    severities = forms.MultipleChoiceField(
        choices=Alert.Severity.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Which alerts reach this channel, by severity.",
    )

    message_template = forms.CharField(
        label="Message template",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text="Optional: the words of each notice as a Django template, with alert "
        "(alert_type, severity, message, labels, value, fired_at, rule.name …), instance "
        "(name, agent_id, type, region) and message (kind, title, text, url, ack_url) in "
        "context. Empty: {{ message.text }}. Agents' words are escaped for the channel.",
    )

    kind_of_form = None  # the kind a per-transport subclass edits
    secret_label = "Secret"
    secret_help = "Webhook HMAC key, or PagerDuty routing key."

    class Meta:
        model = NotificationChannel
        fields = ["name", "kind", "target", "secret", "severities", "message_template", "enabled"]
        widgets = {"target": forms.TextInput}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, label_suffix="", **kwargs)
        if self.kind_of_form:
            self.instance.kind = self.kind_of_form
        for name in set(self.fields) - set(self._meta.fields):  # declared on the base class
            del self.fields[name]
        kind = self.instance.kind or self.data.get("kind") or NotificationChannel.Kind.WEBHOOK
        self.initial["severities"] = self.instance.severities or (
            NotificationChannel.DEFAULT_SEVERITIES.get(kind, [])
        )
        secret = self.fields.get("secret")
        if secret is not None:
            secret.label, secret.help_text = self.secret_label, self.secret_help
            if self.instance.secret:
                secret.help_text = (
                    f"Set (ends in …{self.instance.secret[-4:]}); leave empty to keep it."
                    if len(self.instance.secret) >= 12
                    else "Set; leave empty to keep it."
                )

    def clean_secret(self) -> str:
        return self.cleaned_data["secret"] or self.instance.secret

    def clean_message_template(self) -> str:
        source = self.cleaned_data["message_template"]
        kind = self.kind_of_form or self.data.get("kind") or self.instance.kind
        if source.strip() and kind:
            try:
                message_templates.check_syntax(source, kind)
            except TemplateSyntaxError as error:
                raise forms.ValidationError(f"This template does not parse: {error}") from error
        return source

    def clean_severities(self) -> list[str]:
        """The kind's default routing is stored as [] (follow the default), anything else as
        chosen, worst first."""
        ticked = self.cleaned_data["severities"]
        chosen = [value for value in reversed(Alert.Severity.values) if value in ticked]
        kind = self.kind_of_form or self.cleaned_data.get("kind") or self.instance.kind
        default = NotificationChannel.DEFAULT_SEVERITIES.get(kind, [])
        return [] if set(chosen) == set(default) else chosen


class ConfigFieldsForm(ChannelForm):
    """A channel form with options kept in the channel's ``config``: ``config_fields`` names
    the form fields stored there."""

    config_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.config_fields:
            if name in self.instance.config:
                self.initial[name] = self.instance.config[name]

    def clean(self) -> dict:
        cleaned = super().clean()
        options = {name: cleaned[name] for name in self.config_fields if name in cleaned}
        self.instance.config = {**self.instance.config, **options}
        return cleaned


class EmailChannelForm(ConfigFieldsForm):
    kind_of_form = NotificationChannel.Kind.EMAIL
    config_fields = ("info_digest",)
    info_digest = forms.BooleanField(
        label="Daily digest of info alerts",
        required=False,
        initial=True,
        help_text="One mail a day listing the info alerts of the past day, only when there are "
        "some (sent at INFO_DIGEST_HOUR, UTC).",
    )

    class Meta(ChannelForm.Meta):
        fields = ["name", "target", "severities", "info_digest", "message_template", "enabled"]
        labels = {"target": "Addresses"}
        help_texts = {"target": "Comma-separated; sent through EMAIL_URL's mail server."}

    def clean_target(self) -> str:
        addresses = [part.strip() for part in self.cleaned_data["target"].split(",")]
        addresses = [address for address in addresses if address]
        for address in addresses:
            forms.EmailField().clean(address)
        if not addresses:
            raise forms.ValidationError("Give at least one address.")
        return ", ".join(addresses)


class HttpUrlField(forms.URLField):
    """A URL a channel sends to: http:// or https:// only (no file:, ftp: …)."""

    default_validators = [validate_http_url]

    def __init__(self, **kwargs):
        super().__init__(max_length=1000, assume_scheme="https", **kwargs)


class WebhookUrlForm(ChannelForm):
    """A transport that POSTs to a URL the receiving service gave out."""

    target = HttpUrlField(label="Webhook URL")

    class Meta(ChannelForm.Meta):
        fields = ["name", "target", "severities", "message_template", "enabled"]


class SlackChannelForm(WebhookUrlForm):
    kind_of_form = NotificationChannel.Kind.SLACK

    class Meta(WebhookUrlForm.Meta):
        help_texts = {"target": "Slack: Apps → Incoming Webhooks → the channel's webhook URL."}


class GoogleChatChannelForm(WebhookUrlForm):
    kind_of_form = NotificationChannel.Kind.GOOGLE_CHAT

    class Meta(WebhookUrlForm.Meta):
        help_texts = {"target": "Google Chat: the space's Apps & integrations → Webhooks."}


class TeamsChannelForm(WebhookUrlForm):
    kind_of_form = NotificationChannel.Kind.TEAMS

    class Meta(WebhookUrlForm.Meta):
        help_texts = {
            "target": "Teams: the channel's Workflows → “Post to a channel when a webhook "
            "request is received” → its URL."
        }


class DiscordChannelForm(WebhookUrlForm):
    kind_of_form = NotificationChannel.Kind.DISCORD

    class Meta(WebhookUrlForm.Meta):
        help_texts = {"target": "Discord: Server settings → Integrations → Webhooks → Copy URL."}


class TelegramChannelForm(ConfigFieldsForm):
    kind_of_form = NotificationChannel.Kind.TELEGRAM
    config_fields = ("chat_id",)
    chat_id = forms.RegexField(
        label="Chat",
        regex=r"^(-?\d+|@\w{5,})$",
        max_length=100,
        help_text="The chat's numeric id (groups are negative) or a public channel's @name.",
        error_messages={"invalid": "A numeric chat id (like -1001234567890) or an @channelname."},
    )
    target = HttpUrlField(
        label="Bot API URL",
        required=False,
        help_text="Empty: https://api.telegram.org (change only for a local Bot API server).",
    )

    secret_label = "Bot token"
    secret_help = "From @BotFather; the bot must be a member of the chat."

    class Meta(ChannelForm.Meta):
        fields = [
            "name",
            "secret",
            "chat_id",
            "target",
            "severities",
            "message_template",
            "enabled",
        ]


class NtfyChannelForm(ConfigFieldsForm):
    kind_of_form = NotificationChannel.Kind.NTFY
    config_fields = ("topic",)
    topic = forms.RegexField(
        regex=r"^[-_A-Za-z0-9]{1,64}$",
        help_text="Letters, digits, - and _; anyone who knows a public server's topic can read it.",
        error_messages={"invalid": "Up to 64 letters, digits, - and _."},
    )
    target = HttpUrlField(
        label="Server URL",
        required=False,
        help_text="Empty: https://ntfy.sh; or your own ntfy server.",
    )

    secret_label = "Access token"
    secret_help = "Optional: a token of a user allowed to publish to the topic (tk_…)."

    class Meta(ChannelForm.Meta):
        fields = ["name", "topic", "target", "secret", "severities", "message_template", "enabled"]


class OpsgenieChannelForm(ChannelForm):
    kind_of_form = NotificationChannel.Kind.OPSGENIE
    target = HttpUrlField(
        label="API URL",
        required=False,
        help_text="Empty: https://api.opsgenie.com; an EU account: https://api.eu.opsgenie.com.",
    )

    secret_label = "API key"
    secret_help = "The key of an API integration of the Opsgenie team."

    class Meta(ChannelForm.Meta):
        fields = ["name", "secret", "target", "severities", "message_template", "enabled"]


class PagerDutyChannelForm(ChannelForm):
    kind_of_form = NotificationChannel.Kind.PAGERDUTY
    target = HttpUrlField(
        label="Events API URL",
        required=False,
        help_text="Empty: PAGERDUTY_EVENTS_URL (change only for an EU account or a proxy).",
    )

    secret_label = "Routing key"
    secret_help = "The Events API v2 integration key of the PagerDuty service."

    class Meta(ChannelForm.Meta):
        fields = ["name", "secret", "target", "severities", "message_template", "enabled"]


class WebhookChannelForm(ChannelForm):
    kind_of_form = NotificationChannel.Kind.WEBHOOK
    target = HttpUrlField(label="URL")

    secret_label = "Signing secret"
    secret_help = "Optional: signs each body as X-Vigil-Signature: sha256=<HMAC-SHA256>."

    class Meta(ChannelForm.Meta):
        fields = ["name", "target", "secret", "severities", "message_template", "enabled"]


# The form the Channels page shows for each kind of channel.
CHANNEL_FORMS = {
    form.kind_of_form: form
    for form in (
        EmailChannelForm,
        SlackChannelForm,
        GoogleChatChannelForm,
        TeamsChannelForm,
        DiscordChannelForm,
        TelegramChannelForm,
        NtfyChannelForm,
        PagerDutyChannelForm,
        OpsgenieChannelForm,
        WebhookChannelForm,
    )
}


class LabelListField(forms.JSONField):
    """A JSON list of label names, shown empty when unset (JSONField would write "null")."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


class RouteForm(forms.ModelForm):
    """A route of the notification routing tree; what it leaves empty it takes from its
    parent. Validated by the model (``Route.clean``: one root, no route below itself)."""

    class Meta:
        model = Route
        fields = [
            "name",
            "parent",
            "position",
            "matchers",
            "channels",
            "group_by",
            "group_wait",
            "group_interval",
            "repeat_interval",
            "continue_matching",
        ]
        field_classes = {
            "matchers": MatchersField,
            "group_by": LabelListField,
            "group_wait": PrometheusDurationField,
            "group_interval": PrometheusDurationField,
            "repeat_interval": PrometheusDurationField,
        }
        widgets = {
            "matchers": forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
            "group_by": forms.TextInput(attrs={"spellcheck": "false"}),
            "channels": forms.CheckboxSelectMultiple,
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group_by"].help_text = (
            'A JSON list, e.g. ["alertname", "team"]; ["..."]: every label (each alert on its '
            "own). Empty: the parent's."
        )
        for name in ("group_wait", "group_interval", "repeat_interval"):
            self.fields[name].help_text += " Written 30s, 5m, 4h."
        if self.instance.pk is not None and self.instance.is_root:
            # The root has no parent and matches every alert.
            del self.fields["parent"], self.fields["matchers"], self.fields["position"]
            del self.fields["continue_matching"]
        else:
            self.fields["parent"].required = True
            if self.instance.pk is not None:
                below = Route.objects.filter(pk__in=self.instance.descendant_pks())
                self.fields["parent"].queryset = Route.objects.exclude(pk__in=below)

    def clean_matchers(self):
        return self.cleaned_data["matchers"] or []
