"""Heartbeat checks through Healthchecks' ping API, over real HTTP against the live server: a
cron job's runs, a missed period turning late then down, and the alerts each change raises."""

import datetime
import urllib.error
import urllib.request
import uuid

import pytest
from django.core.exceptions import ValidationError

from alerts.models import Alert
from checks import signals
from checks.models import PING_BODY_LIMIT_BYTES, Check, CheckGroup, Ping
from checks.runner import claim_due_checks, watch_heartbeats
from instances.models import Series

pytestmark = pytest.mark.django_db(transaction=True)

UTC = datetime.UTC


def heartbeat(**fields) -> Check:
    check = Check(name="Nightly backup", kind=Check.Kind.HEARTBEAT, **fields)
    check.full_clean()
    check.save()
    return check


def ping(live_server, path: str, body: bytes | None = None, method: str | None = None):
    """(status, text) of one ping, as curl would send it."""
    request = urllib.request.Request(f"{live_server.url}/ping/{path}", data=body, method=method)
    request.add_header("User-Agent", "curl/8.5.0")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def open_alert(check: Check, problem: str) -> Alert | None:
    return Alert.objects.filter(
        instance=check.instance, alert_type=problem, resolved_at__isnull=True
    ).first()


def pass_time_to(moment: datetime.datetime) -> None:
    """The dispatcher's heartbeat half at ``moment``: claim what is due and judge it."""
    _, heartbeat_ids = claim_due_checks(moment)
    watch_heartbeats(heartbeat_ids, moment)


def test_a_cron_jobs_runs_move_the_check_and_its_alerts(live_server):
    check = heartbeat(period_seconds=3600, grace_seconds=600)
    assert (check.state, check.next_run_at) == (Check.State.NEW, None)

    # start → success: up, with the run time and the job's output.
    assert ping(live_server, f"{check.pk}/start") == (200, "OK")
    assert ping(live_server, str(check.pk), b"backup written: 1.2 GB") == (200, "OK")
    check.refresh_from_db()
    assert check.state == Check.State.UP
    assert check.next_run_at == check.last_ping_at + datetime.timedelta(hours=1)
    success = check.pings.first()
    assert (success.kind, success.method, success.body) == (
        "success",
        "POST",
        "backup written: 1.2 GB",
    )
    assert success.user_agent == "curl/8.5.0"
    assert success.duration > 0
    samples = Series.objects.filter(instance=check.instance)
    assert {s.name: s.last_value for s in samples}["probe_success"] == 1

    # start → fail: down at once, with a critical alert.
    ping(live_server, f"{check.pk}/start")
    assert ping(live_server, f"{check.pk}/fail", b"pg_dump: disk full") == (200, "OK")
    check.refresh_from_db()
    assert check.state == Check.State.DOWN
    down = open_alert(check, signals.DOWN)
    assert down.severity == "critical"
    assert down.message == f"Nightly backup (/ping/{check.pk}) is down: the job reported a failure"

    # An exit status of 0 is a success: up again, the alert resolved.
    assert ping(live_server, f"{check.pk}/0") == (200, "OK")
    check.refresh_from_db()
    assert check.state == Check.State.UP
    down.refresh_from_db()
    assert down.status == Alert.Status.RESOLVED

    # A missed period: late (warning) after it, down (critical) after the grace as well.
    last_ping = check.last_ping_at
    pass_time_to(last_ping + datetime.timedelta(minutes=59))
    check.refresh_from_db()
    assert check.state == Check.State.UP
    pass_time_to(last_ping + datetime.timedelta(minutes=61))
    check.refresh_from_db()
    assert check.state == Check.State.LATE
    late = open_alert(check, signals.LATE)
    assert late.severity == "warning"
    assert late.message.startswith("Nightly backup is late: no ping since")
    pass_time_to(last_ping + datetime.timedelta(minutes=71))
    check.refresh_from_db()
    assert check.state == Check.State.DOWN
    assert check.next_run_at is None
    late.refresh_from_db()
    assert late.status == Alert.Status.RESOLVED
    down = open_alert(check, signals.DOWN)
    assert down.severity == "critical"

    # The job runs again: up, and the down alert resolved.
    assert ping(live_server, str(check.pk), method="HEAD")[0] == 200
    check.refresh_from_db()
    assert check.state == Check.State.UP
    down.refresh_from_db()
    assert down.status == Alert.Status.RESOLVED
    assert check.pings.count() == 6


def test_a_nonzero_exit_status_is_a_failure_with_that_status(live_server):
    check = heartbeat()

    assert ping(live_server, f"{check.pk}/3") == (200, "OK")

    check.refresh_from_db()
    assert check.state == Check.State.DOWN
    assert check.last_reason == "the job exited with status 3"
    assert check.pings.get().exit_status == 3


def test_a_body_of_exactly_the_limit_is_stored(live_server):
    check = heartbeat()

    assert ping(live_server, str(check.pk), b"x" * PING_BODY_LIMIT_BYTES) == (200, "OK")

    assert len(check.pings.get().body) == PING_BODY_LIMIT_BYTES


BAD_PINGS = [
    # (path, body, method) → (status, text); None: any text.
    (("{uuid}", b"x" * (PING_BODY_LIMIT_BYTES + 1), None),
     (413, "request body larger than 100000 bytes")),
    (("{uuid}/256", None, None), (400, "exit status must be 0 to 255")),
    (("{unknown}", None, None), (404, "not found")),
    (("{unknown}/start", None, None), (404, "not found")),
    (("{probe}", None, None), (404, "not found")),
    (("not-a-uuid", None, None), (404, None)),
    (("{uuid}/restart", None, None), (404, None)),
    (("{uuid}", b"{}", "PUT"), (405, "")),
]  # fmt: skip


def test_bad_pings_get_a_clear_4xx_and_nothing_is_stored(live_server):
    check = heartbeat()
    probe = Check.objects.create(name="Site", kind=Check.Kind.TCP, host="127.0.0.1", port=9)

    answers = {}
    for (path, body, method), _ in BAD_PINGS:
        url = path.format(uuid=check.pk, unknown=uuid.uuid4(), probe=probe.pk)
        status, text = ping(live_server, url, body, method)
        answers[path, method] = (status, text)

    for (path, _, method), (status, text) in BAD_PINGS:
        assert answers[path, method][0] == status, path
        if text is not None:
            assert answers[path, method][1] == text, path
    assert not Ping.objects.exists()
    check.refresh_from_db()
    assert (check.state, check.last_ping_at) == (Check.State.NEW, None)


@pytest.mark.parametrize(
    ("pinged", "due"),
    [
        # 03:00 in Berlin is 02:00 UTC in winter time, 01:00 UTC the next day (summer time).
        pytest.param(
            datetime.datetime(2026, 3, 28, 2, 0, tzinfo=UTC),
            datetime.datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
            id="into summer time",
        ),
        # And back: the clocks go back on 25 October.
        pytest.param(
            datetime.datetime(2026, 10, 24, 1, 0, tzinfo=UTC),
            datetime.datetime(2026, 10, 25, 2, 0, tzinfo=UTC),
            id="into winter time",
        ),
    ],
)
@pytest.mark.django_db
def test_a_cron_schedule_follows_its_time_zone_across_a_dst_change(pinged, due):
    check = heartbeat(cron="0 3 * * *", time_zone="Europe/Berlin", grace_seconds=1800)

    check.record_ping(Ping.Kind.SUCCESS, pinged)
    pass_time_to(due - datetime.timedelta(seconds=1))
    on_time = Check.objects.get(pk=check.pk)
    pass_time_to(due + datetime.timedelta(seconds=1))
    late = Check.objects.get(pk=check.pk)

    assert on_time.next_run_at == due
    assert on_time.state == Check.State.UP
    assert late.state == Check.State.LATE
    assert late.next_run_at == due + datetime.timedelta(minutes=30)


def test_a_paused_heartbeat_is_never_late_and_resumes_on_its_next_ping(live_server):
    check = heartbeat(period_seconds=60, grace_seconds=60)
    ping(live_server, str(check.pk))
    check.refresh_from_db()
    check.paused = True
    check.save()

    pass_time_to(check.last_ping_at + datetime.timedelta(hours=1))
    check.refresh_from_db()
    assert (check.state, check.next_run_at) == (Check.State.PAUSED, None)

    ping(live_server, str(check.pk))
    check.refresh_from_db()
    assert (check.state, check.paused) == (Check.State.UP, False)


def test_a_started_run_that_outlasts_the_grace_is_down(live_server):
    check = heartbeat(period_seconds=86_400, grace_seconds=600)
    ping(live_server, str(check.pk))
    ping(live_server, f"{check.pk}/start")
    check.refresh_from_db()
    assert check.next_run_at == check.started_at + datetime.timedelta(minutes=10)

    pass_time_to(check.started_at + datetime.timedelta(minutes=11))

    check.refresh_from_db()
    assert check.state == Check.State.DOWN
    assert check.last_reason.endswith("did not finish within 10m")
    assert open_alert(check, signals.DOWN).message.endswith("did not finish within 10m")


def test_slug_pings_under_the_groups_ping_key_move_the_check_as_uuid_pings_do(live_server):
    group = CheckGroup.objects.create(name="Jobs", slug="jobs")
    check = heartbeat(group=group, slug="nightly-backup")
    key = group.ping_key

    started = ping(live_server, f"{key}/nightly-backup/start")
    failed = ping(live_server, f"{key}/nightly-backup/3", b"tar: disk full")
    check.refresh_from_db()
    assert (started, failed) == ((200, "OK"), (200, "OK"))
    assert check.state == Check.State.DOWN and "status 3" in check.last_reason
    assert open_alert(check, signals.DOWN) is not None

    assert ping(live_server, f"{key}/nightly-backup", method="POST") == (200, "OK")
    check.refresh_from_db()
    assert check.state == Check.State.UP and open_alert(check, signals.DOWN) is None
    assert ping(live_server, f"{key}/nightly-backup/fail") == (200, "OK")
    kinds = list(
        Ping.objects.filter(heartbeat=check).order_by("created").values_list("kind", flat=True)
    )
    assert kinds == ["start", "fail", "success", "fail"]
    assert Ping.objects.filter(heartbeat=check, body="tar: disk full").exists()


def test_a_slug_ping_needs_the_right_group_key_and_slug(live_server):
    jobs = CheckGroup.objects.create(name="Jobs", slug="jobs")
    other = CheckGroup.objects.create(name="Other", slug="other")
    heartbeat(group=jobs, slug="nightly-backup")

    assert ping(live_server, f"{other.ping_key}/nightly-backup")[0] == 404
    assert ping(live_server, f"{jobs.ping_key}/weekly-backup")[0] == 404
    assert ping(live_server, f"{jobs.slug}/nightly-backup")[0] == 404
    assert ping(live_server, f"{jobs.ping_key}/nightly-backup/256")[0] == 400
    assert not Ping.objects.exists()


@pytest.mark.django_db
def test_a_slug_needs_a_group_and_is_unique_within_it():
    jobs = CheckGroup.objects.create(name="Jobs", slug="jobs")
    heartbeat(group=jobs, slug="nightly")

    with pytest.raises(ValidationError) as without_group:
        heartbeat(slug="nightly")
    with pytest.raises(ValidationError) as taken:
        heartbeat(group=jobs, slug="nightly")

    assert "choose a group" in without_group.value.message_dict["slug"][0]
    assert "Another check of this group has this slug." in str(taken.value)
    assert Check.objects.count() == 1
