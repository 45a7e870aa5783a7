"""The checks pages: the list, a check's page, the form that makes or edits a check, pause and
resume, and their live updates over the websocket; Viewers read, Operators and Admins act."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.permissions import Role
from checks.models import Check, CheckGroup, Ping
from tests.test_checks_probes import probe
from tests.test_dashboard_live import session_cookie_of, socket

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(client, user_with_role):
    client.force_login(user_with_role(Role.VIEWER, "reader"))
    return client


@pytest.fixture
def operator(client, user_with_role):
    client.force_login(user_with_role(Role.OPERATOR, "oncall"))
    return client


def site(http_target, path="/ok", **fields) -> Check:
    check = Check(name=fields.pop("name", "Shop"), kind=Check.Kind.HTTP, url=http_target.url + path)
    for name, value in fields.items():
        setattr(check, name, value)
    check.full_clean()
    check.save()
    return check


HTTP_FORM = {
    "name": "Storefront",
    "http_method": "GET",
    "expected_statuses": "200-299",
    "follow_redirects": "on",
    "max_redirects": "10",
    "http_headers": "{}",
    "certificate_warning_days": "14",
    "certificate_critical_days": "3",
    "interval_seconds": "60",
    "timeout_seconds": "5",
    "retries": "1",
    "jitter_seconds": "5",
}


def test_the_list_shows_state_last_result_latency_and_uptime(viewer, http_target):
    up = probe(site(http_target, name="Shop"))
    down = probe(site(http_target, "/status/503", name="Billing", retries=0))

    response = viewer.get("/checks/")

    assert response.status_code == 200
    page = response.content.decode()
    assert f'id="check-{up.pk}" class="check-row check-up"' in page
    assert f'id="check-{down.pk}" class="check-row check-down"' in page
    assert "HTTP 503" in page
    assert "100.00%" in page and "0.00%" in page
    # The latency sparkline has a point for the probe.
    assert '<polyline points=""/>' not in page.split(f'id="check-{up.pk}"')[1].split("</tr>")[0]


def test_a_viewer_gets_no_controls_and_is_refused_by_their_endpoints(viewer, http_target):
    check = site(http_target)

    listing = viewer.get("/checks/").content.decode()
    page = viewer.get(f"/checks/{check.pk}/").content.decode()

    for shown in (listing, page):
        assert "/checks/new/" not in shown and "/paused" not in shown and "/edit/" not in shown
    assert viewer.get("/checks/new/http/").status_code == 403
    assert viewer.post("/checks/new/http/", HTTP_FORM).status_code == 403
    assert viewer.get(f"/checks/{check.pk}/edit/").status_code == 403
    assert viewer.post(f"/checks/{check.pk}/paused", {"paused": "true"}).status_code == 403
    check.refresh_from_db()
    assert not check.paused and Check.objects.count() == 1


def test_an_operator_creates_an_http_check_in_the_form(operator, http_target):
    response = operator.post("/checks/new/http/", {**HTTP_FORM, "url": http_target.url + "/ok"})

    check = Check.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/checks/{check.pk}/"
    assert (check.kind, check.name, check.url) == (
        Check.Kind.HTTP,
        "Storefront",
        http_target.url + "/ok",
    )
    assert check.state == Check.State.NEW and check.next_run_at is not None
    assert AuditEvent.objects.filter(action="check.create", target_id=str(check.pk)).exists()
    page = operator.get(response["Location"]).content.decode()
    assert "Storefront" in page and "Availability, 90 d" in page and "Pause" in page


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/file", "Give an http:// or https:// URL."),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("not a url", "Enter a valid URL."),
    ],
)
def test_the_form_refuses_bad_targets_and_stores_nothing(operator, url, message):
    response = operator.post("/checks/new/http/", {**HTTP_FORM, "url": url})

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Check.objects.exists()


def test_an_unknown_kind_of_check_is_refused(operator):
    assert operator.get("/checks/new/smtp/").status_code == 400


def test_the_form_for_a_heartbeat_asks_for_its_schedule_not_a_target(operator):
    group = CheckGroup.objects.create(name="Jobs", slug="jobs")
    form = operator.get("/checks/new/heartbeat/").content.decode()
    assert 'name="period_seconds"' in form and 'name="url"' not in form

    response = operator.post(
        "/checks/new/heartbeat/",
        {
            "name": "Nightly export",
            "group": group.pk,
            "slug": "nightly-export",
            "period_seconds": "86400",
            "grace_seconds": "3600",
            "cron": "0 3 * * *",
            "time_zone": "Europe/Berlin",
        },
    )

    assert response.status_code == 302
    check = Check.objects.get()
    assert (check.kind, check.cron, check.slug, check.group) == (
        Check.Kind.HEARTBEAT,
        "0 3 * * *",
        "nightly-export",
        group,
    )


def test_editing_a_check_keeps_its_kind_and_audits_the_change(operator, http_target):
    check = site(http_target)

    response = operator.post(
        f"/checks/{check.pk}/edit/",
        {**HTTP_FORM, "name": "Shop API", "url": http_target.url + "/to-ok"},
    )

    assert response.status_code == 302
    check.refresh_from_db()
    assert (check.name, check.kind, check.url) == (
        "Shop API",
        Check.Kind.HTTP,
        http_target.url + "/to-ok",
    )
    assert check.instance.name == "Shop API"
    assert AuditEvent.objects.filter(action="check.change", target_id=str(check.pk)).exists()


def test_pause_and_resume_answer_the_fragments_of_the_page(operator, http_target):
    check = probe(site(http_target))
    htmx = {"HX-Request": "true"}

    paused = operator.post(
        f"/checks/{check.pk}/paused", {"paused": "true", "page": "list"}, headers=htmx
    )

    check.refresh_from_db()
    assert check.paused and check.state == Check.State.PAUSED and check.next_run_at is None
    assert 'id="checks-list" class="panel table-wrap" hx-swap-oob="true"' in paused.content.decode()
    assert "Resume" in paused.content.decode()

    resumed = operator.post(f"/checks/{check.pk}/paused", {"paused": "false"}, headers=htmx)

    check.refresh_from_db()
    assert not check.paused and check.state == Check.State.NEW and check.next_run_at is not None
    assert (
        'id="check-status" class="line check-status" hx-swap-oob="true"' in resumed.content.decode()
    )
    actions = AuditEvent.objects.filter(target_id=str(check.pk)).values_list("action", flat=True)
    assert {"check.pause", "check.resume"} <= set(actions)


def test_the_check_page_shows_availability_incidents_and_response_times(viewer, http_target):
    check = site(http_target, path="/status/500", retries=0)
    probe(check)
    check.url = http_target.url + "/ok"
    check.save()
    probe(check)

    page = viewer.get(f"/checks/{check.pk}/").content.decode()

    assert "Availability, 24 h" in page and "50.00%" in page
    incidents = page.split('id="check-incidents"')[1].split("</section>")[0]
    assert "Down" in incidents and "HTTP 500" in incidents and "ongoing" not in incidents
    assert 'class="chart" data-figure=' in page
    assert "probe_duration_seconds" not in page.split('id="check-info"')[0]


def test_a_heartbeats_page_shows_its_last_pings_with_their_logs(viewer):
    check = Check(name="Backup job", kind=Check.Kind.HEARTBEAT)
    check.save()
    now = timezone.now()
    check.record_ping(Ping.Kind.START, now)
    check.record_ping(Ping.Kind.FAIL, now, b"disk full", exit_status=3, method="POST")

    page = viewer.get(f"/checks/{check.pk}/").content.decode()

    pings = page.split('id="check-pings"')[1].split("</section>")[0]
    assert "disk full" in pings and "exit 3" in pings and "start" in pings
    assert f"/ping/{check.pk}" in page
    assert "Run time" in page


@pytest.mark.django_db(transaction=True)
def test_a_probe_result_reaches_the_list_and_the_check_page_live(
    client, user_with_role, http_target
):
    cookie = session_cookie_of(client, user_with_role(Role.VIEWER, "watcher"))
    check = site(http_target, path="/status/503", retries=0)

    async def scenario():
        listing = socket("/ws/checks/", cookie)
        page = socket(f"/ws/checks/{check.pk}/", cookie)
        assert (await listing.connect())[0] and (await page.connect())[0]
        await sync_to_async(probe)(check)
        pushed = await listing.receive_from(timeout=5), await page.receive_from(timeout=5)
        await listing.disconnect()
        await page.disconnect()
        return pushed

    listed, shown = async_to_sync(scenario)()
    assert f'id="check-{check.pk}" class="check-row check-down"' in listed
    assert 'id="checks-summary"' in listed
    assert '<span class="badge check-down">down</span>' in shown
    assert "HTTP 503" in shown and 'id="check-incidents"' in shown


@pytest.mark.django_db(transaction=True)
def test_once_the_list_socket_knows_the_table_it_sends_only_the_changed_rows(
    client, user_with_role, http_target
):
    cookie = session_cookie_of(client, user_with_role(Role.VIEWER, "watcher"))
    shop = site(http_target, name="Shop")
    billing = site(http_target, path="/status/503", name="Billing", retries=0)

    async def scenario():
        listing = socket("/ws/checks/", cookie)
        assert (await listing.connect())[0]
        pushes = []
        for check in (shop, shop, billing):
            await sync_to_async(probe)(check)
            pushes.append(await listing.receive_from(timeout=5))
        await listing.disconnect()
        return pushes

    first, again, state_changed = async_to_sync(scenario)()
    assert 'id="checks-list"' in first and "Billing" in first
    # The second probe of Shop changes its row's last result, not the counts: its row alone.
    assert again.lstrip().startswith(f'<tr id="check-{shop.pk}" class="check-row check-up"')
    assert 'hx-swap-oob="true"' in again
    assert 'id="checks-list"' not in again and 'id="checks-summary"' not in again
    assert f'id="check-{billing.pk}"' not in again
    # Billing going down changes the counts: the counts and the table whole.
    assert 'id="checks-summary"' in state_changed and 'id="checks-list"' in state_changed
