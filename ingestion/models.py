import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import AuditEvent

TOKEN_PREFIX = "vgl_"
# last_used is written at most this often per token, not on every request.
LAST_USED_RESOLUTION_SECONDS = 60


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
