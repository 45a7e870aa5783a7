"""Roles and the checks that guard views, HTMX endpoints and websocket consumers.

Viewer reads; Operator also acknowledges, resolves and silences alerts; Admin also manages
instances, rules, channels, tokens and users (and uses Django admin). Each role is a Django group
holding the permissions of the roles below it plus its own, so a user's role is the highest group
they are in, and superusers hold every role.

    @role_required(Role.OPERATOR)
    def acknowledge(request, pk): ...

    class OverviewConsumer(RoleRequiredConsumer, AsyncWebsocketConsumer):
        required_role = Role.VIEWER
"""

import logging
from functools import wraps
from urllib.parse import urlencode, urlsplit

from allauth.account.decorators import reauthentication_required
from allauth.core.exceptions import ReauthenticationRequired
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import models, transaction
from django.http import HttpResponse
from django.urls import reverse

logger = logging.getLogger(__name__)

# Websocket close codes: the 4000 range mirrors HTTP 401 and 403. The page reconnects after
# ACCESS_CHANGED (its user still may watch, but sees other controls now), not after 4401/4403.
UNAUTHENTICATED_CLOSE_CODE = 4401
FORBIDDEN_CLOSE_CODE = 4403
ACCESS_CHANGED_CLOSE_CODE = 4000


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"

    @property
    def permission(self) -> str:
        """The permission that says a user has at least this role."""
        return f"accounts.{ROLE_GRANTS[self][-1]}"

    @property
    def group_name(self) -> str:
        return self.label


# Each role's permissions (codenames of accounts.Access), its own last.
ROLE_GRANTS = {
    Role.VIEWER: ["view_dashboard"],
    Role.OPERATOR: ["view_dashboard", "operate_alerts"],
    Role.ADMIN: ["view_dashboard", "operate_alerts", "manage"],
}


def sync_roles(apps=django_apps) -> None:
    """Create the role groups with their permissions; idempotent.

    Runs from the data migration (with historical models) and after every migrate, so a test
    database flushed between tests gets its groups back.
    """
    from accounts.models import Access

    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    GroupModel = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="accounts", model="access")
    permissions = {}
    for codename, name in Access._meta.permissions:
        permissions[codename], _ = Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
    for role, codenames in ROLE_GRANTS.items():
        group, _ = GroupModel.objects.get_or_create(name=role.group_name)
        group.permissions.add(*(permissions[codename] for codename in codenames))


def default_role() -> Role | None:
    """The role new users (local or from an identity provider) get: setting DEFAULT_ROLE."""
    value = (settings.DEFAULT_ROLE or "none").lower()
    if value == "none":
        return None
    try:
        return Role(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"DEFAULT_ROLE must be one of {', '.join(Role.values)} or none, not {value!r}"
        ) from None


def has_role(user, role: Role) -> bool:
    """Whether the user holds ``role`` or a higher one; superusers hold them all."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or user.has_perm(role.permission)


def user_role(user) -> Role | None:
    """The highest role the user is in (uses prefetched ``groups`` when there are some)."""
    if user.is_superuser:
        return Role.ADMIN
    names = {group.name for group in user.groups.all()}
    for role in reversed(Role):
        if role.group_name in names:
            return role
    return None


def set_role(user, role: Role | None, actor=None, audited: bool = True) -> None:
    """Make ``role`` the user's only role (None: no role at all), recorded in the audit log
    unless ``audited`` is False (a new user's first role is part of its ``user.create``)."""
    with transaction.atomic():
        before = user_role(user)
        user.groups.remove(*Group.objects.filter(name__in=[r.group_name for r in Role]))
        if role is not None:
            user.groups.add(Group.objects.get(name=role.group_name))
        role_changed(user, before, role, actor, audited=audited)


def role_changed(
    user, before: Role | None, after: Role | None, actor=None, audited: bool = True
) -> None:
    """Follow up a change of the user's role groups, however it was made.

    Admins get ``is_staff`` (Django admin needs it) and lose it with the role; the change is
    audited (unless ``audited`` is False).
    """
    sync_staff(user, after)
    if before != after:
        announce_access_change(user.pk)
    # has_perm caches per user object; the next check must see the new groups.
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache", "_admin_role_cache"):
        user.__dict__.pop(cache, None)
    if audited and before != after:
        from accounts.models import AuditEvent

        AuditEvent.record(
            actor,
            "role.change",
            user,
            before=before.value if before else None,
            after=after.value if after else None,
        )


def sync_staff(user, role: Role | None) -> None:
    staff = user.is_superuser or role == Role.ADMIN
    if user.is_staff != staff:
        user.is_staff = staff
        get_user_model().objects.filter(pk=user.pk).update(is_staff=staff)


def login_redirect(request) -> HttpResponse:
    """Send an anonymous visitor to the login page; an HTMX request is told to go there whole."""
    response = redirect_to_login(request.get_full_path())
    if getattr(request, "htmx", False):
        return HttpResponse(status=401, headers={"HX-Redirect": response["Location"]})
    return response


def role_required(role: Role):
    """View decorator: anonymous visitors go to the login page, users without ``role`` get 403."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return login_redirect(request)
            if not has_role(request.user, role):
                if getattr(request, "htmx", False):
                    # htmx does not swap error responses; the text is for the console.
                    return HttpResponse(f"This needs the {role.label} role.", status=403)
                raise PermissionDenied(f"This needs the {role.label} role.")
            return view(request, *args, **kwargs)

        wrapper.required_role = role
        return wrapper

    return decorator


async def scope_has_role(scope, role: Role) -> bool:
    """``has_role`` for a Channels scope (its ``user`` comes from the session middleware)."""
    return await database_sync_to_async(has_role)(scope.get("user"), role)


def require_recent_login(request) -> None:
    """Raise allauth's ReauthenticationRequired unless the user confirmed their password (or
    second factor) in the last few minutes; allauth's middleware then asks for it and comes
    back. For what would hand over the keys if a session were stolen: creating API tokens,
    changing roles, downloading backups."""
    reauthentication_required(lambda request: None)(request)


def recent_login_required(view):
    """View decorator of ``require_recent_login``. An HTMX request is sent to the password page
    as a whole page (HX-Redirect), then back to the page it came from."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            require_recent_login(request)
        except ReauthenticationRequired:
            if not getattr(request, "htmx", False):
                raise
            page = urlsplit(request.headers.get("HX-Current-URL", "")).path or "/"
            confirm = f"{reverse('account_reauthenticate')}?{urlencode({'next': page})}"
            return HttpResponse(headers={"HX-Redirect": confirm})
        return view(request, *args, **kwargs)

    return wrapper


def user_group(user_id) -> str:
    """The channel-layer group of every open websocket of one user."""
    return f"vigil.user.{user_id}"


def announce_access_change(user_id, ended_session: str = "") -> None:
    """Tell the user's open websockets, once the current transaction commits, to check again
    whether they may stay open: after a logout (``ended_session``), a role change or a
    deactivation. A socket otherwise keeps what its handshake allowed for as long as it lives."""
    event = {"type": "access.changed", "ended_session": ended_session or ""}

    def send() -> None:
        try:
            async_to_sync(get_channel_layer().group_send)(user_group(user_id), event)
        except Exception:
            # The change itself is done; without Redis there are no live sockets to tell.
            logger.warning("open websockets of user %s not told of an access change", user_id)

    transaction.on_commit(send)


class RoleRequiredConsumer:
    """Mixin for Channels consumers: the handshake is refused unless the user holds the role,
    and the socket is closed when the user loses it later.

    Anonymous sockets are closed with 4401, users without the role with 4403, before accept.
    Each socket joins its user's group (``user_group``); on ``announce_access_change`` it
    closes with 4401 when its session ended or the user was deactivated, 4403 when the role is
    gone, and ACCESS_CHANGED when the user may now do more or less on the page (``can_operate``).
    """

    required_role: Role = Role.VIEWER

    async def websocket_connect(self, message):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED_CLOSE_CODE)
            return
        if not await scope_has_role(self.scope, self.required_role):
            await self.close(code=FORBIDDEN_CLOSE_CODE)
            return
        self.access_group = user_group(user.pk)
        await self.channel_layer.group_add(self.access_group, self.channel_name)
        await super().websocket_connect(message)

    async def websocket_disconnect(self, message):
        if getattr(self, "access_group", None):
            await self.channel_layer.group_discard(self.access_group, self.channel_name)
        await super().websocket_disconnect(message)

    async def access_changed(self, event):
        code = await database_sync_to_async(self.close_code_now)(event["ended_session"])
        if code is not None:
            await self.close(code=code)

    def close_code_now(self, ended_session: str) -> int | None:
        """Why this socket must close now that its user's access changed, or None."""
        session = self.scope.get("session")
        if ended_session and session is not None and session.session_key == ended_session:
            return UNAUTHENTICATED_CLOSE_CODE
        user = get_user_model().objects.filter(pk=self.scope["user"].pk, is_active=True).first()
        if user is None:
            return UNAUTHENTICATED_CLOSE_CODE
        if not has_role(user, self.required_role):
            return FORBIDDEN_CLOSE_CODE
        can_operate = getattr(self, "can_operate", None)
        if can_operate is not None and has_role(user, Role.OPERATOR) != can_operate:
            return ACCESS_CHANGED_CLOSE_CODE
        return None
