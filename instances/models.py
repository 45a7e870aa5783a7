import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class Instance(models.Model):
    """A monitored machine or service, registered by its agent's own stable id."""

    class Status(models.TextChoices):
        HEALTHY = "healthy"
        WARNING = "warning"
        UNHEALTHY = "unhealthy"
        UNKNOWN = "unknown"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent_id = models.CharField(max_length=200, unique=True)
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)
    endpoint = models.CharField(max_length=500, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Cached because the overview filters on it; alert evaluation is the one path that derives it.
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNKNOWN)
    last_seen = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["status"]), models.Index(fields=["last_seen"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_silent(self) -> bool:
        """No data for three agent intervals: the dead man's switch."""
        if self.last_seen is None:
            return True
        silent_for = (timezone.now() - self.last_seen).total_seconds()
        return silent_for > 3 * settings.AGENT_INTERVAL_SECONDS

    @classmethod
    def register(cls, agent_id: str, **fields) -> "Instance":
        """Find or create the instance for ``agent_id``; given fields overwrite stored ones.

        Registration is idempotent: an agent that re-registers updates its instance in place.
        """
        fields = {key: value for key, value in fields.items() if value is not None}
        instance, created = cls.objects.get_or_create(
            agent_id=agent_id, defaults={"name": agent_id, **fields}
        )
        if not created and fields:
            changed = [key for key, value in fields.items() if getattr(instance, key) != value]
            if changed:
                for key in changed:
                    setattr(instance, key, fields[key])
                instance.save(update_fields=changed)
        return instance

    def mark_seen(self) -> None:
        """Record contact now; an instance that was silent (`unknown`) is `healthy` again.

        Alert evaluation derives `warning` and `unhealthy`; this only ends the silence.
        """
        self.last_seen = timezone.now()
        fields = ["last_seen"]
        if self.status == self.Status.UNKNOWN:
            self.status = self.Status.HEALTHY
            fields.append("status")
        self.save(update_fields=fields)

    @classmethod
    def mark_silent(cls) -> int:
        """The dead man's switch: instances with no data for 3 intervals become `unknown`."""
        cutoff = timezone.now() - timedelta(seconds=3 * settings.AGENT_INTERVAL_SECONDS)
        return (
            cls.objects.exclude(status=cls.Status.UNKNOWN)
            .filter(models.Q(last_seen__lt=cutoff) | models.Q(last_seen__isnull=True))
            .update(status=cls.Status.UNKNOWN)
        )


class Series(models.Model):
    """One metric name + label set of one instance; samples refer to it by id."""

    id = models.BigAutoField(primary_key=True)
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="series")
    name = models.CharField(max_length=200)
    # jsonb compares by content, so key order never makes two series of one label set.
    labels = models.JSONField(default=dict, blank=True)
    unit = models.CharField(max_length=50, blank=True)
    created = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name_plural = "series"
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "name", "labels"], name="series_unique_instance_name_labels"
            )
        ]
        indexes = [models.Index(fields=["name"])]

    def __str__(self) -> str:
        if not self.labels:
            return self.name
        labels = ",".join(f'{key}="{value}"' for key, value in sorted(self.labels.items()))
        return f"{self.name}{{{labels}}}"
