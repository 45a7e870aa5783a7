import base64
import binascii
import hashlib
import secrets
import time
from datetime import timedelta
from fnmatch import fnmatchcase

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import PermissionDenied
from django.core.validators import MinValueValidator
from django.db import models, transaction
from django.db.models import ExpressionWrapper, F
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from accounts.models import AuditEvent

TOKEN_PREFIX = "vgl_"
# last_used is written at most this often per token, not on every request.
LAST_USED_RESOLUTION_SECONDS = 60
# A live token is read from the database at most this often per process (an agent sends its
# token with every batch): a token revoked, changed or deleted elsewhere is refused within this
# time; through this process, at once.
TOKEN_CACHE_SECONDS = 1.0
# More live tokens than this in one process's cache: it starts afresh.
TOKEN_CACHE_SIZE = 10_000
# Celery beat looks for due scrape targets this often (config/settings.py schedules it).
SCRAPE_TICK_SECONDS = 5


def hash_token(token: str) -> str:
    """Tokens are long random strings, so one round of SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


def default_scopes() -> list[str]:
    """A new token's scopes unless told otherwise: what an agent needs."""
    return ["ingest", "read"]


class IngestToken(models.Model):
    """A bearer token for agents and API clients; only its hash is stored.

    Its scopes say what it may do (PRODUCT.md section 8): ``ingest`` pushes samples and alerts
    for the agent ids its patterns allow (any when it has none), ``read`` reads, ``manage``
    changes and deletes instances, alerts and rules. A host's token has ``ingest`` (and
    usually ``read``), never ``manage``.
    """

    class Scope(models.TextChoices):
        INGEST = "ingest", "ingest (push samples and alerts)"
        READ = "read", "read"
        MANAGE = "manage", "manage (change and delete instances, alerts, rules)"

    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The first characters, so people can tell their tokens apart in lists.
    prefix = models.CharField(max_length=12, editable=False)
    scopes = ArrayField(
        models.CharField(max_length=8, choices=Scope.choices), default=default_scopes, size=3
    )
    agent_patterns = ArrayField(
        models.CharField(max_length=200),
        default=list,
        blank=True,
        verbose_name="agent ids",
        help_text="Shell-style patterns (web-*) of the agent ids it may push for; empty: any.",
    )
    expires_at = models.DateTimeField("expires", null=True, blank=True)
    created = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, editable=False
    )
    last_used = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_address = models.GenericIPAddressField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(
        cls,
        name: str,
        scopes: list[str] | None = None,
        created_by=None,
        actor=None,
        agent_patterns: list[str] | None = None,
        expires_at=None,
    ) -> tuple["IngestToken", str]:
        """Create a token (by default ``ingest`` + ``read``); the plain value is returned once
        and never stored.

        ``actor`` (default ``created_by``) is who the audit log names: a user or a label.
        """
        plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
        scopes = sorted(set(scopes or default_scopes()), key=cls.Scope.values.index)
        token = cls.objects.create(
            name=name,
            token_hash=hash_token(plain),
            prefix=plain[: len(TOKEN_PREFIX) + 4],
            scopes=scopes,
            agent_patterns=agent_patterns or [],
            expires_at=expires_at,
            created_by=created_by,
        )
        AuditEvent.record(
            actor or created_by,
            "token.create",
            token,
            scopes=scopes,
            agent_patterns=token.agent_patterns,
            expires_at=expires_at.isoformat() if expires_at else None,
        )
        return token, plain

    @classmethod
    def authenticate(cls, plain: str, address: str | None = None) -> "IngestToken | None":
        """The live token with this value, or None (unknown, revoked or expired).

        Live tokens are kept per process for ``TOKEN_CACHE_SECONDS``; unknown values are not
        kept (anyone can send those)."""
        token_hash = hash_token(plain)
        cached = _LIVE_TOKENS.get(token_hash)
        if cached is not None and time.monotonic() - cached[0] < TOKEN_CACHE_SECONDS:
            token = None if cached[1].is_expired else cached[1]
        else:
            token = (
                cls.objects.filter(token_hash=token_hash, revoked_at__isnull=True)
                .exclude(expires_at__lte=timezone.now())
                .first()
            )
            _remember_live_token(token_hash, token)
        if token is not None:
            token.touch(address)
        return token

    @classmethod
    def from_authorization(cls, header: str, address: str | None = None) -> "IngestToken | None":
        """The live token of an ``Authorization`` header: ``Bearer <token>``, or basic auth
        with the token as the password (what promtool and some Grafana set-ups can send)."""
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                credentials = base64.b64decode(credentials.strip()).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                return None
        elif scheme.lower() != "bearer":
            return None
        credentials = credentials.strip()
        return cls.authenticate(credentials, address) if credentials else None

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def get_scopes_display(self) -> str:
        return ", ".join(self.scopes)

    def may_push_for(self, agent_id: str) -> bool:
        """Whether its agent-id patterns (none: any) allow pushing under ``agent_id``."""
        return not self.agent_patterns or any(
            fnmatchcase(agent_id, pattern) for pattern in self.agent_patterns
        )

    def check_push_for(self, agent_ids) -> None:
        """PermissionDenied (the API's 403) unless it may push under every one of ``agent_ids``."""
        refused = sorted({agent_id for agent_id in agent_ids if not self.may_push_for(agent_id)})
        if refused:
            shown = ", ".join(repr(agent_id) for agent_id in refused[:10])
            raise PermissionDenied(f"this token may not push for agent id(s) {shown}")

    def touch(self, address: str | None = None) -> None:
        now = timezone.now()
        stale = self.last_used is None or (
            (now - self.last_used).total_seconds() > LAST_USED_RESOLUTION_SECONDS
        )
        if stale or (address and address != self.last_used_address):
            self.last_used, self.last_used_address = now, address or self.last_used_address
            IngestToken.objects.filter(pk=self.pk).update(
                last_used=now, last_used_address=self.last_used_address
            )

    def revoke(self, actor=None) -> bool:
        """Stop the token working; False if it already was revoked."""
        revoked = IngestToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        self.refresh_from_db(fields=["revoked_at"])
        _LIVE_TOKENS.pop(self.token_hash, None)
        if revoked:
            AuditEvent.record(actor, "token.revoke", self)
        return bool(revoked)


# Token hash → (when it was read, monotonic seconds; the live token), see TOKEN_CACHE_SECONDS.
_LIVE_TOKENS: dict[str, tuple[float, IngestToken]] = {}


@receiver(post_save, sender=IngestToken, dispatch_uid="ingestion.token_saved")
@receiver(post_delete, sender=IngestToken, dispatch_uid="ingestion.token_deleted")
def _forget_live_token(sender, instance: IngestToken, **kwargs) -> None:
    """A token changed (its scopes, patterns or expiry in the admin) or deleted through this
    process takes effect here at once; ``revoke`` forgets it itself (an UPDATE sends no signal)."""
    _LIVE_TOKENS.pop(instance.token_hash, None)


def _remember_live_token(token_hash: str, token: IngestToken | None) -> None:
    if token is None:
        _LIVE_TOKENS.pop(token_hash, None)
        return
    if len(_LIVE_TOKENS) >= TOKEN_CACHE_SIZE:
        _LIVE_TOKENS.clear()
    _LIVE_TOKENS[token_hash] = (time.monotonic(), token)


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
