"""Who may open each page, HTMX partial, endpoint and websocket: anonymous, a user without a role,
Viewer, Operator and Admin, each with the exact status (or close code) they get."""

from datetime import timedelta

import orjson
import pytest
from asgiref.sync import async_to_sync
from django.urls import reverse
from django.utils import timezone

from accounts.permissions import Role
from alerts import grouping, links
from alerts.models import Alert, AlertRule, InhibitRule, Route, Silence
from backups import dumps
from checks.models import Check, CheckGroup
from dashboard.models import Annotation
from ingestion.models import IngestToken
from instances.models import Instance
from tests.test_dashboard_boards import board_with
from tests.test_dashboard_live import session_cookie_of, socket
from tests.test_dashboard_rules import NEW_RULE

ROLES = [None, "none", Role.VIEWER, Role.OPERATOR, Role.ADMIN]
HTMX = {"HX-Request": "true"}

LOGIN = 302  # sent to the login page
LOGIN_HTMX = 401  # told to load the login page whole (HX-Redirect)
ANYONE_BUT_ADMIN_REFUSED = {None: LOGIN, "none": 403, Role.VIEWER: 403, Role.OPERATOR: 403}
VIEWERS = {None: LOGIN, "none": 403, Role.VIEWER: 200, Role.OPERATOR: 200, Role.ADMIN: 200}
VIEWERS_HTMX = {**VIEWERS, None: LOGIN_HTMX}
# A form POST answers with a redirect back; an HTMX one with the alert's fragment.
OPERATORS = {None: LOGIN, "none": 403, Role.VIEWER: 403, Role.OPERATOR: 302, Role.ADMIN: 302}
OPERATORS_HTMX = {**OPERATORS, None: LOGIN_HTMX, Role.OPERATOR: 200, Role.ADMIN: 200}
DJANGO_ADMIN = {role: LOGIN for role in ROLES} | {Role.ADMIN: 200}
LOGGED_IN = {role: 200 for role in ROLES} | {None: LOGIN}
EVERYONE = {role: 200 for role in ROLES}
# A saved form goes back to its page (logged out: to the login page).
LOGGED_IN_POST = {role: 302 for role in ROLES} | {None: LOGIN}
# The API authenticates with bearer tokens only: a session is not enough.
NO_SESSION_API = {role: 401 for role in ROLES}


@pytest.fixture(autouse=True)
def backup_dir(settings, tmp_path):
    """Back up now and the download run real backups: into the test's own directory."""
    settings.BACKUP_DIR = tmp_path / "backups"


def alert_on(instance, alert_type) -> Alert:
    return Alert.objects.create(instance=instance, alert_type=alert_type, severity="critical")


def rule_named(name) -> AlertRule:
    return AlertRule.objects.create(name=name, metric="cpu_usage", warning_threshold=80)


OPERATORS_PAGE = {**OPERATORS, Role.OPERATOR: 200, Role.ADMIN: 200}
OPERATORS_PREVIEW = {**OPERATORS_PAGE, None: LOGIN_HTMX}
# A form POST that Viewers may make answers with a redirect back.
VIEWERS_POST = {**VIEWERS, Role.VIEWER: 302, Role.OPERATOR: 302, Role.ADMIN: 302}


def checks_endpoints(heartbeat: Check) -> list:
    """Checks and their groups: Viewers read them, Operators and Admins make, edit, pause,
    resume and delete them; a group's status page is public."""
    paused = {
        layout: Check.objects.create(name=f"Paused {layout}", kind="heartbeat")
        for layout in ("form", "htmx")
    }
    deleted, deleted_from_list = (
        Check.objects.create(name=name, kind="heartbeat") for name in ("Deleted", "From list")
    )
    group = CheckGroup.objects.create(name="Public", slug="public", status_page=True)
    deleted_group = CheckGroup.objects.create(name="Old", slug="old")
    group_form = {"name": "Ops", "slug": "ops", "status_page": "on"}
    heartbeat_form = {
        "name": "Job",
        "period_seconds": 3600,
        "grace_seconds": 60,
        "time_zone": "UTC",
    }
    return [
        ("get", "/checks/", {}, {}, VIEWERS),
        ("get", "/checks/", {}, HTMX, VIEWERS_HTMX),
        ("get", f"/checks/{heartbeat.pk}/", {}, {}, VIEWERS),
        ("get", "/checks/new/heartbeat/", {}, {}, OPERATORS_PAGE),
        ("post", "/checks/new/heartbeat/", heartbeat_form, {}, OPERATORS),
        ("get", f"/checks/{heartbeat.pk}/edit/", {}, {}, OPERATORS_PAGE),
        ("post", f"/checks/{heartbeat.pk}/edit/", heartbeat_form, {}, OPERATORS),
        ("post", f"/checks/{paused['form'].pk}/paused", {"paused": "true"}, {}, OPERATORS),
        ("post", f"/checks/{paused['htmx'].pk}/paused", {"paused": "true"}, HTMX, OPERATORS_HTMX),
        ("get", f"/checks/{deleted.pk}/delete/", {}, {}, OPERATORS_PAGE),
        ("post", f"/checks/{deleted.pk}/delete/", {}, {}, OPERATORS),
        ("get", f"/checks/{deleted_from_list.pk}/delete/", {"from": "list"}, {}, OPERATORS_PAGE),
        ("post", f"/checks/{deleted_from_list.pk}/delete/?from=list", {}, {}, OPERATORS),
        ("get", "/checks/groups/", {}, {}, VIEWERS),
        ("get", "/checks/groups/new/", {}, {}, OPERATORS_PAGE),
        ("post", "/checks/groups/new/", group_form, {}, OPERATORS),
        ("get", f"/checks/groups/{group.pk}/edit/", {}, {}, OPERATORS_PAGE),
        (
            "post",
            f"/checks/groups/{group.pk}/edit/",
            {**group_form, "slug": "public"},
            {},
            OPERATORS,
        ),
        ("get", f"/checks/groups/{deleted_group.pk}/delete/", {}, {}, OPERATORS_PAGE),
        ("post", f"/checks/groups/{deleted_group.pk}/delete/", {}, {}, OPERATORS),
        ("get", f"/status/{group.slug}/", {}, {}, EVERYONE),
    ]


def dashboard_endpoints() -> list:
    """Dashboards: Viewers read them, Operators and Admins edit them. Each edit has a dashboard
    (and panel) of its own."""
    text = {"type": "text", "title": "Notes", "text": "hello"}

    def board():
        made = board_with(text)
        return made, made.panels.get()

    shown, shown_panel = board()
    edited, edited_panel = board()
    rolled_back, _ = board()
    rolled_back.replace_with({"title": "Renamed"}, user=None)
    deleted, _ = board()
    with_deleted_panel, deleted_panel = board()
    settings = {"title": "Edited", "time_range": "1h", "refresh": "off", "variables": "[]"}
    panel = {"type": "text", "width": 6, "height": 4, "text": "hi"}
    annotation = {"time": "2026-01-01T10:00", "text": "deploy"}
    deleted_annotation = Annotation.objects.create(time=timezone.now(), text="deleted")
    exported = orjson.dumps(shown.to_dict()).decode()
    at = "/dashboards/{}/".format
    return [
        ("get", "/dashboards/", {}, {}, VIEWERS),
        ("get", at(shown.pk), {}, {}, VIEWERS),
        ("get", f"{at(shown.pk)}panels/{shown_panel.pk}/", {}, HTMX, VIEWERS_HTMX),
        ("get", f"{at(shown.pk)}export.json", {}, {}, VIEWERS),
        # Starring is each user's own: Viewers may (a second star unstars).
        ("post", f"{at(shown.pk)}star", {}, {}, VIEWERS_POST),
        ("get", f"{at(shown.pk)}annotations/", {}, {}, VIEWERS),
        ("post", f"{at(shown.pk)}annotations/new", annotation, {}, OPERATORS),
        (
            "post",
            f"{at(shown.pk)}annotations/{deleted_annotation.pk}/delete",
            {},
            {},
            OPERATORS,
        ),
        ("get", "/dashboards/new/", {}, {}, OPERATORS_PAGE),
        ("post", "/dashboards/new/", settings, {}, OPERATORS),
        ("get", "/dashboards/import/", {}, {}, OPERATORS_PAGE),
        ("post", "/dashboards/import/", {"definition": exported}, {}, OPERATORS),
        ("get", f"{at(edited.pk)}edit/", {}, {}, OPERATORS_PAGE),
        ("post", f"{at(edited.pk)}edit/", settings, {}, OPERATORS),
        ("post", f"{at(deleted.pk)}delete", {}, {}, OPERATORS),
        ("post", f"{at(rolled_back.pk)}versions/1/rollback", {}, {}, OPERATORS),
        ("get", f"{at(edited.pk)}panels/new/", {}, {}, OPERATORS_PAGE),
        ("post", f"{at(edited.pk)}panels/preview", panel, HTMX, OPERATORS_PREVIEW),
        ("post", f"{at(edited.pk)}panels/new/", panel, {}, OPERATORS),
        ("get", f"{at(edited.pk)}panels/{edited_panel.pk}/edit/", {}, {}, OPERATORS_PAGE),
        ("post", f"{at(edited.pk)}panels/{edited_panel.pk}/edit/", panel, {}, OPERATORS),
        (
            "post",
            f"{at(edited.pk)}panels/{edited_panel.pk}/arrange",
            {"op": "duplicate"},
            {},
            OPERATORS,
        ),
        (
            "post",
            f"{at(with_deleted_panel.pk)}panels/{deleted_panel.pk}/delete",
            {},
            {},
            OPERATORS,
        ),
        ("get", reverse("admin:dashboard_dashboard_changelist"), {}, {}, DJANGO_ADMIN),
        ("get", reverse("admin:dashboard_dashboard_change", args=[shown.pk]), {}, {}, DJANGO_ADMIN),
    ]


def endpoints(target_user, token):
    """(method, url, data, headers, expected status by role) for every route Vigil serves.

    Each state-changing endpoint gets its own alert, so the order they are called in does not
    matter.
    """
    instance = Instance.objects.create(agent_id="web-1", name="Web One")
    alert = alert_on(instance, "Shown")
    acted = {
        action: {layout: alert_on(instance, f"{action}-{layout}") for layout in ("form", "htmx")}
        for action in ("acknowledge", "resolve", "silence", "unsilence")
    }
    linked = alert_on(instance, "Linked")
    annotation = Annotation.objects.create(time=timezone.now(), text="deploy")
    backup = dumps.run_backup()
    heartbeat = Check.objects.create(name="Nightly", kind=Check.Kind.HEARTBEAT)
    pages = [
        ("get", "/", {}, {}, VIEWERS),
        ("get", "/", {}, {**HTMX, "HX-Target": "instance-grid"}, VIEWERS_HTMX),
        ("get", "/", {}, {**HTMX, "HX-Target": "overview-poll"}, VIEWERS_HTMX),
        ("get", f"/instances/{instance.pk}/", {}, {}, VIEWERS),
        (
            "get",
            f"/instances/{instance.pk}/",
            {"range": "6h"},
            {**HTMX, "HX-Target": "instance-charts"},
            VIEWERS_HTMX,
        ),  # noqa: E501
        (
            "get",
            f"/instances/{instance.pk}/",
            {},
            {**HTMX, "HX-Target": "instance-poll"},
            VIEWERS_HTMX,
        ),  # noqa: E501
        ("get", "/alerts/", {}, {}, VIEWERS),
        ("get", "/alerts/", {"status": "active"}, HTMX, VIEWERS_HTMX),
        ("get", f"/alerts/{alert.pk}/", {}, {}, VIEWERS),
        ("get", "/explore/", {}, {}, VIEWERS),
        ("get", "/explore/", {"metric": "cpu_usage"}, HTMX, VIEWERS_HTMX),
        ("get", "/explore/data.csv", {"metric": "cpu_usage"}, {}, VIEWERS),
        ("get", "/explore/suggest", {"promql": "cpu"}, HTMX, VIEWERS_HTMX),
        *dashboard_endpoints(),
        *checks_endpoints(heartbeat),
    ]
    actions = []
    for action, alerts in acted.items():
        data = {"note": "x"} if action in ("acknowledge", "resolve") else {"duration": "1h"}
        url = f"/alerts/{{}}/{action}"
        actions += [
            ("post", url.format(alerts["form"].pk), data, {"Referer": "/alerts/"}, OPERATORS),
            (
                "post",
                url.format(alerts["htmx"].pk),
                {**data, "layout": "row"},
                HTMX,
                OPERATORS_HTMX,
            ),  # noqa: E501
        ]
    ack_link = reverse("alerts:acknowledge_link", args=[links.sign(linked)])
    # Following the link shows a confirmation page; only its POST acknowledges.
    actions.append(("get", ack_link, {}, {}, {**OPERATORS, Role.OPERATOR: 200, Role.ADMIN: 200}))
    actions.append(("post", ack_link, {}, {}, OPERATORS))
    rule = rule_named("Shown rule")
    switched = {layout: rule_named(f"Switched {layout}") for layout in ("form", "htmx")}
    deleted = rule_named("Deleted rule")
    admins = {**ANYONE_BUT_ADMIN_REFUSED, Role.ADMIN: 200}
    admins_post = {**ANYONE_BUT_ADMIN_REFUSED, Role.ADMIN: 302}
    rules = [
        ("get", "/rules/", {}, {}, VIEWERS),
        ("get", "/rules/new/", {}, {}, admins),
        ("post", "/rules/new/", NEW_RULE, {}, admins_post),
        ("get", f"/rules/{rule.pk}/edit/", {}, {}, admins),
        ("post", f"/rules/{rule.pk}/edit/", {**NEW_RULE, "name": "Edited"}, {}, admins_post),
        ("post", f"/rules/{switched['form'].pk}/enabled", {"enabled": "false"}, {}, admins_post),
        (
            "post",
            f"/rules/{switched['htmx'].pk}/enabled",
            {"enabled": "false"},
            HTMX,
            {**admins, None: LOGIN_HTMX},
        ),
        ("get", f"/rules/{deleted.pk}/delete/", {}, {}, admins),
        ("post", f"/rules/{deleted.pk}/delete/", {}, {}, admins_post),
    ]
    inhibition = InhibitRule.objects.create(name="Shown inhibition")
    removed = InhibitRule.objects.create(name="Deleted inhibition")
    inhibition_form = {
        "name": "Inhibition",
        "source_matchers": '[{"label": "alertname", "op": "=", "value": "instance_down"}]',
    }
    silences = [
        Silence.objects.create(ends_at=timezone.now() + timedelta(hours=1)) for _ in range(2)
    ]
    muting = [
        ("get", "/silences/", {}, {}, VIEWERS),
        ("post", f"/silences/{silences[0].pk}/expire", {}, {}, OPERATORS),
        ("get", "/inhibitions/", {}, {}, VIEWERS),
        ("get", "/inhibitions/new/", {}, {}, admins),
        ("post", "/inhibitions/new/", inhibition_form, {}, admins_post),
        ("get", f"/inhibitions/{inhibition.pk}/edit/", {}, {}, admins),
        (
            "post",
            f"/inhibitions/{inhibition.pk}/edit/",
            {**inhibition_form, "name": "Edited inhibition"},
            {},
            admins_post,
        ),
        ("post", f"/inhibitions/{removed.pk}/delete", {}, {}, admins_post),
    ]
    root = grouping.root_route()
    route = Route.objects.create(name="Shown route", parent=root)
    removed_route = Route.objects.create(name="Deleted route", parent=root)
    route_form = {"name": "Route", "parent": root.pk, "position": 1, "matchers": "[]"}
    routing = [
        ("get", "/routes/", {}, {}, VIEWERS),
        ("get", "/routes/new/", {}, {}, admins),
        ("post", "/routes/new/", route_form, {}, admins_post),
        ("get", f"/routes/{route.pk}/", {}, {}, admins),
        ("post", f"/routes/{route.pk}/", {**route_form, "name": "Edited route"}, {}, admins_post),
        ("post", f"/routes/{removed_route.pk}/delete", {}, {}, admins_post),
    ]
    accounts = [
        ("get", reverse("accounts:users"), {}, {}, {**ANYONE_BUT_ADMIN_REFUSED, Role.ADMIN: 200}),
        (
            "post",
            reverse("accounts:user_role", args=[target_user.pk]),
            {"role": "viewer"},
            {},
            {**ANYONE_BUT_ADMIN_REFUSED, Role.ADMIN: 302},
        ),
        ("get", reverse("accounts:audit"), {}, {}, {**ANYONE_BUT_ADMIN_REFUSED, Role.ADMIN: 200}),
        ("get", reverse("ingestion:tokens"), {}, {}, {**ANYONE_BUT_ADMIN_REFUSED, Role.ADMIN: 200}),
        (
            "post",
            reverse("ingestion:tokens"),
            {"name": "x", "scopes": ["read"]},
            {},
            {**ANYONE_BUT_ADMIN_REFUSED, Role.ADMIN: 201},
        ),
        (
            "post",
            reverse("ingestion:token_revoke", args=[token.pk]),
            {},
            {},
            {**ANYONE_BUT_ADMIN_REFUSED, Role.ADMIN: 302},
        ),
        ("get", "/backups/", {}, {}, {**ANYONE_BUT_ADMIN_REFUSED, Role.ADMIN: 200}),
        (
            "get",
            "/backups/",
            {},
            {**HTMX, "HX-Target": "backups-poll"},
            {**ANYONE_BUT_ADMIN_REFUSED, None: LOGIN_HTMX, Role.ADMIN: 200},
        ),
        ("post", "/backups/back-up-now", {}, {}, {**ANYONE_BUT_ADMIN_REFUSED, Role.ADMIN: 302}),
        (
            "post",
            "/backups/back-up-now",
            {},
            HTMX,
            {**ANYONE_BUT_ADMIN_REFUSED, None: LOGIN_HTMX, Role.ADMIN: 200},
        ),
        (
            "get",
            f"/backups/{backup.pk}/download",
            {},
            {},
            {**ANYONE_BUT_ADMIN_REFUSED, Role.ADMIN: 200},
        ),
        # Anyone may log in; a logged-in user is sent on to the dashboard.
        ("get", reverse("account_login"), {}, {}, {role: 302 for role in ROLES} | {None: 200}),
        # Their own account's pages need a login, not a role.
        ("get", reverse("account_email"), {}, {}, LOGGED_IN),
        ("get", reverse("account_change_password"), {}, {}, LOGGED_IN),
        ("get", reverse("mfa_index"), {}, {}, LOGGED_IN),
        ("get", reverse("socialaccount_connections"), {}, {}, LOGGED_IN),
        ("get", "/accounts/profile/", {}, {}, LOGGED_IN),
        ("post", "/accounts/profile/", {"time_zone": "Europe/Paris"}, {}, LOGGED_IN_POST),
        ("get", reverse("admin:index"), {}, {}, DJANGO_ADMIN),
        ("get", reverse("admin:ingestion_ingesttoken_changelist"), {}, {}, DJANGO_ADMIN),
        ("get", reverse("admin:accounts_auditevent_changelist"), {}, {}, DJANGO_ADMIN),
        ("get", reverse("admin:alerts_alert_changelist"), {}, {}, DJANGO_ADMIN),
        ("get", reverse("admin:alerts_alertrule_changelist"), {}, {}, DJANGO_ADMIN),
        ("get", reverse("admin:backups_backup_changelist"), {}, {}, DJANGO_ADMIN),
        ("get", reverse("admin:checks_check_changelist"), {}, {}, DJANGO_ADMIN),
        ("get", reverse("admin:checks_check_change", args=[heartbeat.pk]), {}, {}, DJANGO_ADMIN),
    ]
    api = [
        ("get", "/api/v1/instances", {}, {}, NO_SESSION_API),
        ("get", "/api/v1/alerts", {}, {}, NO_SESSION_API),
        ("get", "/api/v1/analytics/dashboard", {}, {}, NO_SESSION_API),
        ("put", f"/api/v1/alerts/{alert.pk}", {"status": "resolved"}, {}, NO_SESSION_API),
        ("post", "/api/v1/ingest", {"samples": []}, {}, NO_SESSION_API),
        ("get", "/api/v1/annotations", {}, {}, NO_SESSION_API),
        ("post", "/api/v1/annotations", {"text": "deploy"}, {}, NO_SESSION_API),
        ("delete", f"/api/v1/annotations/{annotation.pk}", {}, {}, NO_SESSION_API),
    ]
    # The Prometheus and Alertmanager APIs: a Viewer's session reads; changes need a token.
    session_reads = {None: 401, "none": 401, Role.VIEWER: 200, Role.OPERATOR: 200, Role.ADMIN: 200}
    token_writes = {None: 401, "none": 401, Role.VIEWER: 403, Role.OPERATOR: 403, Role.ADMIN: 403}
    query_apis = [
        ("get", "/prometheus/api/v1/query", {"query": "vector(1)"}, {}, session_reads),
        ("get", "/prometheus/api/v1/labels", {}, {}, session_reads),
        ("get", "/alertmanager/api/v2/alerts", {}, {}, session_reads),
        ("get", "/alertmanager/api/v2/silences", {}, {}, session_reads),
        ("post", "/alertmanager/api/v2/silences", {"comment": "x"}, {}, token_writes),
        ("post", "/alertmanager/api/v2/alerts", {}, {}, token_writes),
    ]
    # For load balancers and Prometheus, and cron jobs' heartbeat pings: no login at all.
    public = [
        ("get", "/healthz", {}, {}, EVERYONE),
        ("get", "/metrics", {}, {}, EVERYONE),
        ("get", f"/ping/{heartbeat.pk}", {}, {}, EVERYONE),
        ("post", f"/ping/{heartbeat.pk}/start", {}, {}, EVERYONE),
        ("post", f"/ping/{heartbeat.pk}/fail", {}, {}, EVERYONE),
        ("get", f"/ping/{heartbeat.pk}/0", {}, {}, EVERYONE),
        ("get", f"/badge/{heartbeat.badge_key}.svg", {}, {}, EVERYONE),
        ("get", f"/badge/{heartbeat.badge_key}/uptime.svg", {}, {}, EVERYONE),
    ]
    return pages + actions + rules + muting + routing + accounts + api + query_apis + public


def call(client, method, url, data, headers):
    if url.startswith("/api/") and method != "get":
        return client.generic(
            method.upper(), url, orjson.dumps(data), "application/json", headers=headers
        )
    return getattr(client, method)(url, data, headers=headers)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_the_expected_status(client, user_with_role, role, confirm_password):
    target_user = user_with_role(Role.VIEWER, "target")
    token, _ = IngestToken.issue("agent")
    if role is not None:
        client.force_login(user_with_role(None if role == "none" else role, "me"))
        confirm_password(client)  # as tokens, roles and downloads ask; tested on its own
    routes = endpoints(target_user, token)

    statuses = {
        (method, url, str(headers)): call(client, method, url, data, headers).status_code
        for method, url, data, headers, _ in routes
    }

    expected = {
        (method, url, str(headers)): by_role[role] for method, url, _, headers, by_role in routes
    }
    assert statuses == expected


SOCKET_EXPECTED = {
    None: (False, 4401),
    "none": (False, 4403),
    Role.VIEWER: (True, None),
    Role.OPERATOR: (True, None),
    Role.ADMIN: (True, None),
}

ADMIN_SOCKET_EXPECTED = {
    **SOCKET_EXPECTED,
    Role.VIEWER: (False, 4403),
    Role.OPERATOR: (False, 4403),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_the_expected_websocket_handshake(client, user_with_role, role):
    instance = Instance.objects.create(agent_id="web-1", name="Web One")
    check = Check.objects.create(name="Nightly", kind=Check.Kind.HEARTBEAT)
    board = board_with({"type": "text", "text": "hi"})
    cookie = None
    if role is not None:
        cookie = session_cookie_of(client, user_with_role(None if role == "none" else role, "me"))

    async def handshakes():
        results = {}
        paths = ["/ws/overview/", f"/ws/instances/{instance.pk}/", "/ws/backups/"]
        for path in [
            *paths,
            "/ws/checks/",
            f"/ws/checks/{check.pk}/",
            f"/ws/dashboards/{board.pk}/",
        ]:
            communicator = socket(path, cookie)
            results[path] = await communicator.connect()
            await communicator.disconnect()
        return results

    assert async_to_sync(handshakes)() == {
        "/ws/overview/": SOCKET_EXPECTED[role],
        f"/ws/instances/{instance.pk}/": SOCKET_EXPECTED[role],
        "/ws/backups/": ADMIN_SOCKET_EXPECTED[role],
        "/ws/checks/": SOCKET_EXPECTED[role],
        f"/ws/checks/{check.pk}/": SOCKET_EXPECTED[role],
        f"/ws/dashboards/{board.pk}/": SOCKET_EXPECTED[role],
    }


CONTROLS = ("Acknowledge</button>", "Resolve</button>", "Silence</button>", "Unsilence")


@pytest.fixture
def open_alerts(db) -> tuple[Instance, Alert]:
    """An instance with an active alert, and a silenced one (which offers Unsilence)."""
    instance = Instance.objects.create(agent_id="web-1", name="Web One")
    alert = alert_on(instance, "DiskFull")
    silenced = alert_on(instance, "Silenced")
    Alert.objects.filter(pk=silenced.pk).update(silenced=True)
    return instance, alert


def test_a_viewer_sees_no_alert_controls_and_is_refused_by_their_endpoints(
    client, user_with_role, open_alerts
):
    instance, alert = open_alerts
    client.force_login(user_with_role(Role.VIEWER, "victor"))

    pages = ["/", f"/instances/{instance.pk}/", "/alerts/", f"/alerts/{alert.pk}/"]
    shown = {url: client.get(url).content.decode() for url in pages}
    refused = {
        action: client.post(f"/alerts/{alert.pk}/{action}", {"layout": "row"}, headers=HTMX)
        for action in ("acknowledge", "resolve", "silence", "unsilence")
    }

    for url, html in shown.items():
        assert "DiskFull" in html, url
        assert [control for control in CONTROLS if control in html] == [], url
    assert {action: response.status_code for action, response in refused.items()} == {
        "acknowledge": 403,
        "resolve": 403,
        "silence": 403,
        "unsilence": 403,
    }
    alert.refresh_from_db()
    assert (alert.status, alert.silenced, alert.acknowledged_by) == ("active", False, None)


def test_an_operator_sees_the_alert_controls(client, user_with_role, open_alerts):
    _, alert = open_alerts
    client.force_login(user_with_role(Role.OPERATOR, "olga"))

    overview = client.get("/").content.decode()
    alerts = client.get("/alerts/").content.decode()
    detail = client.get(f"/alerts/{alert.pk}/").content.decode()

    assert f'hx-post="/alerts/{alert.pk}/acknowledge"' in overview
    assert [control for control in CONTROLS if control not in alerts] == []
    assert [control for control in CONTROLS[:3] if control not in detail] == []
