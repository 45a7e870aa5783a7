"""Admin pages of accounts: users and their roles, and the audit log."""

from datetime import datetime, time

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import AuditEvent
from accounts.permissions import Role, role_required, set_role, user_role

User = get_user_model()
AUDIT_PAGE_SIZE = 100


def _user_row(user) -> dict:
    return {"user": user, "role": user_role(user), "roles": Role.choices}


@role_required(Role.ADMIN)
def user_list(request):
    """Every user with a role picker; changing it saves at once."""
    users = User.objects.order_by("username").prefetch_related("groups")
    return render(request, "account/users.html", {"rows": [_user_row(user) for user in users]})


@require_POST
@role_required(Role.ADMIN)
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
    if request.htmx:
        context = {**_user_row(User.objects.prefetch_related("groups").get(pk=pk)), "error": error}
        return render(request, "account/partials/user_row.html", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(
            request,
            f"{user.get_username()} is now {Role(value).label if value else 'without a role'}.",
        )
    return redirect("accounts:users")


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
