"""The checks pages: the list, one check's page, the form that makes or edits one, and pause
or resume. Viewers read; Operators and Admins change (the controls are not shown to Viewers,
and their endpoints answer them 403)."""

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.auditing import record_saved
from accounts.models import AuditEvent
from accounts.permissions import Role, has_role, role_required
from checks.forms import check_form
from checks.models import Check
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
