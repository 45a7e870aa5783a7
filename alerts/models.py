import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from instances.formats import iso8601
from instances.models import Instance

# The seed API's severities, taken as Vigil's.
SEED_SEVERITIES = {"low": "info", "medium": "warning", "high": "error"}


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


class Alert(models.Model):
    """A problem of one instance, raised by an agent through the API or by a rule."""

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

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="alerts")
    alert_type = models.CharField(max_length=100)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    message = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.API)
    fingerprint = models.CharField(max_length=64, db_index=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    # The name of the API token behind the last acknowledge or resolve, when no user was.
    acted_by_token = models.CharField(max_length=100, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.alert_type} on {self.instance}"

    def save(self, *args, **kwargs) -> None:
        if not self.fingerprint:
            self.fingerprint = fingerprint(self.instance_id, self.alert_type)
        super().save(*args, **kwargs)

    def acknowledge(self, user=None, note: str = "", token_name: str = "") -> None:
        """Someone is on it; acknowledging again keeps the first acknowledgement's time."""
        self.status = self.Status.ACKNOWLEDGED
        self.acknowledged_at = self.acknowledged_at or timezone.now()
        self.acknowledged_by = user or self.acknowledged_by
        self.resolved_at = None
        self._record(note, token_name)

    def resolve(self, user=None, note: str = "", token_name: str = "") -> None:
        """The problem is over; resolving again keeps the first resolution's time."""
        self.status = self.Status.RESOLVED
        self.resolved_at = self.resolved_at or timezone.now()
        self._record(note, token_name)

    def reopen(self, user=None, note: str = "", token_name: str = "") -> None:
        """Active again, as if never acknowledged or resolved."""
        self.status = self.Status.ACTIVE
        self.acknowledged_at = self.acknowledged_by = self.resolved_at = None
        self._record(note, token_name)

    def _record(self, note: str, token_name: str) -> None:
        self.note = note or self.note
        self.acted_by_token = token_name
        self.save()

    def to_api(self) -> dict:
        """The seed API's alert object (PRODUCT.md 5.2), plus when it was acknowledged or
        resolved and the note."""
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
        }
