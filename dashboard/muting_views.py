"""The Silences and Inhibition pages: what mutes alerts now and which open alerts it mutes.

Everyone with a role reads both; Operators end silences (as they make them, from an alert);
Admins create, edit and delete inhibition rules. Each change is audited, and the alerts' muted
marks follow at once rather than at the next evaluation.
"""

from datetime import timedelta

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.auditing import record_deleted, record_saved
from accounts.permissions import Role, role_required
from alerts import lifecycle
from alerts.forms import InhibitRuleForm
from alerts.models import Alert, InhibitRule, Silence

# Ended silences stay listed this long, so a silence that just ran out can still be found.
ENDED_SILENCES_SHOWN = timedelta(hours=24)


@role_required(Role.VIEWER)
def silences_page(request):
    """The silences in force, those still to come and those ended in the last day, each with
    the open alerts it mutes."""
    now = timezone.now()
    silences = list(
        Silence.objects.filter(ends_at__gt=now - ENDED_SILENCES_SHOWN)
        .select_related("rule", "instance", "created_by")
        .order_by("-ends_at")
    )
    muted = list(
        Alert.objects.filter(resolved_at__isnull=True, silenced=True).select_related("instance")
    )
    rows = []
    for silence in silences:
        in_force = silence.starts_at <= now < silence.ends_at
        rows.append((silence, [alert for alert in muted if in_force and silence.covers(alert)]))
    return render(request, "dashboard/silences.html", {"rows": rows, "now": now})


@require_POST
@role_required(Role.OPERATOR)
def silence_expire(request, pk):
    """End a silence now; the alerts it muted notify again at their next repeat."""
    silence = get_object_or_404(Silence, pk=pk)
    lifecycle.expire(silence, request.user, request=request)
    messages.success(request, "Silence ended.")
    return redirect("dashboard:silences")


@role_required(Role.VIEWER)
def inhibitions_page(request):
    """Every inhibition rule with the open alerts it mutes now."""
    rules = list(InhibitRule.objects.all())
    targets = [
        (alert, alert.match_labels())
        for alert in Alert.objects.filter(resolved_at__isnull=True, inhibited=True)
        .select_related("instance")
        .order_by("-created_at")
    ]
    rows = []
    for rule in rules:
        muted = []
        if rule.enabled and targets:
            sources = [(source, source.match_labels()) for source in rule.source_candidates()]
            inhibitors = rule.inhibitors(targets, sources)
            muted = [alert for alert, _ in targets if alert.pk in inhibitors]
        rows.append((rule, muted))
    return render(request, "dashboard/inhibitions.html", {"rows": rows})


@role_required(Role.ADMIN)
def inhibition_create(request):
    return _inhibition_form(request, InhibitRule())


@role_required(Role.ADMIN)
def inhibition_edit(request, pk):
    return _inhibition_form(request, get_object_or_404(InhibitRule, pk=pk))


def _inhibition_form(request, rule: InhibitRule):
    """The inhibition rule form: saved, audited and applied to the open alerts, then back to
    the list; shown again with its errors (400) when refused."""
    created, saved_name = rule.pk is None, rule.name
    form = InhibitRuleForm(request.POST or None, instance=rule)
    if request.method != "POST" or not form.is_valid():
        status = 400 if request.method == "POST" else 200
        context = {"form": form, "name": saved_name}
        return render(request, "dashboard/inhibition_form.html", context, status=status)
    with transaction.atomic():
        rule = form.save()
        record_saved(request.user, rule, form, created=created, request=request)
        lifecycle.mark_inhibited()
    messages.success(request, f"Inhibition rule {rule.name} {'created' if created else 'saved'}.")
    return redirect("dashboard:inhibitions")


@require_POST
@role_required(Role.ADMIN)
def inhibition_delete(request, pk):
    """Delete an inhibition rule; the alerts it muted are muted no more (and notify at their
    next repeat)."""
    rule = get_object_or_404(InhibitRule, pk=pk)
    with transaction.atomic():
        record_deleted(request.user, rule, request=request)
        rule.delete()
        lifecycle.mark_inhibited()
    messages.success(request, f"Inhibition rule {rule.name} deleted.")
    if request.htmx:
        return HttpResponse(headers={"HX-Redirect": reverse("dashboard:inhibitions")})
    return redirect("dashboard:inhibitions")
