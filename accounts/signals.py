"""New users get the default role; sign-ups, logins, failed logins and logouts go to the audit
log."""

from allauth.account.signals import user_signed_up
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_migrate, post_save
from django.dispatch import receiver

from accounts.models import AuditEvent
from accounts.permissions import (
    announce_access_change,
    default_role,
    set_role,
    sync_roles,
    user_role,
)


def connect(sender_app) -> None:
    post_migrate.connect(recreate_roles, sender=sender_app, dispatch_uid="accounts.sync_roles")
    post_save.connect(
        give_new_user_the_default_role,
        sender=get_user_model(),
        dispatch_uid="accounts.default_role",
    )
    post_save.connect(
        close_sockets_of_deactivated_user,
        sender=get_user_model(),
        dispatch_uid="accounts.close_sockets_of_deactivated_user",
    )


def recreate_roles(sender, **kwargs):
    sync_roles()


def close_sockets_of_deactivated_user(sender, instance, created, raw=False, **kwargs):
    if not created and not raw and not instance.is_active:
        announce_access_change(instance.pk)


def give_new_user_the_default_role(sender, instance, created, raw=False, **kwargs):
    # Part of the user's creation, which its creator records (user.create, user.signup).
    role = default_role()
    if created and not raw and role is not None:
        set_role(instance, role, audited=False)


@receiver(user_signed_up, dispatch_uid="accounts.audit_signup")
def audit_signup(sender, request, user, **kwargs):
    """People who made their own account (sign-up, or a first login through a provider)."""
    role = user_role(user)
    AuditEvent.record(user, "user.signup", user, request=request, role=role and role.value)


@receiver(user_logged_in, dispatch_uid="accounts.audit_login")
def audit_login(sender, request, user, **kwargs):
    AuditEvent.record(user, "login", user, request=request)


@receiver(user_login_failed, dispatch_uid="accounts.audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs):
    # Django masks the password in `credentials`; only the name tried is kept.
    tried = next(
        (str(credentials[key]) for key in ("username", "email", "login") if credentials.get(key)),
        "",
    )
    AuditEvent.record(tried, "login.failed", request=request)


@receiver(user_logged_out, dispatch_uid="accounts.audit_logout")
def audit_logout(sender, request, user, **kwargs):
    if user is not None:
        AuditEvent.record(user, "logout", user, request=request)
        # The session's live pages close with it (Django flushes it right after this signal).
        announce_access_change(user.pk, ended_session=request.session.session_key)
