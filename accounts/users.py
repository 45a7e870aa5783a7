"""What an Admin does to other users from the Users page, each recorded as what it is:
``user.create`` (with ``invited``), ``user.invite``, ``user.deactivate``, ``user.activate``
and ``user.mfa_reset``."""

from allauth.account.forms import ResetPasswordForm
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.models import AuditEvent
from accounts.permissions import Role, set_role, user_role

User = get_user_model()


def create_user(
    actor, request, username: str, email: str, role: Role | None, password: str = ""
) -> "User":
    """A new user with ``role``; without a password they get an invitation email (allauth's
    password-reset link, worded as an invitation by accounts.adapters)."""
    with transaction.atomic():
        user = User.objects.create_user(username, email=email, password=password or None)
        # create_user leaves a None password unusable: the invitation link sets it.
        set_role(user, role, audited=False)
        if email:
            EmailAddress.objects.create(user=user, email=email, primary=True, verified=False)
        AuditEvent.record(
            actor,
            "user.create",
            user,
            request=request,
            role=role.value if role else None,
            invited=not password,
        )
    if not password:
        send_invitation(request, user)
    return user


def send_invitation(request, user) -> None:
    """Email ``user`` a link to choose their password (allauth's reset flow)."""
    form = ResetPasswordForm(data={"email": user.email})
    if not form.is_valid():
        raise ValueError(f"cannot invite {user.email!r}: {form.errors.as_text()}")
    form.save(request)


def is_invited(user) -> bool:
    """Added without a password and not yet logged in: their mail is an invitation."""
    return not user.has_usable_password() and user.last_login is None


def set_active(actor, request, user, active: bool) -> bool:
    """Let the user log in again, or stop them (their open sessions end with it); False when
    nothing changed."""
    if user.is_active == active:
        return False
    user.is_active = active
    user.save(update_fields=["is_active"])
    action = "user.activate" if active else "user.deactivate"
    AuditEvent.record(actor, action, user, request=request, role=_role_value(user))
    return True


def reset_mfa(actor, request, user) -> list[str]:
    """Remove the user's authenticator app and recovery codes, so they log in with their
    password alone and can set up a new app; returns the kinds removed."""
    authenticators = Authenticator.objects.filter(user=user)
    kinds = sorted({authenticator.type for authenticator in authenticators})
    if kinds:
        authenticators.delete()
        AuditEvent.record(actor, "user.mfa_reset", user, request=request, removed=kinds)
    return kinds


def _role_value(user) -> str | None:
    role = user_role(user)
    return role.value if role else None
