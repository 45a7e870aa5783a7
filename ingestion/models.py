import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models, transaction
from django.db.models import ExpressionWrapper, F
from django.utils import timezone

from accounts.models import AuditEvent

TOKEN_PREFIX = "vgl_"
# last_used is written at most this often per token, not on every request.
LAST_USED_RESOLUTION_SECONDS = 60
# Celery beat looks for due scrape targets this often (config/settings.py schedules it).
SCRAPE_TICK_SECONDS = 5


def hash_token(token: str) -> str:
    """Tokens are long random strings, so one round of SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


class IngestToken(models.Model):
    """A bearer token for agents and API clients; only its hash is stored."""

    class Scope(models.TextChoices):
        WRITE = "write", "read and write"
        READ = "read", "read only"

    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The first characters, so people can tell their tokens apart in lists.
    prefix = models.CharField(max_length=12, editable=False)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.WRITE)
    created = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, editable=False
    )
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(
        cls, name: str, scope: str = Scope.WRITE, created_by=None, actor=None
    ) -> tuple["IngestToken", str]:
        """Create a token; the plain value is returned once and never stored.

        ``actor`` (default ``created_by``) is who the audit log names: a user or a label.
        """
        plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            name=name,
            token_hash=hash_token(plain),
            prefix=plain[: len(TOKEN_PREFIX) + 4],
            scope=scope,
            created_by=created_by,
        )
        AuditEvent.record(actor or created_by, "token.create", token, scope=scope)
        return token, plain

    @classmethod
    def authenticate(cls, plain: str) -> "IngestToken | None":
        """The live token with this value, or None (unknown or revoked)."""
        token = cls.objects.filter(token_hash=hash_token(plain), revoked_at__isnull=True).first()
        if token is not None:
            token.touch()
        return token

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def can_write(self) -> bool:
        return self.scope == self.Scope.WRITE

    def touch(self) -> None:
        now = timezone.now()
        stale = self.last_used is None or (
            (now - self.last_used).total_seconds() > LAST_USED_RESOLUTION_SECONDS
        )
        if stale:
            self.last_used = now
            IngestToken.objects.filter(pk=self.pk).update(last_used=now)

    def revoke(self, actor=None) -> bool:
        """Stop the token working; False if it already was revoked."""
        revoked = IngestToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        self.refresh_from_db(fields=["revoked_at"])
        if revoked:
            AuditEvent.record(actor, "token.revoke", self)
        return bool(revoked)


class ScrapeTarget(models.Model):
    """A Prometheus exposition endpoint of an instance (say, its node_exporter), scraped by Vigil.

    Each scrape stores the samples it exposes on the instance, plus ``up`` (1 or 0) and
    ``scrape_duration_seconds`` labelled with the target's URL; the shipped "TargetDown" rule
    turns ``up`` 0 into a critical alert, which makes the instance unhealthy.
    """

    instance = models.ForeignKey(
        "instances.Instance", on_delete=models.CASCADE, related_name="scrape_targets"
    )
    url = models.URLField(max_length=500, help_text="e.g. http://host:9100/metrics")
    interval_seconds = models.PositiveIntegerField(
        "interval (seconds)", default=30, validators=[MinValueValidator(5)]
    )
    enabled = models.BooleanField(default=True)
    last_scrape_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_up = models.BooleanField(null=True, editable=False)
    last_duration = models.FloatField("last duration (seconds)", null=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    created = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["instance__name", "url"]
        constraints = [
            models.UniqueConstraint(fields=["instance", "url"], name="scrape_target_unique_url")
        ]

    def __str__(self) -> str:
        return self.url

    @classmethod
    def claim_due(cls, now=None, limit: int = 1000) -> list["ScrapeTarget"]:
        """Enabled targets whose interval has passed, stamped as scraped ``now``.

        Rows another worker holds are skipped and the claim commits at once, so two workers
        never scrape one target in the same interval.
        """
        now = now or timezone.now()
        # A beat tick of slack, so a target is not scraped a whole tick late every time.
        slack = timedelta(seconds=SCRAPE_TICK_SECONDS / 2)
        with transaction.atomic():
            due = list(
                cls.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("instance")
                .annotate(due_at=F("last_scrape_at") + _interval())
                .filter(
                    models.Q(last_scrape_at__isnull=True) | models.Q(due_at__lte=now + slack),
                    enabled=True,
                )
                .order_by("last_scrape_at")[:limit]
            )
            cls.objects.filter(pk__in=[target.pk for target in due]).update(last_scrape_at=now)
        for target in due:
            target.last_scrape_at = now
        return due

    @classmethod
    def make_due_again(cls, targets: list["ScrapeTarget"]) -> None:
        """Give back the claim of targets whose scrape could not be stored, so the next tick
        scrapes them again instead of waiting out their interval."""
        cls.objects.filter(pk__in=[target.pk for target in targets]).update(
            last_scrape_at=F("last_scrape_at") - _interval()
        )

    def record(self, up: bool, duration: float, error: str = "") -> None:
        self.last_up, self.last_duration, self.last_error = up, duration, error
        self.save(update_fields=["last_up", "last_duration", "last_error"])


def _interval() -> ExpressionWrapper:
    """A scrape target's interval as an SQL interval."""
    return ExpressionWrapper(
        F("interval_seconds") * timedelta(seconds=1), output_field=models.DurationField()
    )
