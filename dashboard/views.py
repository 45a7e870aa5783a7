"""The dashboard's pages and their HTMX partials.

A page renders its full template; an HTMX request to the same URL renders the fragment the page
includes, picked by the element that asked (``HX-Target``): one template, two entry points.
Login is required everywhere by middleware; reading needs the Viewer role, acting on alerts the
Operator role, editing alert rules the Admin role.
"""

import csv
import re
import uuid
from urllib.parse import parse_qsl, urlencode

import orjson
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_htmx.http import push_url

from accounts.auditing import record_deleted, record_saved
from accounts.models import AuditEvent
from accounts.permissions import Role, role_required
from alerts import lifecycle, links, message_templates, notifications
from alerts.forms import CHANNEL_FORMS, AlertRuleForm
from alerts.grouping import grouping_route_ids
from alerts.models import (
    Alert,
    AlertGroupMember,
    AlertRule,
    Notification,
    NotificationChannel,
    prefetch_muting,
)
from dashboard import (
    alert_page,
    annotations,
    explore,
    instance_page,
    overview,
    panels,
    promql_completion,
    variables,
)
from dashboard.forms import AnnotationForm, DashboardForm, ImportForm, PanelForm
from dashboard.models import (
    WIDTH_PRESETS,
    Annotation,
    Dashboard,
    DashboardStar,
    DashboardVersion,
    Panel,
)
from dashboard.timerange import (
    CUSTOM,
    INPUT_FORMAT,
    RANGES,
    REFRESH_CHOICES,
    TimeRange,
    refresh_choice,
)
from instances.models import Instance
from query import shared_reads
from query.values import QueryError

# The newest delivery attempts shown on a channel's page.
CHANNEL_DELIVERIES_SHOWN = 20
# A dashboard page's load id, as its panels' requests carry it.
LOAD_ID = re.compile(r"[0-9a-f]{32}")


@role_required(Role.VIEWER)
def overview_page(request):
    """Summary cards, the instance grid with its filters, recent alerts and events."""
    filters = overview.OverviewFilters.from_query(request.GET)
    if request.htmx and request.htmx.target == "instance-grid":
        return render(
            request, "dashboard/partials/instance_grid.html", overview.grid_context(filters)
        )
    context = overview.overview_context(filters)
    if request.htmx:
        # The polling fallback: the same out-of-band fragments the socket pushes.
        return render(request, "dashboard/partials/overview_live.html", context)
    return render(request, "dashboard/overview.html", context)


@role_required(Role.VIEWER)
def instance_detail(request, pk):
    """An instance's charts over a time range, its metadata and its alerts."""
    instance = get_object_or_404(Instance, pk=pk)
    time_range = TimeRange.from_query(request.GET)
    if "chart" in request.GET:
        # One chart of the page, fetched as it scrolls into view.
        chart = instance_page.chart_named(instance, request.GET["chart"], time_range)
        if chart is None:
            raise Http404("No such chart")
        return render(request, "dashboard/partials/instance_chart_body.html", {"chart": chart})
    context = {
        **instance_page.side_context(instance),
        "charts": instance_page.charts(instance, time_range),
        "time_range": time_range,
        "range_keys": [*RANGES, CUSTOM],
        "refresh": refresh_choice(request.GET),
        "refresh_choices": REFRESH_CHOICES,
        "refresh_seconds": REFRESH_CHOICES[refresh_choice(request.GET)],
        "rendered_at": timezone.now(),
    }
    if request.htmx and request.htmx.target == "instance-charts":
        return render(request, "dashboard/partials/instance_charts.html", context)
    if request.htmx:
        return render(request, "dashboard/partials/instance_live.html", context)
    return render(request, "dashboard/instance.html", context)


# Rows per alerts page: rendering a row (its times, its actions) is most of the page's time.
ALERTS_PAGE_SIZE = 50
# The alerts page's "Muted" filter: open alerts that notify nobody, and why.
MUTED_FILTERS = {
    "muted": Q(silenced=True) | Q(inhibited=True),
    "silenced": Q(silenced=True),
    "inhibited": Q(inhibited=True),
}


@role_required(Role.VIEWER)
def alerts_page(request):
    """Alerts newest first, filtered by status, severity, instance, rule, what mutes them and
    notification group."""
    filters = {
        key: request.GET.get(key, "").strip()
        for key in ("status", "severity", "instance", "rule", "muted", "group")
    }
    alerts = Alert.objects.select_related("instance", "acknowledged_by").order_by("-created_at")
    if filters["status"] in Alert.Status.values:
        alerts = alerts.filter(status=filters["status"])
    if filters["severity"] in Alert.Severity.values:
        alerts = alerts.filter(severity=filters["severity"])
    # The instance filter is a name to search for, or an instance's id (links from its page);
    # a list of every instance to pick from grew to most of the page on a large fleet.
    instance_text = filters["instance"]
    if filters["instance"]:
        try:
            chosen = uuid.UUID(filters["instance"])
        except ValueError:
            alerts = alerts.filter(instance__name__icontains=filters["instance"])
        else:
            alerts = alerts.filter(instance_id=chosen)
            instance_text = (
                Instance.objects.filter(pk=chosen).values_list("name", flat=True).first()
                or instance_text
            )
    if filters["rule"]:
        alerts = (
            alerts.filter(rule_id=filters["rule"]) if filters["rule"].isdigit() else alerts.none()
        )
    if filters["group"]:
        # A notification group's alerts (the overview links each open group here).
        alerts = (
            alerts.filter(group_memberships__group_id=filters["group"])
            if filters["group"].isdigit()
            else alerts.none()
        )
    if filters["muted"] in MUTED_FILTERS:
        alerts = alerts.filter(MUTED_FILTERS[filters["muted"]], resolved_at__isnull=True)
    total = alerts.count()
    pages = max(1, -(-total // ALERTS_PAGE_SIZE))
    page_asked = request.GET.get("page", "")
    number = min(int(page_asked), pages) if page_asked.isdigit() and int(page_asked) > 0 else 1
    start = (number - 1) * ALERTS_PAGE_SIZE
    shown = list(alerts[start : start + ALERTS_PAGE_SIZE])
    prefetch_muting(shown)
    context = {
        "alerts": shown,
        "total": total,
        "page": {"number": number, "pages": pages, "first": start + 1, "last": start + len(shown)},
        "filters": filters,
        "statuses": Alert.Status.values,
        "severities": Alert.Severity.values,
        "muted_choices": list(MUTED_FILTERS),
        "instance_text": instance_text,
        "rules": AlertRule.objects.only("pk", "name"),
        "silence_durations": alert_page.SILENCE_DURATIONS,
        "default_silence": alert_page.DEFAULT_SILENCE,
    }
    if request.htmx:
        return render(request, "dashboard/partials/alerts_table.html", context)
    return render(request, "dashboard/alerts.html", context)


@role_required(Role.VIEWER)
def alert_detail(request, pk):
    """Why an alert is firing: the rule's metric against its thresholds, the episode's moments,
    its silences, earlier episodes and the notification log."""
    alert = get_object_or_404(Alert.objects.select_related("instance", "rule"), pk=pk)
    context = {**alert_page.page_context(alert), "link_warning": links.base_url_mismatch(request)}
    return render(request, "dashboard/alert.html", context)


ALERT_FRAGMENTS = {
    "item": "dashboard/partials/alert_item.html",
    "row": "dashboard/partials/alert_row.html",
    "detail": "dashboard/partials/alert_summary.html",
}


def _alert_changed(request, alert):
    """Answer an alert action: the alert's fragment for HTMX, else back where the user was.

    Open dashboards hear of the change from the alert itself (alerts/events.py).
    """
    if request.htmx:
        layout = request.POST.get("layout")
        template = ALERT_FRAGMENTS.get(layout, ALERT_FRAGMENTS["item"])
        return render(request, template, alert_page.summary_context(alert))
    back = request.headers.get("Referer", "")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}):
        back = reverse("dashboard:alerts")
    return redirect(back)


def _alert_conflict(request, pk):
    """Answer an action the alert's state forbids now (it resolved since the page was shown):
    409, with the alert as it stands, the reason and, when the problem is back, a link to its
    open episode."""
    alert = get_object_or_404(Alert.objects.select_related("instance", "rule"), pk=pk)
    newer = (
        Alert.objects.filter(fingerprint=alert.fingerprint, resolved_at__isnull=True)
        .exclude(pk=alert.pk)
        .first()
    )
    context = {
        "problem": "A newer episode of this alert is open: act on that one."
        if newer is not None
        else "This alert has resolved since the page was shown.",
        "newer": newer,
    }
    if request.htmx:
        layout = request.POST.get("layout")
        template = ALERT_FRAGMENTS.get(layout, ALERT_FRAGMENTS["item"])
        context.update(alert_page.summary_context(alert))
        return render(request, template, context, status=409)
    context.update(alert_page.page_context(alert))
    return render(request, "dashboard/alert.html", context, status=409)


@require_POST
@role_required(Role.OPERATOR)
def alert_acknowledge(request, pk):
    alert = get_object_or_404(Alert.objects.select_related("instance"), pk=pk)
    try:
        lifecycle.acknowledge(alert, request.user, note=request.POST.get("note", "").strip())
    except lifecycle.Refused:
        return _alert_conflict(request, pk)
    return _alert_changed(request, alert)


@require_POST
@role_required(Role.OPERATOR)
def alert_resolve(request, pk):
    alert = get_object_or_404(Alert.objects.select_related("instance"), pk=pk)
    lifecycle.resolve(alert, request.user, note=request.POST.get("note", "").strip())
    return _alert_changed(request, alert)


@require_POST
@role_required(Role.OPERATOR)
def alert_silence(request, pk):
    """Silence the alert's problem for a while, with a comment; the alert stays listed, marked."""
    alert = get_object_or_404(Alert.objects.select_related("instance", "rule"), pk=pk)
    duration = alert_page.SILENCE_DURATIONS.get(
        request.POST.get("duration"), alert_page.SILENCE_DURATIONS[alert_page.DEFAULT_SILENCE]
    )
    lifecycle.silence(alert, request.user, duration, request.POST.get("comment", "").strip())
    return _alert_changed(request, alert)


@require_POST
@role_required(Role.OPERATOR)
def alert_unsilence(request, pk):
    """End the silences covering the alert now."""
    alert = get_object_or_404(Alert.objects.select_related("instance", "rule"), pk=pk)
    lifecycle.unsilence(alert, request.user)
    return _alert_changed(request, alert)


@role_required(Role.VIEWER)
def rules_page(request):
    """Every alert rule: what it watches, its thresholds, whether it is on, what it has firing."""
    rules = rules_with_groups(AlertRule.objects.with_firing().order_by("name"))
    return render(request, "dashboard/rules.html", {"rules": rules})


def rules_with_groups(rules) -> list[AlertRule]:
    """``rules``, each with ``open_groups``: how many notification groups (of routes that group)
    hold its open alerts; one query."""
    rules = list(rules)
    counts = dict(
        AlertGroupMember.objects.filter(
            alert__rule__in=rules,
            alert__resolved_at__isnull=True,
            group__route_id__in=grouping_route_ids(),
        )
        .order_by()
        .values("alert__rule_id")
        .annotate(groups=Count("group", distinct=True))
        .values_list("alert__rule_id", "groups")
    )
    for rule in rules:
        rule.open_groups = counts.get(rule.pk, 0)
    return rules


@role_required(Role.ADMIN)
def rule_create(request):
    return _rule_form(request, AlertRule())


@role_required(Role.ADMIN)
def rule_edit(request, pk):
    return _rule_form(request, get_object_or_404(AlertRule, pk=pk))


def _rule_form(request, rule: AlertRule):
    """The rule form: saved and audited, then back to the list; shown again with its errors
    (400) when the model refuses it."""
    created, saved_name = rule.pk is None, rule.name
    if request.method != "POST":
        form = AlertRuleForm(instance=rule)
        return render(request, "dashboard/rule_form.html", {"form": form, "name": saved_name})
    form = AlertRuleForm(request.POST, instance=rule)
    if not form.is_valid():
        context = {"form": form, "name": saved_name}
        return render(request, "dashboard/rule_form.html", context, status=400)
    with transaction.atomic():
        rule = form.save()
        record_saved(request.user, rule, form, created=created, request=request)
    messages.success(request, f"Rule {rule.name} {'created' if created else 'saved'}.")
    return redirect("dashboard:rules")


@require_POST
@role_required(Role.ADMIN)
def rule_enabled(request, pk):
    """Turn a rule on (``enabled=true``) or off (``enabled=false``); answers its list row."""
    wanted = request.POST.get("enabled")
    if wanted not in ("true", "false"):
        return HttpResponseBadRequest("enabled must be true or false")
    rule = get_object_or_404(AlertRule, pk=pk)
    rule.set_enabled(wanted == "true", request.user, request=request)
    if request.htmx:
        (row_rule,) = rules_with_groups(AlertRule.objects.with_firing().filter(pk=pk))
        row = {"rule": row_rule}
        return render(request, "dashboard/partials/rule_row.html", row)
    return redirect("dashboard:rules")


@role_required(Role.ADMIN)
def rule_delete(request, pk):
    """Confirm, then delete: the rule's alerts stay as history, unlinked (open ones resolve at
    the next evaluation); its silences and pending breaches go with it."""
    rule = get_object_or_404(AlertRule.objects.with_firing(), pk=pk)
    if request.method != "POST":
        context = {"rule": rule, "silences": rule.silences.count(), "alerts": rule.alerts.count()}
        return render(request, "dashboard/rule_delete.html", context)
    with transaction.atomic():
        record_deleted(request.user, rule, request=request)
        rule.delete()
    messages.success(request, f"Rule {rule.name} deleted.")
    return redirect("dashboard:rules")


@role_required(Role.VIEWER)
def explore_page(request):
    """A PromQL query over a time range: a chart of every returned series and a table of their
    latest values; what the engine refuses shows under the query box (its 4xx status)."""
    query = explore.ExploreQuery.from_query(request.GET)
    if request.htmx and request.htmx.target == "builder-metric":
        metrics = explore.metric_names(query.builder.instance)
        context = {"query": query, "metrics": metrics}
        return render(request, "dashboard/partials/explore_builder_metric.html", context)
    result = explore.run(query)
    context = {
        "query": query,
        "result": result,
        "instances": Instance.objects.order_by("name").only("agent_id", "name"),
        "metrics": explore.metric_names(query.builder.instance),
        "aggregations": explore.AGGREGATIONS,
        "range_keys": [*RANGES, CUSTOM],
        "time_range": query.time_range,
        "max_series": explore.MAX_SERIES,
    }
    if not request.htmx:
        return render(request, "dashboard/explore.html", context, status=result.status)
    response = render(
        request, "dashboard/partials/explore_panel.html", context, status=result.status
    )
    if result.error:
        # explore.js swaps this answer in although its status is an error's.
        response["Vigil-Query-Error"] = result.error.error_type
    return push_url(response, f"{reverse('dashboard:explore')}?{query.as_query()}")


@role_required(Role.VIEWER)
def explore_suggest(request):
    """The query box's suggestions at its cursor, for series seen in the chosen time range."""
    text = request.GET.get("promql", "")
    cursor = request.GET.get("cursor", "")
    found = promql_completion.suggestions(
        text,
        int(cursor) if cursor.isdigit() else len(text),
        since=TimeRange.from_query(request.GET).start,
    )
    return render(request, "dashboard/partials/explore_suggestions.html", {"suggestions": found})


class _Echo:
    """A file that hands back what is written, for csv.writer rows streamed one at a time."""

    def write(self, value: str) -> str:
        return value


@role_required(Role.VIEWER)
def explore_csv(request):
    """The Explore query's whole result (every series, every step) as CSV."""
    query = explore.ExploreQuery.from_query(request.GET)
    try:
        result = query.evaluate(limit=None)
    except QueryError as error:
        return HttpResponse(str(error), status=error.status, content_type="text/plain")
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in explore.csv_rows(result)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = content_disposition_header(
        True, f"vigil-explore-{query.time_range.key}.csv"
    )
    return response


@role_required(Role.ADMIN)
def channels_page(request):
    """Every notification channel, where it sends, which severities it takes and how its last
    delivery went; how routing works; buttons to add one of each kind."""
    channels = NotificationChannel.objects.annotate(
        rule_count=Count("rules", distinct=True)
    ).order_by("name")
    last = {
        note.channel_id: note
        for note in Notification.objects.filter(channel__in=channels)
        .order_by("channel_id", "-created_at")
        .distinct("channel_id")
    }
    context = {
        "rows": [(channel, last.get(channel.pk)) for channel in channels],
        "kinds": NotificationChannel.Kind.choices,
    }
    return render(request, "dashboard/channels.html", context)


@role_required(Role.ADMIN)
def channel_create(request, kind):
    if kind not in CHANNEL_FORMS:
        raise Http404("no such kind of channel")
    return _channel_form(request, NotificationChannel(kind=kind))


@role_required(Role.ADMIN)
def channel_edit(request, pk):
    return _channel_form(request, get_object_or_404(NotificationChannel, pk=pk))


def _channel_form(request, channel: NotificationChannel):
    """The form of the channel's kind: saved and audited, then back to the channel (to send a
    test); shown again with its errors (400) when refused."""
    created, form_class = channel.pk is None, CHANNEL_FORMS[channel.kind]
    form = form_class(request.POST or None, instance=channel)
    form.fields["message_template"].widget.attrs.update(
        {
            "hx-post": reverse("dashboard:channel_preview", args=[channel.kind]),
            "hx-trigger": "input changed delay:400ms",
            "hx-target": "#template-preview",
            "aria-controls": "template-preview",
        }
    )
    if request.method != "POST" or not form.is_valid():
        template = form["message_template"].value() or ""
        context = {
            "form": form,
            "channel": channel,
            **_preview_context(channel.kind, template),
            "deliveries": channel.notifications.select_related("alert").prefetch_related(
                "listed_alerts"
            )[:CHANNEL_DELIVERIES_SHOWN]
            if channel.pk
            else [],
        }
        status = 400 if request.method == "POST" else 200
        return render(request, "dashboard/channel_form.html", context, status=status)
    with transaction.atomic():
        channel = form.save()
        record_saved(request.user, channel, form, created=created, request=request)
    messages.success(request, f"Channel {channel.name} {'created' if created else 'saved'}.")
    return redirect("dashboard:channel_edit", channel.pk)


def _preview_context(kind: str, template: str) -> dict:
    """A firing and a resolved notice of a sample alert by ``template`` on a ``kind`` channel,
    and why the template gave way to the default if it did."""
    channel = NotificationChannel(kind=kind, name="preview", message_template=template)
    previews = message_templates.preview(channel)
    return {
        "previews": previews,
        "problem": next((notice.problem for notice in previews if notice.problem), ""),
        "markup": message_templates.markup_name(kind),
    }


@require_POST
@role_required(Role.ADMIN)
def channel_preview(request, kind):
    """The template preview of the channel form, for the template being typed."""
    if kind not in CHANNEL_FORMS:
        raise Http404("no such kind of channel")
    context = _preview_context(kind, request.POST.get("message_template", ""))
    return render(request, "dashboard/partials/channel_preview.html", context)


@require_POST
@role_required(Role.ADMIN)
def channel_test(request, pk):
    """Send a test notice now and answer what the receiver said."""
    channel = get_object_or_404(NotificationChannel, pk=pk)
    note, answer = notifications.send_test_now(channel)
    context = {"channel": channel, "note": note, "answer": answer}
    if request.htmx:
        return render(request, "dashboard/partials/channel_test_result.html", context)
    if note.status == Notification.Status.SENT:
        messages.success(request, f"Test delivered to {channel.name}.")
    else:
        messages.error(request, f"Test to {channel.name} failed: {note.error}")
    return redirect("dashboard:channel_edit", channel.pk)


@require_POST
@role_required(Role.ADMIN)
def channel_delete(request, pk):
    """Delete a channel with its delivery log; rules that named it keep their other channels."""
    channel = get_object_or_404(NotificationChannel, pk=pk)
    with transaction.atomic():
        record_deleted(request.user, channel, request=request)
        channel.delete()
    messages.success(request, f"Channel {channel.name} deleted.")
    if request.htmx:
        return HttpResponse(headers={"HX-Redirect": reverse("dashboard:channels")})
    return redirect("dashboard:channels")


@role_required(Role.VIEWER)
def dashboards_page(request):
    """Every dashboard, the user's starred ones first, then by folder; searchable by title,
    filtered by folder, by tag or to the starred ones."""
    search, tag = request.GET.get("q", "").strip(), request.GET.get("tag", "").strip()
    folder = request.GET.get("folder", "").strip()
    starred_only = request.GET.get("starred") == "1"
    mine = DashboardStar.objects.filter(user=request.user, dashboard=OuterRef("pk"))
    boards = Dashboard.objects.annotate(panel_count=Count("panels"), starred=Exists(mine))
    if search:
        boards = boards.filter(title__icontains=search)
    if tag:
        boards = boards.filter(tags__contains=[tag])
    if folder:
        boards = boards.filter(folder=folder)
    if starred_only:
        boards = boards.filter(starred=True)
    context = {
        "dashboards": boards.order_by("-starred", "folder", "title"),
        "search": search,
        "tag": tag,
        "folder": folder,
        "all_folders": Dashboard.objects.exclude(folder="")
        .order_by("folder")
        .values_list("folder", flat=True)
        .distinct(),
        "starred_only": starred_only,
        "all_tags": sorted(
            {name for tags in Dashboard.objects.values_list("tags", flat=True) for name in tags}
        ),
    }
    return render(request, "dashboard/dashboards.html", context)


@role_required(Role.VIEWER)
def dashboard_page(request, pk):
    """A dashboard's panels on its grid, each loading over HTMX; its variables and time range
    as a form whose choices go into the URL."""
    board = get_object_or_404(Dashboard, pk=pk)
    query = request.GET.copy()
    query.setdefault("range", board.time_range)
    time_range = TimeRange.from_query(query)
    chosen = variables.resolve(board.variables, query, time_range.start)
    selection = urlencode([*variables.url_query(chosen), *parse_qsl(time_range.as_query())])
    board.starred = DashboardStar.objects.filter(user=request.user, dashboard=board).exists()
    context = {
        "board": board,
        "panels": board.panels.all(),
        "variables": chosen,
        "selection": selection,
        "time_range": time_range,
        "range_keys": [*RANGES, CUSTOM],
        "width_presets": WIDTH_PRESETS,
        # The panels' requests of this page share their reads of samples (query.shared_reads).
        "load": uuid.uuid4().hex,
    }
    return render(request, "dashboard/dashboard.html", context)


@role_required(Role.VIEWER)
def dashboard_panel(request, pk, panel_pk):
    """One panel's content for the page's time range and variables; a query the engine refuses
    answers its status with the panel's own error (the Vigil-Query-Error header lets charts.js
    swap it in)."""
    panel = get_object_or_404(Panel.objects.select_related("dashboard"), pk=panel_pk, dashboard=pk)
    query = request.GET.copy()
    query.setdefault("range", panel.dashboard.time_range)
    time_range = TimeRange.from_query(query)
    load = query.get("load", "")
    with shared_reads.sharing(load if LOAD_ID.fullmatch(load) else None):
        return _panel_content(request, panel, time_range, query)


def _panel_content(request, panel: Panel, time_range: TimeRange, query: QueryDict):
    """A panel's content with the variable values ``query`` picks; a query the engine refuses
    answers its status, and the panel shows the error."""
    chosen = variables.resolve(panel.dashboard.variables, query, time_range.start)
    shown = panels.content(panel, time_range, chosen)
    response = render(
        request, "dashboard/partials/board_panel_body.html", {"shown": shown}, status=shown.status
    )
    if shown.error:
        response["Vigil-Query-Error"] = shown.error.error_type
    return response


@require_POST
@role_required(Role.VIEWER)
def dashboard_star(request, pk):
    """Star the dashboard for this user, or unstar it; answers the button (HTMX) or goes back
    to the dashboard."""
    board = get_object_or_404(Dashboard, pk=pk)
    board.starred = DashboardStar.toggle(request.user, board)
    if request.htmx:
        return render(request, "dashboard/partials/star_button.html", {"board": board})
    return redirect("dashboard:dashboard", pk=board.pk)


# The annotations page lists a week unless asked for another range, at most this many.
ANNOTATIONS_RANGE = "7d"
ANNOTATIONS_LISTED = 200


@role_required(Role.VIEWER)
def annotations_page(request, pk):
    """The annotations a dashboard's time charts mark (those with any of its annotation tags,
    all without), newest first; Operators and Admins add and delete them here."""
    board = get_object_or_404(Dashboard, pk=pk)
    now = timezone.localtime().strftime(INPUT_FORMAT)
    form = AnnotationForm(initial={"time": now, "tags": ", ".join(board.annotation_tags)})
    return _annotations_page(request, board, form)


def _annotations_page(request, board: Dashboard, form: AnnotationForm, status: int = 200):
    query = request.GET.copy()
    query.setdefault("range", ANNOTATIONS_RANGE)
    time_range = TimeRange.from_query(query)
    listed = annotations.tagged(time_range.start, time_range.end, board.annotation_tags)
    context = {
        "board": board,
        "annotations": listed.order_by("-time")[:ANNOTATIONS_LISTED],
        "form": form,
        "time_range": time_range,
        "range_keys": [*RANGES, CUSTOM],
    }
    return render(request, "dashboard/annotations.html", context, status=status)


@require_POST
@role_required(Role.OPERATOR)
def annotation_create(request, pk):
    """Add an annotation; the page is shown again with the form's problems (400)."""
    board = get_object_or_404(Dashboard, pk=pk)
    form = AnnotationForm(request.POST)
    if not form.is_valid():
        return _annotations_page(request, board, form, status=400)
    form.instance.posted_by = request.user.get_username()
    with transaction.atomic():
        annotation = form.save()
        record_saved(request.user, annotation, form, created=True, request=request)
    messages.success(request, f"Annotation {annotation.text[:50]!r} added.")
    return redirect("dashboard:annotations", pk=board.pk)


@require_POST
@role_required(Role.OPERATOR)
def annotation_delete(request, pk, annotation_pk):
    board = get_object_or_404(Dashboard, pk=pk)
    annotation = get_object_or_404(Annotation, pk=annotation_pk)
    with transaction.atomic():
        record_deleted(request.user, annotation, request=request)
        annotation.delete()
    messages.success(request, f"Annotation {annotation.text[:50]!r} deleted.")
    return redirect("dashboard:annotations", pk=board.pk)


@role_required(Role.OPERATOR)
def dashboard_create(request):
    return _dashboard_form(request, Dashboard(owner=request.user))


@role_required(Role.OPERATOR)
def dashboard_edit(request, pk):
    return _dashboard_form(request, _editable_dashboard(pk))


def _editable_dashboard(pk) -> Dashboard:
    """The dashboard to edit; a provisioned one is refused (403): its file is where it
    changes, and the next provisioning would undo an edit made here."""
    board = get_object_or_404(Dashboard, pk=pk)
    if board.is_read_only:
        raise PermissionDenied(f"{board.title} is provisioned from {board.provisioned_from}.")
    return board


def _dashboard_form(request, board: Dashboard):
    """Title, tags, time range, refresh and variables: saved as a new version, then back to the
    dashboard; shown again with its errors (400)."""
    created = board._state.adding
    form = DashboardForm(request.POST or None, instance=board)
    versions = [] if created else board.versions.all()
    context = {"form": form, "board": board, "versions": versions}
    if request.method != "POST":
        return render(request, "dashboard/dashboard_form.html", context)
    if not form.is_valid():
        return render(request, "dashboard/dashboard_form.html", context, status=400)
    if created:
        with transaction.atomic():
            board = form.save()
            record_saved(request.user, board, form, created=True, request=request)
    else:
        board.change(request.user, form.cleaned_data["note"], form.save)
    messages.success(request, f"Dashboard {board.title} {'created' if created else 'saved'}.")
    return redirect("dashboard:dashboard", pk=board.pk)


@require_POST
@role_required(Role.OPERATOR)
def dashboard_delete(request, pk):
    board = _editable_dashboard(pk)
    with transaction.atomic():
        record_deleted(request.user, board, request=request)
        board.delete()
    messages.success(request, f"Dashboard {board.title} deleted.")
    return redirect("dashboard:dashboards")


@require_POST
@role_required(Role.OPERATOR)
def dashboard_rollback(request, pk, version):
    """Make an earlier version current again; the current one becomes a version too."""
    board = _editable_dashboard(pk)
    kept = get_object_or_404(DashboardVersion, dashboard=board, version=version)
    board.roll_back_to(kept, request.user)
    messages.success(request, f"Dashboard {board.title} rolled back to version {version}.")
    return redirect("dashboard:dashboard", pk=board.pk)


@role_required(Role.OPERATOR)
def panel_create(request, pk):
    board = _editable_dashboard(pk)
    bottom = max((panel.y + panel.height for panel in board.panels.all()), default=0)
    return _panel_form(request, board, Panel(dashboard=board, y=bottom))


@role_required(Role.OPERATOR)
def panel_edit(request, pk, panel_pk):
    board = _editable_dashboard(pk)
    return _panel_form(request, board, get_object_or_404(Panel, pk=panel_pk, dashboard=board))


def _panel_form(request, board: Dashboard, panel: Panel):
    """A panel's type, title, queries and display: saved as a new version of its dashboard."""
    created = panel._state.adding
    form = PanelForm(request.POST or None, instance=panel)
    context = {"form": form, "board": board, "panel": panel, "created": created}
    if request.method != "POST":
        return render(request, "dashboard/panel_form.html", context)
    if not form.is_valid():
        return render(request, "dashboard/panel_form.html", context, status=400)
    title = form.cleaned_data["title"] or panel.get_type_display()
    note = form.cleaned_data["note"] or f"Panel {title} {'added' if created else 'edited'}"
    board.change(request.user, note, form.save)
    messages.success(request, f"Panel {title} {'added' if created else 'saved'}.")
    return redirect("dashboard:dashboard", pk=board.pk)


@require_POST
@role_required(Role.OPERATOR)
def panel_preview(request, pk):
    """The panel form's live preview: what the panel as filled in would show (nothing is
    saved), over the dashboard's default time range and variables."""
    board = _editable_dashboard(pk)
    form = PanelForm(request.POST, instance=Panel(dashboard=board))
    if not form.is_valid():
        return render(request, "dashboard/partials/panel_preview_invalid.html", {"form": form})
    time_range = TimeRange.from_query({"range": board.time_range})
    return _panel_content(request, form.save(commit=False), time_range, QueryDict())


@require_POST
@role_required(Role.OPERATOR)
def panel_delete(request, pk, panel_pk):
    board = _editable_dashboard(pk)
    panel = get_object_or_404(Panel, pk=panel_pk, dashboard=board)
    board.change(request.user, f"Panel {panel} removed", panel.delete)
    messages.success(request, f"Panel {panel} removed.")
    return redirect("dashboard:dashboard", pk=board.pk)


@require_POST
@role_required(Role.OPERATOR)
def panel_arrange(request, pk, panel_pk):
    """The panel menu's buttons, each a new version: ``op`` is ``move:-1`` or ``move:1``
    (earlier or later in the grid), ``duplicate``, or ``width:<a preset>``."""
    board = _editable_dashboard(pk)
    panel = get_object_or_404(
        Panel.objects.select_related("dashboard"), pk=panel_pk, dashboard=board
    )
    action, _, value = request.POST.get("op", "").partition(":")
    if action == "move" and value in ("-1", "1"):
        board.change(request.user, f"Panel {panel} moved", lambda: panel.move(int(value)))
    elif action == "duplicate":
        board.change(request.user, f"Panel {panel} duplicated", panel.duplicate)
    elif action == "width" and value.isdigit() and int(value) in WIDTH_PRESETS:
        panel.width = int(value)
        note = f"Panel {panel} {value} columns wide"
        board.change(request.user, note, lambda: panel.save(update_fields=["width"]))
    else:
        return HttpResponseBadRequest("op: move:-1, move:1, duplicate or width:<3|4|6|8|12>")
    return redirect("dashboard:dashboard", pk=board.pk)


@role_required(Role.VIEWER)
def dashboard_export(request, pk):
    """The dashboard's definition as JSON, for import here or elsewhere."""
    board = get_object_or_404(Dashboard, pk=pk)
    response = HttpResponse(
        orjson.dumps(board.to_dict(), option=orjson.OPT_INDENT_2), content_type="application/json"
    )
    response["Content-Disposition"] = content_disposition_header(
        True, f"{board.slug or 'dashboard'}.json"
    )
    return response


@role_required(Role.OPERATOR)
def dashboard_import(request):
    """A new dashboard from an exported definition or a Grafana dashboard's JSON; what of the
    latter could not be imported is listed."""
    form = ImportForm(request.POST or None)
    if request.method != "POST":
        return render(request, "dashboard/dashboard_import.html", {"form": form})
    if not form.is_valid():
        return render(request, "dashboard/dashboard_import.html", {"form": form}, status=400)
    board = Dashboard.create_from_dict(form.cleaned_data["definition"], request.user)
    AuditEvent.record(request.user, "dashboard.import", board, request=request)
    if form.left_out:
        # Said here, where the imported JSON still is, rather than in a message on the way.
        context = {"form": ImportForm(), "imported": board, "left_out": form.left_out}
        return render(request, "dashboard/dashboard_import.html", context, status=201)
    messages.success(request, f"Dashboard {board.title} imported.")
    return redirect("dashboard:dashboard", pk=board.pk)
