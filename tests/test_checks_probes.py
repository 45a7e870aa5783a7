"""Uptime probes against real servers on 127.0.0.1: what each kind of check finds, the samples
it stores, and the alerts its state changes raise and resolve."""

import datetime
import socket
import threading
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from alerts.evaluation import evaluate_rules
from alerts.models import Alert
from checks import signals, tasks
from checks.models import Check
from checks.probes import run_probe
from checks.runner import claim_due_checks
from instances.models import Instance, Series
from tests.certificates import self_signed_certificate
from tests.check_targets import DnsTarget, HttpTarget, TcpListener
from tests.conftest import ApiClient
from tests.test_monitoring import metric_value

pytestmark = pytest.mark.django_db


@pytest.fixture
def tcp_listener():
    listener = TcpListener()
    yield listener
    listener.close()


def make_check(**fields) -> Check:
    check = Check(name=fields.pop("name", "Probe"), **fields)
    check.full_clean()
    check.save()
    return check


def probe(check: Check) -> Check:
    """Run the check's probe through the Celery task, as the dispatcher does."""
    tasks.run_checks.delay({str(check.pk): time.time()})
    check.refresh_from_db()
    return check


def latest(check: Check, name: str) -> float:
    return Series.objects.get(instance=check.instance, name=name).last_value


def open_alerts(check: Check, problem: str):
    return Alert.objects.filter(
        instance=check.instance, alert_type=problem, resolved_at__isnull=True
    )


def test_a_due_http_check_is_claimed_probed_and_stored_as_samples(http_target):
    check = make_check(kind=Check.Kind.HTTP, url=f"{http_target.url}/ok", keyword="nominal")
    Check.objects.filter(pk=check.pk).update(next_run_at=timezone.now())

    assert tasks.dispatch_due_checks.delay().get() == 1

    check.refresh_from_db()
    assert check.state == Check.State.UP
    assert check.last_reason == ""
    assert check.next_run_at > timezone.now() + datetime.timedelta(seconds=55)
    assert latest(check, "probe_success") == 1
    assert latest(check, "probe_http_status_code") == 200
    assert 0 < latest(check, "probe_duration_seconds") < check.timeout_seconds
    assert check.instance.agent_id == f"check:{check.pk}"
    assert check.instance.last_seen is not None


def probe_figures(client) -> tuple[float, float, float, float]:
    """(probes started, of which within 5 s of due, successes, failures) from /metrics."""
    return (
        metric_value(client, "vigil_check_schedule_lag_seconds_count"),
        metric_value(client, "vigil_check_schedule_lag_seconds_bucket", le="5.0"),
        metric_value(client, "vigil_check_probes_total", result="success"),
        metric_value(client, "vigil_check_probes_total", result="failure"),
    )


def test_probes_count_on_metrics_with_how_late_they_started(client, http_target):
    up = make_check(kind=Check.Kind.HTTP, url=f"{http_target.url}/ok")
    down = make_check(kind=Check.Kind.HTTP, url=f"{http_target.url}/status/500")
    Check.objects.filter(pk__in=[up.pk, down.pk]).update(next_run_at=timezone.now())
    before = probe_figures(client)

    tasks.dispatch_due_checks.delay()

    after = probe_figures(client)
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 2, 1, 1]


def test_a_claimed_check_is_not_claimed_again_before_its_next_run(http_target):
    check = make_check(kind=Check.Kind.HTTP, url=f"{http_target.url}/ok")
    now = timezone.now() + datetime.timedelta(seconds=10)

    first = claim_due_checks(now)
    second = claim_due_checks(now)

    assert first == ({str(check.pk): check.next_run_at.timestamp()}, [])
    assert second == ({}, [])


def test_promql_reads_probe_results(client, read_token, http_target):
    check = probe(make_check(kind=Check.Kind.HTTP, url=f"{http_target.url}/status/503"))

    answer = ApiClient(client, read_token).get(
        "/prometheus/api/v1/query",
        {"query": f'probe_http_status_code{{instance="{check.agent_id}"}}'},
    )

    (result,) = answer.json()["data"]["result"]
    assert result["value"][1] == "503"


def test_an_unexpected_status_fails_with_the_reason(http_target):
    check = probe(make_check(kind=Check.Kind.HTTP, url=f"{http_target.url}/status/503"))

    assert check.last_reason == "HTTP 503, expected 200-299"
    assert latest(check, "probe_success") == 0
    assert check.failures == 1


def test_a_listed_status_range_counts_as_up(http_target):
    check = make_check(
        kind=Check.Kind.HTTP, url=f"{http_target.url}/status/404", expected_statuses="200,400-404"
    )

    assert probe(check).state == Check.State.UP


def test_a_missing_keyword_and_a_present_forbidden_one_fail(http_target):
    missing = make_check(kind=Check.Kind.HTTP, url=f"{http_target.url}/ok", keyword="error")
    forbidden = make_check(
        kind=Check.Kind.HTTP, url=f"{http_target.url}/ok", keyword="nominal", keyword_absent=True
    )

    assert probe(missing).last_reason == "keyword 'error' not found in the response"
    assert probe(forbidden).last_reason == "keyword 'nominal' found, expected absent"


@pytest.mark.parametrize(
    ("path", "json_path", "expected", "reason"),
    [
        ("/health.json", "status", "ok", ""),
        ("/health.json", "ready", "true", ""),
        ("/health.json", "checks.0.state", "ok", "JSON checks.0.state is degraded, expected ok"),
        ("/health.json", "checks.1.state", "ok", "JSON checks.1.state is <missing>, expected ok"),
        ("/ok", "status", "ok", "JSON status is <not JSON>, expected ok"),
    ],
)
def test_a_json_path_must_hold_the_expected_value(http_target, path, json_path, expected, reason):
    check = make_check(
        kind=Check.Kind.HTTP,
        url=f"{http_target.url}{path}",
        json_path=json_path,
        json_expected=expected,
    )

    assert probe(check).last_reason == reason


def test_redirects_are_followed_and_a_loop_fails(http_target):
    followed = make_check(kind=Check.Kind.HTTP, url=f"{http_target.url}/to-ok")
    not_followed = make_check(
        kind=Check.Kind.HTTP, url=f"{http_target.url}/to-ok", follow_redirects=False
    )
    loop = make_check(kind=Check.Kind.HTTP, url=f"{http_target.url}/loop", max_redirects=3)

    assert probe(followed).state == Check.State.UP
    assert latest(followed, "probe_http_status_code") == 200
    assert probe(not_followed).last_reason == "HTTP 301, expected 200-299"
    assert probe(loop).last_reason == f"more than 3 redirects (last to {http_target.url}/loop)"


def test_a_response_slower_than_the_timeout_fails_in_time(http_target):
    check = make_check(kind=Check.Kind.HTTP, url=f"{http_target.url}/slow", timeout_seconds=0.5)

    started = time.monotonic()
    check = probe(check)

    assert time.monotonic() - started < 3
    assert check.last_reason == "no answer within 0.5 s"
    assert latest(check, "probe_success") == 0


def test_a_stopped_server_is_down_after_the_retries_and_up_again_when_it_returns(tcp_listener):
    check = make_check(kind=Check.Kind.TCP, host="127.0.0.1", port=tcp_listener.port, retries=2)
    assert probe(check).state == Check.State.UP

    tcp_listener.close()
    states = [probe(check).state for _ in range(3)]

    assert states == [Check.State.UP, Check.State.UP, Check.State.DOWN]
    assert check.last_reason == f"127.0.0.1:{tcp_listener.port} refused the connection"
    (alert,) = open_alerts(check, signals.DOWN)
    assert alert.severity == "critical"
    assert alert.message == f"Probe (127.0.0.1:{tcp_listener.port}) is down: {check.last_reason}"

    tcp_listener.open()
    assert probe(check).state == Check.State.UP
    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED
    assert alert.note == "Probe is up again."


def test_a_repeated_failure_keeps_one_open_alert(tcp_listener):
    check = make_check(kind=Check.Kind.TCP, host="127.0.0.1", port=tcp_listener.port, retries=0)
    tcp_listener.close()

    for _ in range(3):
        probe(check)

    assert open_alerts(check, signals.DOWN).count() == 1


@pytest.fixture
def certificate_files(tmp_path):
    return self_signed_certificate(tmp_path, datetime.timedelta(days=2))


@pytest.fixture
def https_target(certificate_files):
    target = HttpTarget(tls_files=certificate_files)
    yield target
    target.stop()


def test_an_unverifiable_certificate_fails_with_the_reason(https_target):
    check = probe(make_check(kind=Check.Kind.HTTP, url=f"{https_target.url}/ok", retries=0))

    assert check.state == Check.State.DOWN
    assert check.last_reason == "TLS certificate is not valid: self-signed certificate"


def test_a_certificate_expiring_in_two_days_is_measured_and_fires_a_critical_alert(
    https_target,
):
    check = make_check(kind=Check.Kind.HTTP, url=f"{https_target.url}/ok", ignore_tls_errors=True)

    check = probe(check)

    assert check.state == Check.State.UP
    days_left = (check.certificate_expires_at - timezone.now()).total_seconds() / 86_400
    assert 1.99 < days_left < 2.0
    assert latest(check, "probe_ssl_earliest_cert_expiry") == pytest.approx(
        check.certificate_expires_at.timestamp()
    )
    (alert,) = open_alerts(check, signals.CERTIFICATE)
    assert alert.severity == "critical"
    assert alert.message.startswith(f"The TLS certificate of Probe ({https_target.url}/ok)")
    assert "expires in 2 days" in alert.message


def test_a_certificate_past_the_warning_days_only_warns(https_target):
    check = make_check(
        kind=Check.Kind.HTTP,
        url=f"{https_target.url}/ok",
        ignore_tls_errors=True,
        certificate_critical_days=1,
    )

    probe(check)

    (alert,) = open_alerts(check, signals.CERTIFICATE)
    assert alert.severity == "warning"


def test_a_renewed_certificate_resolves_the_expiry_alert(https_target, tmp_path):
    (tmp_path / "renewed").mkdir()
    renewed_files = self_signed_certificate(tmp_path / "renewed", datetime.timedelta(days=90))
    renewed = HttpTarget(tls_files=renewed_files)
    try:
        check = make_check(
            kind=Check.Kind.HTTP, url=f"{https_target.url}/ok", ignore_tls_errors=True
        )
        probe(check)
        (alert,) = open_alerts(check, signals.CERTIFICATE)

        Check.objects.filter(pk=check.pk).update(url=f"{renewed.url}/ok")
        probe(check)
    finally:
        renewed.stop()

    alert.refresh_from_db()
    assert alert.status == Alert.Status.RESOLVED
    assert alert.note == "The certificate of Probe is renewed."


def test_a_dns_check_reads_the_record_from_the_given_resolver():
    server = DnsTarget("app.example.test", "192.0.2.7")
    try:
        right = make_check(
            kind=Check.Kind.DNS,
            host="app.example.test",
            dns_expected="192.0.2.7",
            dns_resolver=f"127.0.0.1:{server.port}",
        )
        wrong = make_check(
            kind=Check.Kind.DNS,
            host="app.example.test",
            dns_expected="192.0.2.8",
            dns_resolver=f"127.0.0.1:{server.port}",
        )
        unknown = make_check(
            kind=Check.Kind.DNS, host="nope.example.test", dns_resolver=f"127.0.0.1:{server.port}"
        )
        assert probe(right).state == Check.State.UP
        assert latest(right, "probe_dns_lookup_time_seconds") > 0
        assert probe(wrong).last_reason == "A is 192.0.2.7, expected 192.0.2.8"
        assert probe(unknown).last_reason.startswith(
            "DNS lookup failed: The DNS query name does not exist"
        )
    finally:
        server.stop()


def test_a_dns_server_that_does_not_answer_fails_at_the_timeout():
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        check = make_check(
            kind=Check.Kind.DNS,
            host="app.example.test",
            timeout_seconds=0.5,
            dns_resolver=f"127.0.0.1:{silent.getsockname()[1]}",
        )
        assert probe(check).last_reason == "no DNS answer within 0.5 s"
    finally:
        silent.close()


def test_ping_of_loopback_answers_with_its_packet_loss():
    check = probe(make_check(kind=Check.Kind.ICMP, host="127.0.0.1"))

    assert check.state == Check.State.UP
    assert 0 < latest(check, "probe_duration_seconds") < 1
    assert latest(check, "probe_icmp_packet_loss_ratio") == 0.0


# --- outbound safety and bad input ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/file", "Give an http:// or https:// URL."),
        ("http://", "Enter a valid URL."),
        ("not a url", "Enter a valid URL."),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is link-local"),
        ("http://[fe80::1]/", "fe80::1 is link-local"),
    ],
)
def test_bad_and_link_local_urls_are_refused_and_nothing_is_stored(url, message):
    with pytest.raises(ValidationError) as refused:
        make_check(kind=Check.Kind.HTTP, url=url)

    assert any(message in text for text in refused.value.message_dict["url"])
    assert not Check.objects.exists()


def test_a_probe_never_connects_to_a_link_local_address():
    # Made without validation, as a row edited in the database would be.
    check = Check.objects.create(
        name="Metadata", kind=Check.Kind.TCP, host="169.254.169.254", port=80
    )

    check = probe(check)

    assert check.last_reason == (
        "169.254.169.254 is link-local; probes never reach link-local addresses"
    )
    assert latest(check, "probe_success") == 0


def test_loopback_is_refused_unless_private_targets_are_allowed(settings, tcp_listener):
    settings.CHECKS_ALLOW_PRIVATE = False
    by_address = Check(name="Local", kind=Check.Kind.TCP, host="127.0.0.1", port=tcp_listener.port)
    with pytest.raises(ValidationError) as refused:
        by_address.full_clean()
    by_name = Check.objects.create(
        name="Local", kind=Check.Kind.TCP, host="localhost", port=tcp_listener.port
    )

    by_name = probe(by_name)

    assert "127.0.0.1 is a loopback or private address" in refused.value.message_dict["host"][0]
    assert by_name.last_reason == (
        "127.0.0.1 is a loopback or private address (set CHECKS_ALLOW_PRIVATE=1 to allow)"
    )


def test_an_interval_under_20_seconds_is_refused():
    with pytest.raises(ValidationError) as refused:
        make_check(kind=Check.Kind.TCP, host="127.0.0.1", port=80, interval_seconds=10)

    assert "interval_seconds" in refused.value.message_dict


@pytest.mark.django_db(transaction=True)
def test_a_check_locked_by_another_claim_is_skipped_not_waited_for(http_target):
    locked = make_check(kind=Check.Kind.HTTP, url=f"{http_target.url}/ok", name="Locked")
    free = make_check(kind=Check.Kind.HTTP, url=f"{http_target.url}/ok", name="Free")
    holding, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with transaction.atomic():
            Check.objects.select_for_update().get(pk=locked.pk)
            holding.set()
            release.wait(timeout=10)
        connection.close()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert holding.wait(timeout=10)
        claimed = claim_due_checks(timezone.now() + datetime.timedelta(seconds=10))
    finally:
        release.set()
        holder.join()

    assert list(claimed[0]) == [str(free.pk)]


def test_deleting_a_check_deletes_its_instance_samples_and_alerts(tcp_listener):
    check = make_check(kind=Check.Kind.TCP, host="127.0.0.1", port=tcp_listener.port, retries=0)
    tcp_listener.close()
    probe(check)
    instance_id = check.instance_id
    assert Alert.objects.filter(instance_id=instance_id).exists()

    Check.objects.filter(pk=check.pk).delete()

    assert not Instance.objects.filter(pk=instance_id).exists()
    assert not Alert.objects.filter(instance_id=instance_id).exists()
    assert not Series.objects.filter(instance_id=instance_id).exists()


def test_check_instances_are_kept_seen_while_their_checks_run(tcp_listener):
    long_ago = timezone.now() - datetime.timedelta(hours=1)
    running = make_check(kind=Check.Kind.HEARTBEAT, name="Nightly")
    paused = make_check(kind=Check.Kind.HEARTBEAT, name="Retired", paused=True)
    Instance.objects.filter(pk__in=[running.instance_id, paused.instance_id]).update(
        last_seen=long_ago
    )

    tasks.dispatch_due_checks.delay()
    evaluate_rules()

    running.instance.refresh_from_db()
    paused.instance.refresh_from_db()
    assert running.instance.last_seen > long_ago
    assert paused.instance.last_seen == long_ago
    assert not Alert.objects.filter(instance=running.instance, alert_type=Alert.INSTANCE_DOWN)


def test_a_check_deleted_or_paused_while_its_probe_runs_leaves_the_rest_of_the_batch(
    http_target,
):
    kept = make_check(kind=Check.Kind.HTTP, url=f"{http_target.url}/ok", name="Kept")
    deleted = make_check(kind=Check.Kind.HTTP, url=f"{http_target.url}/ok", name="Deleted")
    paused = make_check(kind=Check.Kind.HTTP, url=f"{http_target.url}/ok", name="Paused")
    due_at = {str(check.pk): time.time() for check in (kept, deleted, paused)}
    results = {str(check.pk): run_probe(check) for check in (kept, deleted, paused)}
    Check.objects.filter(pk=deleted.pk).delete()
    Check.objects.filter(pk=paused.pk).update(paused=True, state=Check.State.PAUSED)

    recorded = Check.record_probes(
        [(check.pk, timezone.now(), results[str(check.pk)]) for check in (kept, deleted, paused)]
    )
    assert tasks.run_checks.delay(due_at).get() == 1
    assert recorded == 1

    kept.refresh_from_db()
    paused.refresh_from_db()
    assert kept.state == Check.State.UP
    assert (paused.state, paused.last_run_at) == (Check.State.PAUSED, None)
