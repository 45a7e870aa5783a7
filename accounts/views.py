"""Admin pages of accounts: users (added, invited, re-roled, deactivated) and the audit log."""

from datetime import datetime, time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import time_zones, users
from accounts.forms import AddUserForm
from accounts.models import AuditEvent, Profile
from accounts.permissions import Role, recent_login_required, role_required, set_role, user_role

User = get_user_model()
AUDIT_PAGE_SIZE = 100


def _user_row(request, user) -> dict:
    return {
        "user": user,
        "changeable": not _refusal(request, user),
        "role": user_role(user),
        "roles": Role.choices,
        "has_mfa": bool(user.authenticator_set.all()),
        "invited": users.is_invited(user),
    }


def _users():
    return User.objects.order_by("username").prefetch_related("groups", "authenticator_set")


@role_required(Role.ADMIN)
def user_list(request):
    """Every user with a role picker (changing it saves at once), their state and actions, and
    the form that adds or invites one."""
    if request.method != "POST":
        return _user_page(request, AddUserForm())
    form = AddUserForm(request.POST)
    if not form.is_valid():
        return _user_page(request, form, status=400)
    data = form.cleaned_data
    user = users.create_user(
        request.user, request, data["username"], data["email"], form.chosen_role, data["password"]
    )
    if form.invites:
        messages.success(request, f"Invited {user.get_username()}: a link went to {user.email}.")
    else:
        messages.success(request, f"Added {user.get_username()}; they can log in now.")
    return redirect("accounts:users")


def _user_page(request, form: AddUserForm, status: int = 200):
    context = {
        "rows": [_user_row(request, user) for user in _users()],
        "form": form,
        "email_is_console": settings.EMAIL_BACKEND.endswith("console.EmailBackend"),
    }
    return render(request, "account/users.html", context, status=status)


def _answer_row(request, pk, error: str, done: str):
    """The user's row for HTMX, else back to the list with ``error`` or ``done`` as a message."""
    if request.htmx:
        context = {**_user_row(request, _users().get(pk=pk)), "error": error}
        return render(request, "account/partials/user_row.html", context)
    if error:
        messages.error(request, error)
    elif done:
        messages.success(request, done)
    return redirect("accounts:users")


def _refusal(request, user) -> str:
    """Why an Admin may not change ``user`` from the Users page, or ""."""
    if user == request.user:
        return "You cannot change your own account here."
    if user.is_superuser and not request.user.is_superuser:
        return "Only a superuser changes a superuser."
    return ""


@require_POST
@role_required(Role.ADMIN)
def user_active(request, pk):
    """Deactivate (``active=false``: they can no longer log in) or reactivate a user."""
    user = get_object_or_404(User, pk=pk)
    active = request.POST.get("active") == "true"
    error = _refusal(request, user)
    if not error:
        users.set_active(request.user, request, user, active)
    done = f"{user.get_username()} is {'active again' if active else 'deactivated'}."
    return _answer_row(request, pk, error, done)


@require_POST
@role_required(Role.ADMIN)
def user_mfa_reset(request, pk):
    """Remove the user's authenticator app and recovery codes (a lost phone)."""
    user = get_object_or_404(User, pk=pk)
    error = _refusal(request, user)
    if not error and not users.reset_mfa(request.user, request, user):
        error = f"{user.get_username()} has no two-factor authentication to reset."
    done = f"Two-factor authentication of {user.get_username()} reset."
    return _answer_row(request, pk, error, done)


@require_POST
@role_required(Role.ADMIN)
def user_invite(request, pk):
    """Send an invited user's link again."""
    user = get_object_or_404(User, pk=pk)
    error = "" if users.is_invited(user) and user.email else "Only invited users get a new link."
    if not error:
        users.send_invitation(request, user)
        AuditEvent.record(request.user, "user.invite", user, request=request)
    return _answer_row(request, pk, error, f"A new link went to {user.email}.")


@require_POST
@role_required(Role.ADMIN)
@recent_login_required
def user_role_change(request, pk):
    user = get_object_or_404(User.objects.prefetch_related("groups"), pk=pk)
    value = request.POST.get("role", "")
    error = ""
    if user == request.user:
        error = "You cannot change your own role."
    elif user.is_superuser:
        error = "Superusers hold every role."
    elif value and value not in Role.values:
        error = "Unknown role."
    else:
        set_role(user, Role(value) if value else None, actor=request.user)
    done = f"{user.get_username()} is now {Role(value).label if value else 'without a role'}."
    return _answer_row(request, pk, error, done)


def _day(value: str, end: bool = False):
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None
    return timezone.make_aware(datetime.combine(day, time.max if end else time.min))


@role_required(Role.ADMIN)
def audit_log(request):
    """Audit events newest first, filtered by action, actor and a date range."""
    filters = {
        key: request.GET.get(key, "").strip() for key in ("action", "actor", "since", "until")
    }
    events = AuditEvent.objects.all()
    if filters["action"]:
        events = events.filter(action=filters["action"])
    if filters["actor"]:
        events = events.filter(actor_label__iexact=filters["actor"])
    if since := _day(filters["since"]):
        events = events.filter(created__gte=since)
    if until := _day(filters["until"], end=True):
        events = events.filter(created__lte=until)
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "filters": filters,
        "query": query.urlencode(),
        "actions": AuditEvent.objects.order_by("action")
        .values_list("action", flat=True)
        .distinct(),
    }
    if request.htmx:
        return render(request, "account/partials/audit_table.html", context)
    return render(request, "account/audit.html", context)


@login_required
def profile(request):
    """The user's own settings: the time zone pages and charts show times in."""
    profile, _ = Profile.objects.get_or_create(user=request.user)
    if request.method == "POST":
        chosen = request.POST.get("time_zone", "")
        if chosen and time_zones.zone_of(chosen) is None:
            messages.error(request, f"{chosen} is not a time zone.")
            return redirect("accounts:profile")
        profile.time_zone = chosen
        profile.save(update_fields=["time_zone"])
        messages.success(request, f"Times are shown in {chosen or 'your browser’s time zone'}.")
        return redirect("accounts:profile")
    context = {"profile": profile, "time_zones": time_zones.names()}
    return render(request, "account/profile.html", context)
