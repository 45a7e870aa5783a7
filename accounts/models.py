import ipaddress

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class Access(models.Model):
    """Carries Vigil's own permissions; it has no table.

    Roles (accounts/permissions.py) are Django groups holding these permissions, so Django's
    usual ``user.has_perm("accounts.operate_alerts")`` answers role questions too.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_dashboard", "Can view dashboards, instances and alerts"),
            ("operate_alerts", "Can acknowledge, resolve and silence alerts"),
            ("manage", "Can manage instances, rules, channels, tokens and users"),
        ]

    def __str__(self) -> str:
        return "Vigil access"


class AuditEvent(models.Model):
    """Who did what, when, to what: an append-only log.

    Write one with ``AuditEvent.record(actor, action, target, **details)`` from the code that
    performs the action, right after it succeeds::

        AuditEvent.record(user, "alert.acknowledge", alert, note=note)
        AuditEvent.record(user, "rule.change", rule, fields=["threshold"])
        AuditEvent.record("web-1 agent", "token.use", token)   # an actor that is not a user

    ``actor`` is a user, a plain label (a token's name, a command) or None for Vigil itself.
    ``action`` is ``<thing>.<verb>``: ``login``, ``login.failed``, ``logout``, ``role.change``,
    ``token.create``, ``token.revoke``, ``token.change``, ``token.delete``, ``alert.acknowledge``,
    ``alert.resolve``, ``silence.create``, ``silence.end``, ``silence.delete``, ``rule.change``,
    ``channel.change`` … ``target`` is a model instance (its type, id and name are kept, so the
    event outlives it), a plain label, or None. ``details`` must be JSON-serialisable.
    Events are never changed or deleted, neither here nor in Django admin.
    """

    created = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    # Kept as text too: the user may be deleted, and some actors are not users at all.
    actor_label = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["actor_label", "-created"])]

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M:%S} {self.actor_label or 'system'} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit events are append-only.")

    @classmethod
    def record(cls, actor, action: str, target=None, *, request=None, **details) -> "AuditEvent":
        """Append one event; ``request`` (optional) supplies the client's address."""
        user, label = None, ""
        if isinstance(actor, str):
            label = actor
        elif actor is not None and actor.is_authenticated:
            user, label = actor, actor.get_username()
        target_type = target_id = target_label = ""
        if isinstance(target, models.Model):
            target_type, target_id = target._meta.label_lower, str(target.pk)
            target_label = str(target)
        elif target is not None:
            target_label = str(target)
        return cls.objects.create(
            actor=user,
            actor_label=label[:150],
            action=action,
            target_type=target_type,
            target_id=target_id,
            target_label=target_label[:200],
            details=details,
            ip=client_ip(request) if request is not None else None,
        )

    @property
    def actor_display(self) -> str:
        return self.actor_label or "system"


def client_ip(request) -> str | None:
    """The client's address; behind HTTPS=1 the proxy's X-Forwarded-For is trusted."""
    address = request.META.get("REMOTE_ADDR") or None
    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            address = forwarded.split(",")[-1].strip() or address
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return None
    return address


class Profile(models.Model):
    """A user's own settings. ``time_zone`` (an IANA name) is the one pages and charts show
    times in; blank follows the browser's."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    time_zone = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"{self.user} ({self.time_zone or 'browser time zone'})"
