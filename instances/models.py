import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from instances.formats import iso8601
from instances.json_values import StoredJsonDecoder

# The agent id and type of the instance that stands for Vigil itself (Instance.vigil).
VIGIL_AGENT_ID = "vigil"
VIGIL_TYPE = "vigil"


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
    metadata = models.JSONField(default=dict, blank=True, decoder=StoredJsonDecoder)
    # Derived from freshness and open alerts by its one writer, alerts/instance_status.py;
    # stored because the overview filters on it.
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNKNOWN)
    # What the agent last said of itself (the REST PUT's status): shown, never the status.
    reported_status = models.CharField(max_length=16, choices=Status.choices, blank=True)
    # Not indexed: every ingest batch moves it, and an index on it would make each of those
    # updates write a new entry in every index of the table (no heap-only update).
    last_seen = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["status"])]

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
        if not created:
            instance.update(**fields)
        return instance

    @classmethod
    def vigil(cls) -> "Instance":
        """The instance that stands for Vigil itself: its own problems (backups, rollups) are
        alerts and samples of this instance."""
        return cls.register(VIGIL_AGENT_ID, name="Vigil", type=VIGIL_TYPE)

    @classmethod
    def named_by_label(cls, agent_id: str, known: dict) -> "Instance":
        """The instance a series' or alert's ``instance`` label names, registered on first
        sight, else (no label) Vigil's own; ``known`` maps agent ids already looked up, so a
        caller going through many series asks the database once per instance."""
        if agent_id not in known:
            known[agent_id] = cls.find_or_register(agent_id[:200]) if agent_id else cls.vigil()
        return known[agent_id]

    @classmethod
    def find(cls, ref: str) -> "Instance | None":
        """The instance ``ref`` names: its uuid or its agent id."""
        try:
            found = cls.objects.filter(pk=uuid.UUID(ref)).first()
        except (TypeError, ValueError, AttributeError):
            found = None
        return found or cls.objects.filter(agent_id=ref).first()

    @classmethod
    def agent_id_named_by(cls, ref: str) -> str:
        """The agent id of the instance ``ref`` names, or ``ref`` itself (a new agent id)."""
        known = cls.find(ref)
        return known.agent_id if known else ref

    @classmethod
    def find_or_register(cls, ref: str) -> "Instance":
        """The instance ``ref`` names, or a new one registered with ``ref`` as its agent id."""
        return cls.find(ref) or cls.register(ref)

    @classmethod
    def ids_named_by(cls, ref: str | None) -> list | None:
        """For list filters: None without ``ref``, else the id of the instance it names, if any."""
        if ref is None:
            return None
        instance = cls.find(ref)
        return [] if instance is None else [instance.pk]

    def update(self, **fields) -> None:
        """Overwrite the given fields (None leaves a field as it is); saves only what changed."""
        changed = self.changed_by(**fields)
        for key in changed:
            setattr(self, key, fields[key])
        if changed:
            self.save(update_fields=changed)

    def changed_by(self, **fields) -> list[str]:
        """The names of the given fields ``update`` would change."""
        return [
            key
            for key, value in fields.items()
            if value is not None and getattr(self, key) != value
        ]

    def to_api(self) -> dict:
        """The seed API's instance object (PRODUCT.md 5.2), plus ``agentId``."""
        return {
            "id": str(self.pk),
            "agentId": self.agent_id,
            "name": self.name,
            "type": self.type,
            "region": self.region,
            "endpoint": self.endpoint,
            "metadata": self.metadata,
            "status": self.status,
            "reportedStatus": self.reported_status or None,
            "lastHealthCheck": iso8601(self.last_seen),
        }


class Series(models.Model):
    """One metric name + label set of one instance; samples refer to it by id."""

    id = models.BigAutoField(primary_key=True)
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="series")
    name = models.CharField(max_length=200)
    # jsonb compares by content, so key order never makes two series of one label set.
    labels = models.JSONField(default=dict, blank=True)
    unit = models.CharField(max_length=50, blank=True)
    created = models.DateTimeField(default=timezone.now, editable=False)
    # The newest stored sample, kept by the write path (store.write_samples): "latest value of
    # every series" reads these rows instead of descending into samples once per series.
    last_ts = models.DateTimeField(null=True, blank=True, editable=False)
    last_value = models.FloatField(null=True, blank=True, editable=False)

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
