"""The checks pages: the list, one check's page, the form that makes or edits one, pause or
resume, delete; and the groups (status pages, slug pings): their list, form and delete. Viewers
read; Operators and Admins change (the controls are not shown to Viewers, and their endpoints
answer them 403)."""

from django.contrib import messages
from django.db import transaction
from django.db.models import Count
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.auditing import record_deleted, record_saved
from accounts.models import AuditEvent
from accounts.permissions import Role, has_role, role_required
from checks.forms import CheckGroupForm, check_form
from checks.models import Check, CheckGroup
from dashboard import checks_page


@role_required(Role.VIEWER)
def checks_list(request):
    """Every check with its state, last result, 24-hour latency and uptime."""
    context = checks_page.list_context(has_role(request.user, Role.OPERATOR))
    if request.htmx:
        # The polling fallback: the same out-of-band fragments the socket pushes.
        return render(request, "dashboard/partials/checks_live.html", context)
    return render(request, "dashboard/checks.html", context)


@role_required(Role.VIEWER)
def check_detail(request, pk):
    check = get_object_or_404(Check.objects.select_related("group"), pk=pk)
    can_operate = has_role(request.user, Role.OPERATOR)
    if request.htmx:
        context = checks_page.status_context(check, can_operate)
        return render(request, "dashboard/partials/check_live.html", context)
    return render(request, "dashboard/check.html", checks_page.check_context(check, can_operate))


@role_required(Role.OPERATOR)
def check_create(request, kind):
    if kind not in Check.Kind.values:
        return HttpResponseBadRequest("no such kind of check")
    return _check_form(request, Check(kind=kind))


@role_required(Role.OPERATOR)
def check_edit(request, pk):
    return _check_form(request, get_object_or_404(Check, pk=pk))


def _check_form(request, check: Check):
    """The check form: saved and audited, then on to the check's page; shown again with its
    errors (400) when the model refuses it."""
    created, saved_name = check._state.adding, check.name
    form_class = check_form(check.kind)
    context = {"kind": check.get_kind_display(), "name": saved_name, "created": created}
    if request.method != "POST":
        return render(
            request, "dashboard/check_form.html", {**context, "form": form_class(instance=check)}
        )
    form = form_class(request.POST, instance=check)
    if not form.is_valid():
        return render(request, "dashboard/check_form.html", {**context, "form": form}, status=400)
    with transaction.atomic():
        check = form.save()
        record_saved(request.user, check, form, created=created, request=request)
    messages.success(request, f"Check {check.name} {'created' if created else 'saved'}.")
    return redirect("dashboard:check", check.pk)


@require_POST
@role_required(Role.OPERATOR)
def check_paused(request, pk):
    """Pause (``paused=true``) or resume (``paused=false``) a check; answers the fragments of
    the page it was asked from (``page=list`` or the check's own)."""
    wanted = request.POST.get("paused")
    if wanted not in ("true", "false"):
        return HttpResponseBadRequest("paused must be true or false")
    with transaction.atomic():
        check = get_object_or_404(Check.objects.select_for_update(), pk=pk)
        check.paused = wanted == "true"
        check.save()
        AuditEvent.record(
            request.user, "check.pause" if check.paused else "check.resume", check, request=request
        )
    if not request.htmx:
        return redirect("dashboard:check", check.pk)
    if request.POST.get("page") == "list":
        return render(
            request, "dashboard/partials/checks_live.html", checks_page.list_context(True)
        )
    context = checks_page.status_context(check, True)
    return render(request, "dashboard/partials/check_live.html", context)


@role_required(Role.OPERATOR)
def check_delete(request, pk):
    """Confirm, then delete the check as the API does: its instance, samples, alerts and pings
    go with it. Asked from the list (``from=list``), keeping it goes back there."""
    check = get_object_or_404(Check, pk=pk)
    if request.method != "POST":
        from_list = request.GET.get("from") == "list"
        context = {"check": check, "pings": check.pings.count(), "from_list": from_list}
        return render(request, "dashboard/check_delete.html", context)
    check.delete_recorded(request.user, request=request)
    messages.success(request, f"Check {check.name} deleted.")
    return redirect("dashboard:checks")


@role_required(Role.VIEWER)
def check_groups(request):
    """Every group with its status page, ping key and how many checks it holds."""
    groups = CheckGroup.objects.annotate(checks_count=Count("checks")).order_by("name")
    context = {"groups": groups, "can_operate": has_role(request.user, Role.OPERATOR)}
    return render(request, "dashboard/check_groups.html", context)


@role_required(Role.OPERATOR)
def check_group_create(request):
    return _check_group_form(request, CheckGroup())


@role_required(Role.OPERATOR)
def check_group_edit(request, pk):
    return _check_group_form(request, get_object_or_404(CheckGroup, pk=pk))


def _check_group_form(request, group: CheckGroup):
    """The group form: saved and audited, then back to the groups; shown again with its
    errors (400) when refused."""
    created, saved_name = group._state.adding, group.name
    context = {"created": created, "name": saved_name}
    if request.method != "POST":
        form = CheckGroupForm(instance=group)
        return render(request, "dashboard/check_group_form.html", {**context, "form": form})
    form = CheckGroupForm(request.POST, instance=group)
    if not form.is_valid():
        return render(
            request, "dashboard/check_group_form.html", {**context, "form": form}, status=400
        )
    with transaction.atomic():
        group = form.save()
        record_saved(request.user, group, form, created=created, request=request)
    messages.success(request, f"Group {group.name} {'created' if created else 'saved'}.")
    return redirect("dashboard:check_groups")


@role_required(Role.OPERATOR)
def check_group_delete(request, pk):
    """Confirm, then delete the group: its checks stay, without a group or slug (their pings by
    slug and its status page stop)."""
    group = get_object_or_404(CheckGroup.objects.annotate(checks_count=Count("checks")), pk=pk)
    if request.method != "POST":
        return render(request, "dashboard/check_group_delete.html", {"group": group})
    with transaction.atomic():
        record_deleted(request.user, group, request=request)
        group.delete()
    messages.success(request, f"Group {group.name} deleted.")
    return redirect("dashboard:check_groups")
