"""The form that makes or edits a check in the app: the fields of its kind only."""

from django import forms
from django.db import models

from checks.models import Check, CheckGroup

# The target fields of each kind; the kind itself is chosen before the form.
TARGETS = {
    Check.Kind.HTTP: [
        "url",
        "http_method",
        "expected_statuses",
        "keyword",
        "keyword_absent",
        "json_path",
        "json_expected",
        "follow_redirects",
        "max_redirects",
        "http_headers",
        "http_body",
        "ignore_tls_errors",
        "certificate_warning_days",
        "certificate_critical_days",
    ],
    Check.Kind.TCP: ["host", "port"],
    Check.Kind.ICMP: ["host"],
    Check.Kind.DNS: ["host", "dns_record_type", "dns_expected", "dns_resolver"],
    Check.Kind.HEARTBEAT: ["slug"],
}
PROBE_SCHEDULE = ["interval_seconds", "timeout_seconds", "retries", "jitter_seconds"]
HEARTBEAT_SCHEDULE = ["period_seconds", "grace_seconds", "cron", "time_zone", "late_alerts"]
COMMON = ["name", "group"]
LABELS = {
    "url": "URL",
    "http_method": "Method",
    "http_headers": "Headers (JSON)",
    "http_body": "Body",
    "json_path": "JSON path",
    "json_expected": "JSON value expected",
    "ignore_tls_errors": "Ignore TLS errors",
    "dns_record_type": "Record type",
    "dns_expected": "Value expected",
    "dns_resolver": "Resolver",
    "certificate_warning_days": "Certificate warning, days left",
    "certificate_critical_days": "Certificate critical, days left",
    "interval_seconds": "Interval (s)",
    "timeout_seconds": "Timeout (s)",
    "jitter_seconds": "Jitter (s)",
    "period_seconds": "Period (s)",
    "grace_seconds": "Grace (s)",
    "cron": "Cron expression",
}
WIDGETS = {
    "http_headers": forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    "http_body": forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
}


def _form_field(field: models.Field, **kwargs) -> forms.Field | None:
    # A URL typed without a scheme is taken as https (Django 6's default, chosen now).
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


class CheckForm(forms.ModelForm):
    """Name and group, then the kind's target and schedule; the model's ``clean`` judges the
    target (scheme, address ranges) as it does for the admin and the API. Made for one kind by
    ``check_form``."""

    kind: str

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.kind = self.kind

    @property
    def fieldsets(self) -> list[tuple[str, list]]:
        target = "Ping by name" if self.kind == Check.Kind.HEARTBEAT else "Target"
        parts = [
            ("Check", COMMON),
            (target, TARGETS[self.kind]),
            ("Schedule", schedule_of(self.kind)),
        ]
        return [(legend, [self[name] for name in names]) for legend, names in parts]


def schedule_of(kind: str) -> list[str]:
    return HEARTBEAT_SCHEDULE if kind == Check.Kind.HEARTBEAT else PROBE_SCHEDULE


def check_form(kind: str) -> type[CheckForm]:
    """The form class for checks of ``kind``."""
    form = forms.modelform_factory(
        Check,
        form=CheckForm,
        fields=COMMON + TARGETS[kind] + schedule_of(kind),
        formfield_callback=_form_field,
        labels=LABELS,
        widgets=WIDGETS,
    )
    form.kind = kind
    return form


class CheckGroupForm(forms.ModelForm):
    """A group's name, its status page's slug and whether the page is shown."""

    class Meta:
        model = CheckGroup
        fields = ["name", "slug", "status_page"]
        labels = {"status_page": "Public status page"}
        # The model's help text names the page as /status/<slug>/, which a form would render
        # as a tag.
        help_texts = {
            "status_page": "Its checks' names and states at /status/ and its slug, without login."
        }
        error_messages = {"slug": {"unique": "Another group has this slug."}}
