"""The alert rule form of the Rules page: every field of a rule, validated by the model itself
(the matchers' validators and ``AlertRule.clean``), durations written as Prometheus writes them."""

import re
from datetime import timedelta

from django import forms
from django.db import models

from alerts.models import AlertRule

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


COMPARATOR_WORDS = {">": "above", ">=": "at or above", "<": "below", "<=": "at or below"}

# The groups the Rules page and Django admin show a rule's fields in.
RULE_FIELDSETS = [
    ("Rule", ["name", "description", "enabled", "runbook_url"]),
    (
        "What",
        ["metric", "label_matchers", "denominator_matchers", "aggregation", "window", "reduce"],
    ),
    ("Where", ["scope", "scope_instance", "scope_value"]),
    ("When", ["comparator", "warning_threshold", "critical_threshold", "for_duration", "no_data"]),
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
        }
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "label_matchers": forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
            "denominator_matchers": forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
            "channels": forms.CheckboxSelectMultiple,
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
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, label_suffix="", **kwargs)
        # ">" alone reads as "Gt" in a list; say what it compares.
        self.fields["comparator"].choices = [
            (value, f"{value} {COMPARATOR_WORDS[value]}") for value in AlertRule.Comparator.values
        ]
        channels = self.fields["channels"]
        if not channels.queryset.exists():
            channels.help_text = (
                "No channels yet: add them in Django admin (Notification channels)."
            )

    def clean_label_matchers(self):
        # An emptied box means "no matchers": the column holds a list, never null.
        return self.cleaned_data["label_matchers"] or []

    def fieldsets(self) -> list:
        """(title, bound fields) per group, for the template."""
        return [(title, [self[name] for name in names]) for title, names in RULE_FIELDSETS]
