"""Notifications reach a real HTTP receiver on 127.0.0.1 and the locmem mailbox."""

import hashlib
import hmac
import json
import re
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from alerts import lifecycle, tasks
from alerts.evaluation import evaluate_rules
from alerts.instance_status import record_contact
from alerts.models import Alert, AlertGroup, AlertRule, Notification, NotificationChannel, Silence
from config.celery import app as celery_app
from instances.formats import epoch_ms
from instances.models import Instance

pytestmark = pytest.mark.django_db(transaction=True)

T0 = (timezone.now() - timedelta(minutes=10)).replace(microsecond=0)
BASE_URL = "https://vigil.example.com"


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers scripted statuses."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                        "status": status,
                    }
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status": "success"}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def json(self, index=-1) -> dict:
        return json.loads(self.requests[index]["body"])

    @property
    def delivered(self) -> list[dict]:
        return [request for request in self.requests if request["status"] < 300]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def eager_retries():
    """Eager tasks run Celery's retries in-process (countdowns skipped) only when failures are
    not propagated to the caller; the last failure is then kept in the task result."""
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_eager_propagates = True


@pytest.fixture(autouse=True)
def no_rules_but_ours(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.VIGIL_BASE_URL = BASE_URL
    AlertRule.objects.all().delete()


def channel(kind, target="", secret="", **fields) -> NotificationChannel:
    return NotificationChannel.objects.create(
        name=f"{kind} channel", kind=kind, target=target, secret=secret, **fields
    )


def fire(severity="critical", agent_id="web-1", name="") -> Alert:
    """A rule alert that has just fired and is due its firing notice."""
    instance = record_contact(agent_id, name=name or f"Web {agent_id}")
    rule = AlertRule.objects.create(
        name=f"CPU hot {Alert.objects.count()}",
        metric="cpu_usage",
        warning_threshold=80,
        critical_threshold=90,
        runbook_url="https://runbooks.example/cpu",
    )
    alert = Alert.objects.create(
        instance=instance,
        rule=rule,
        source=Alert.Source.RULE,
        alert_type=rule.name,
        severity=severity,
        message="cpu_usage avg over 1m is 97 (> 90)",
        fingerprint=f"{rule.pk:064d}",
        pending_since=T0,
        fired_at=T0 + timedelta(minutes=2),
        last_notified_at=timezone.now(),
    )
    tasks.dispatch(alert, "firing")
    return alert


def statuses(alert=None) -> list[tuple[str, str, int]]:
    notes = Notification.objects.order_by("pk")
    if alert is not None:
        notes = notes.filter(alert=alert)
    return [(note.kind, note.status, note.attempt) for note in notes]


def test_the_webhook_receives_the_alert_as_json_signed_with_the_channel_secret(receiver):
    channel("webhook", receiver.url(), secret="s3cret")
    alert = fire()
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    expected = hmac.new(b"s3cret", request["body"], hashlib.sha256).hexdigest()
    assert request["headers"]["X-Vigil-Signature"] == f"sha256={expected}"
    assert request["headers"]["Content-Type"] == "application/json"
    body = receiver.json()
    assert body["kind"] == "firing"
    assert body["alert_id"] == str(alert.pk)
    assert body["severity"] == "critical"
    assert body["fingerprint"] == alert.fingerprint
    assert body["url"] == f"{BASE_URL}/alerts/{alert.pk}/"
    assert body["ack_url"].startswith(f"{BASE_URL}/alerts/ack/")
    assert body["runbook_url"] == "https://runbooks.example/cpu"
    assert statuses(alert) == [("firing", "sent", 1)]
    assert Notification.objects.get().response_code == 200


def test_a_tampered_webhook_body_no_longer_matches_its_signature(receiver):
    channel("webhook", receiver.url(), secret="s3cret")
    fire()
    request = receiver.requests[0]
    tampered = request["body"].replace(b"critical", b"info")
    digest = hmac.new(b"s3cret", tampered, hashlib.sha256).hexdigest()
    assert request["headers"]["X-Vigil-Signature"] != f"sha256={digest}"


def test_slack_gets_text_and_block_kit_blocks(receiver):
    channel("slack", receiver.url("/services/T000/B000/XXX"))
    alert = fire()
    body = receiver.json()
    assert isinstance(body["text"], str) and "CPU hot" in body["text"]
    assert [block["type"] for block in body["blocks"]] == ["header", "section", "actions"]
    assert body["blocks"][0]["text"]["type"] == "plain_text"
    # Slack shows "&gt;" as ">": the rule's words arrive as written.
    shown = alert.message.replace(">", "&gt;")
    assert body["blocks"][1]["text"] == {"type": "mrkdwn", "text": shown}
    buttons = body["blocks"][2]["elements"]
    assert all(button["type"] == "button" for button in buttons)
    assert buttons[0]["url"].endswith(f"/alerts/{alert.pk}/")
    assert "/alerts/ack/" in buttons[1]["url"]


def test_google_chat_gets_text_and_a_card_with_link_buttons(receiver):
    channel("google_chat", receiver.url("/v1/spaces/AAA/messages"))
    alert = fire(severity="warning")
    body = receiver.json()
    assert "CPU hot" in body["text"]
    (card,) = body["cardsV2"]
    assert card["cardId"] and card["card"]["header"]["title"].startswith("[FIRING] [WARNING]")
    widgets = card["card"]["sections"][0]["widgets"]
    assert widgets[0]["textParagraph"]["text"] == alert.message
    links = [button["onClick"]["openLink"]["url"] for button in widgets[1]["buttonList"]["buttons"]]
    assert links[0].endswith(f"/alerts/{alert.pk}/") and "/alerts/ack/" in links[1]


def test_pagerduty_triggers_then_resolves_one_incident_per_fingerprint(receiver, settings):
    settings.PAGERDUTY_EVENTS_URL = receiver.url("/v2/enqueue")
    channel("pagerduty", secret="R0UT1NGKEY0123456789012345678901")
    alert = fire()
    trigger = receiver.json()
    assert receiver.requests[0]["path"] == "/v2/enqueue"
    assert trigger["routing_key"] == "R0UT1NGKEY0123456789012345678901"
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == alert.fingerprint
    assert trigger["payload"]["severity"] in {"critical", "error", "warning", "info"}
    assert trigger["payload"]["source"] == "Web web-1"
    assert trigger["payload"]["summary"] and len(trigger["payload"]["summary"]) <= 1024
    assert {link["href"] for link in trigger["links"]} >= {f"{BASE_URL}/alerts/{alert.pk}/"}

    lifecycle.resolve(alert, note="fixed")
    resolve = receiver.json()
    assert resolve == {
        "routing_key": "R0UT1NGKEY0123456789012345678901",
        "event_action": "resolve",
        "dedup_key": alert.fingerprint,
    }
    assert statuses(alert) == [("firing", "sent", 1), ("resolved", "sent", 1)]


def test_email_goes_through_the_django_mail_backend(settings):
    channel("email", "ops@example.com, oncall@example.com")
    alert = fire(severity="warning")
    (message,) = mail.outbox
    assert message.to == ["ops@example.com", "oncall@example.com"]
    assert message.subject == f"[FIRING] [WARNING] {alert.alert_type} on Web web-1"
    assert f"{BASE_URL}/alerts/{alert.pk}/" in message.body
    assert f"{BASE_URL}/alerts/ack/" in message.body
    assert statuses(alert) == [("firing", "sent", 1)]


def test_severity_routes_critical_to_the_pager_and_warnings_to_chat(receiver, settings):
    settings.PAGERDUTY_EVENTS_URL = receiver.url("/v2/enqueue")
    channel("pagerduty", secret="key")
    channel("slack", receiver.url("/slack"))
    fire(severity="warning")
    assert [request["path"] for request in receiver.requests] == ["/slack"]
    fire(severity="critical", agent_id="web-2")
    assert sorted(request["path"] for request in receiver.requests[1:]) == ["/slack", "/v2/enqueue"]


def test_a_rule_with_channels_notifies_only_those(receiver):
    chosen = channel("webhook", receiver.url("/chosen"))
    NotificationChannel.objects.create(name="other", kind="webhook", target=receiver.url("/other"))
    alert = fire()
    assert sorted(r["path"] for r in receiver.requests) == ["/chosen", "/other"]
    alert.rule.channels.add(chosen)
    fire(agent_id="web-2")
    rule = AlertRule.objects.latest("pk")
    rule.channels.add(chosen)
    receiver.requests.clear()
    fire(agent_id="web-3")
    assert len(receiver.requests) == 2  # that rule had no channels chosen yet


def test_a_receiver_that_fails_twice_then_succeeds_gets_one_delivered_notice(receiver):
    receiver.statuses = [503, 500, 200]
    channel("webhook", receiver.url())
    alert = fire()
    assert [request["status"] for request in receiver.requests] == [503, 500, 200]
    assert len(receiver.delivered) == 1
    assert statuses(alert) == [
        ("firing", "failed", 1),
        ("firing", "failed", 2),
        ("firing", "sent", 3),
    ]
    assert Notification.objects.filter(status="failed").order_by("pk").first().response_code == 503


def test_a_permanent_refusal_is_not_retried(receiver):
    receiver.statuses = [404]
    channel("webhook", receiver.url())
    alert = fire()
    assert len(receiver.requests) == 1
    assert statuses(alert) == [("firing", "gave_up", 1)]
    assert "404" in Notification.objects.get().error


def test_delivery_gives_up_after_the_last_retry(receiver, settings):
    from alerts.tasks import deliver

    receiver.statuses = [503] * 20
    channel("webhook", receiver.url())
    alert = fire()
    tries = deliver.max_retries + 1
    assert len(receiver.requests) == tries
    assert [status for _, status, _ in statuses(alert)] == ["failed"] * (tries - 1) + ["gave_up"]


def test_an_unreachable_receiver_is_retried_and_logged(receiver):
    url = receiver.url()
    receiver.close()
    channel("webhook", url)
    alert = fire()
    notes = Notification.objects.filter(alert=alert)
    assert notes.count() > 1
    assert notes.order_by("pk").last().status == "gave_up"


def test_a_delivered_dispatch_is_not_sent_twice(receiver):
    from alerts.tasks import deliver, notify_alert

    channel("webhook", receiver.url())
    alert = fire()
    notify_alert.delay(str(alert.pk), "firing")  # the same notice, say after a worker crash
    assert len(receiver.requests) == 1
    sent = Notification.objects.get()
    notice = {"group": sent.group_id, "labels": {}, "firing": [str(alert.pk)], "resolved": []}
    deliver.delay(str(sent.dispatch), sent.channel_id, str(alert.pk), "firing", notice)
    assert len(receiver.requests) == 1  # the same dispatch again: deduplicated by its id


def test_notices_queued_in_the_shape_before_routes_are_delivered_as_single_alert_notices(
    receiver,
):
    from alerts.tasks import deliver

    firing = fire(agent_id="web-1")
    acknowledged = fire(agent_id="web-2")
    lifecycle.acknowledge(acknowledged, note="on it")
    recovered = fire(agent_id="web-3")
    lifecycle.resolve(recovered, note="fixed")
    hook = channel("webhook", receiver.url())  # made after the alerts: nothing was sent yet
    # The old task's arguments: dispatch, channel, alert, kind (no group notice).
    deliver.delay("6f1c7a10-0000-4000-8000-000000000001", hook.pk, str(firing.pk), "firing")
    deliver.delay("6f1c7a10-0000-4000-8000-000000000002", hook.pk, str(acknowledged.pk), "firing")
    deliver.delay("6f1c7a10-0000-4000-8000-000000000003", hook.pk, str(recovered.pk), "resolved")

    assert [(body["kind"], body["alert_id"]) for body in map(receiver.json, (0, 1))] == [
        ("firing", str(firing.pk)),
        ("resolved", str(recovered.pk)),
    ]
    assert len(receiver.requests) == 2  # the acknowledged alert's notice is dropped, as it was
    sent = Notification.objects.order_by("pk")
    assert [(note.alert_id, note.group_id, note.kind, note.status) for note in sent] == [
        (firing.pk, None, "firing", "sent"),
        (recovered.pk, None, "resolved", "sent"),
    ]


def test_acknowledged_alerts_send_nothing_more(receiver, settings):
    channel("webhook", receiver.url())
    alert = fire()
    lifecycle.acknowledge(alert, note="on it")
    settings.ALERT_REPEAT_INTERVAL_SECONDS = 0
    evaluate_rules()
    tasks.dispatch(alert, "firing")
    assert len(receiver.requests) == 1


def test_silenced_alerts_send_nothing_until_the_silence_ends(receiver, settings):
    channel("webhook", receiver.url())
    Silence.objects.create(
        instance=Instance.register("web-1"),
        starts_at=timezone.now() - timedelta(minutes=1),
        ends_at=timezone.now() + timedelta(hours=1),
        comment="maintenance",
    )
    alert = fire()
    settings.ALERT_REPEAT_INTERVAL_SECONDS = 0
    evaluate_rules()
    assert receiver.requests == []
    Silence.objects.update(ends_at=timezone.now() - timedelta(seconds=1))
    evaluate_rules()
    # Its first notice: firing, not "still firing" of an alert the channel never heard of.
    assert [receiver.json(i)["kind"] for i in range(len(receiver.requests))] == ["firing"]
    assert receiver.json()["alert_id"] == str(alert.pk)


def test_a_firing_rule_notifies_then_its_recovery_sends_a_resolved_notice(receiver, api):
    channel("webhook", receiver.url(), secret="k")
    AlertRule.objects.create(
        name="CPU hot",
        metric="cpu_usage",
        aggregation="last",
        critical_threshold=90,
        for_duration=timedelta(0),
    )

    def post(value, at):
        sample = {"name": "cpu_usage", "value": value, "ts": epoch_ms(at)}
        assert (
            api.post(
                "/api/v1/ingest", {"instance": {"agent_id": "web-1"}, "samples": [sample]}
            ).status_code
            == 202
        )

    post(99, T0)
    evaluate_rules(now=T0)
    post(10, T0 + timedelta(seconds=30))
    evaluate_rules(now=T0 + timedelta(seconds=30))
    kinds = [receiver.json(i)["kind"] for i in range(len(receiver.requests))]
    assert kinds == ["firing", "resolved"]
    assert receiver.json()["title"].startswith("[RESOLVED]")
    assert receiver.json()["ack_url"] == ""


def test_an_alert_never_notified_resolves_quietly(receiver):
    channel("webhook", receiver.url())
    Silence.objects.create(
        instance=Instance.register("web-1"), ends_at=timezone.now() + timedelta(hours=1)
    )
    alert = fire()
    lifecycle.resolve(alert)
    assert receiver.requests == []


def test_unacknowledged_firing_alerts_repeat_after_the_interval(receiver, settings):
    channel("webhook", receiver.url())
    alert = fire()
    evaluate_rules()
    assert len(receiver.requests) == 1  # not due yet
    # Its group (the alert's own, by the shipped root route) was told that long ago.
    AlertGroup.objects.update(
        last_notified_at=timezone.now()
        - timedelta(seconds=settings.ALERT_REPEAT_INTERVAL_SECONDS + 1)
    )
    evaluate_rules()
    assert [receiver.json(i)["kind"] for i in range(2)] == ["firing", "repeat"]
    assert statuses(alert)[-1] == ("repeat", "sent", 1)


def test_an_agent_alert_is_notified_by_the_next_evaluation(receiver, api):
    channel("webhook", receiver.url())
    body = {"instanceId": "web-9", "alertType": "disk_full", "severity": "high", "message": "95%"}
    alert_id = api.post("/api/v1/alerts", body).json()["id"]
    evaluate_rules()
    assert receiver.json()["alert_id"] == alert_id
    assert receiver.json()["severity"] == "error"
    evaluate_rules()
    assert len(receiver.requests) == 1


def test_send_test_delivers_a_test_notice_and_logs_it(receiver):
    webhook = channel("webhook", receiver.url(), secret="k")
    tasks.dispatch_test(webhook)
    assert receiver.json()["kind"] == "test"
    note = Notification.objects.get()
    assert (note.kind, note.status, note.alert, note.channel) == ("test", "sent", None, webhook)


def test_the_admin_send_test_action_sends_one_per_channel(admin_client):
    channel("email", "ops@example.com")
    response = admin_client.post(
        "/admin/alerts/notificationchannel/",
        {"action": "send_test", "_selected_action": [NotificationChannel.objects.get().pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert [message.subject for message in mail.outbox] == ["Vigil test notification"]
    assert Notification.objects.get().status == "sent"


def test_failures_are_counted_for_the_metrics_endpoint(receiver):
    from prometheus_client import REGISTRY

    def failures():
        return (
            REGISTRY.get_sample_value("vigil_notification_failures_total", {"kind": "webhook"}) or 0
        )

    before = failures()
    receiver.statuses = [500, 200]
    channel("webhook", receiver.url())
    fire()
    assert failures() == before + 1


def test_teams_gets_an_adaptive_card_through_its_workflow_webhook(receiver):
    channel("teams", receiver.url("/workflows/abc/triggers/manual/paths/invoke?sig=x"))
    alert = fire()
    lifecycle.resolve(alert, note="fixed")

    assert [r["path"] for r in receiver.requests] == [
        "/workflows/abc/triggers/manual/paths/invoke?sig=x"
    ] * 2
    for index, colour in ((0, "Attention"), (1, "Good")):
        body = receiver.json(index)
        assert body["type"] == "message"
        (attachment,) = body["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        card = attachment["content"]
        assert card["type"] == "AdaptiveCard" and card["version"]
        assert [block["type"] for block in card["body"]] == ["TextBlock", "TextBlock"]
        assert card["body"][0]["color"] == colour
        assert card["actions"][0] == {
            "type": "Action.OpenUrl",
            "title": "Open alert",
            "url": f"{BASE_URL}/alerts/{alert.pk}/",
        }
    assert receiver.json(0)["attachments"][0]["content"]["body"][1]["text"] == alert.message
    assert receiver.json(1)["attachments"][0]["content"]["body"][0]["text"].startswith("[RESOLVED]")
    assert statuses(alert) == [("firing", "sent", 1), ("resolved", "sent", 1)]


def test_discord_gets_an_embed_that_pings_nobody(receiver):
    channel("discord", receiver.url("/api/webhooks/123/tok"))
    alert = fire()
    lifecycle.resolve(alert, note="fixed")

    firing, resolved = receiver.json(0), receiver.json(1)
    assert receiver.requests[0]["path"] == "/api/webhooks/123/tok"
    assert firing["allowed_mentions"] == {"parse": []}
    (embed,) = firing["embeds"]
    assert embed["title"] == f"[FIRING] [CRITICAL] {alert.alert_type} on Web web-1"
    # Discord shows "\_" and "\(" as "_" and "(": the rule's words arrive as written.
    assert embed["description"].startswith(r"cpu\_usage avg over 1m is 97 \(\> 90\)")
    assert embed["url"] == f"{BASE_URL}/alerts/{alert.pk}/"
    assert isinstance(embed["color"], int) and embed["timestamp"]
    assert resolved["embeds"][0]["title"].startswith("[RESOLVED]")
    assert resolved["embeds"][0]["color"] != embed["color"]


def test_telegram_sends_html_to_the_chat_through_the_bot_api(receiver):
    channel("telegram", receiver.url(""), secret="123456:ABC-token", config={"chat_id": "-100777"})
    alert = fire()
    lifecycle.resolve(alert, note="fixed")

    assert [r["path"] for r in receiver.requests] == ["/bot123456:ABC-token/sendMessage"] * 2
    firing, resolved = receiver.json(0), receiver.json(1)
    assert firing["chat_id"] == "-100777" and firing["parse_mode"] == "HTML"
    assert firing["text"].startswith(f"<b>[FIRING] [CRITICAL] {alert.alert_type} on Web web-1</b>")
    assert f'<a href="{BASE_URL}/alerts/{alert.pk}/">Open alert</a>' in firing["text"]
    assert resolved["text"].startswith("<b>[RESOLVED]")


def test_a_telegram_failure_does_not_store_the_bot_token(receiver):
    receiver.statuses = [401]
    channel("telegram", receiver.url(""), secret="123456:ABC-token", config={"chat_id": "42"})
    fire()

    note = Notification.objects.get()
    assert note.status == "gave_up" and "401" in note.error
    assert "ABC-token" not in note.error


def test_ntfy_publishes_json_to_the_topic_with_the_access_token(receiver):
    channel("ntfy", receiver.url(""), secret="tk_secret", config={"topic": "ops-alerts"})
    alert = fire()
    lifecycle.resolve(alert, note="fixed")

    assert [r["path"] for r in receiver.requests] == ["/", "/"]
    assert receiver.requests[0]["headers"]["Authorization"] == "Bearer tk_secret"
    firing, resolved = receiver.json(0), receiver.json(1)
    assert firing["topic"] == "ops-alerts"
    assert firing["title"] == f"[FIRING] [CRITICAL] {alert.alert_type} on Web web-1"
    assert firing["message"] == alert.message
    assert firing["priority"] == 5 and firing["click"] == f"{BASE_URL}/alerts/{alert.pk}/"
    assert {action["action"] for action in firing["actions"]} == {"view"}
    assert resolved["title"].startswith("[RESOLVED]") and resolved["priority"] == 3


def test_opsgenie_creates_then_closes_one_alert_per_fingerprint(receiver):
    channel("opsgenie", receiver.url(""), secret="genie-key-0001")
    alert = fire()
    lifecycle.resolve(alert, note="fixed")

    create, close = receiver.requests
    assert create["path"] == "/v2/alerts"
    assert create["headers"]["Authorization"] == "GenieKey genie-key-0001"
    body = receiver.json(0)
    assert body["alias"] == alert.fingerprint
    assert body["message"].startswith("[FIRING] [CRITICAL]") and len(body["message"]) <= 130
    assert body["priority"] == "P1" and body["entity"] == "Web web-1" and body["source"] == "Vigil"
    assert f"{BASE_URL}/alerts/{alert.pk}/" in body["description"]
    assert close["path"] == f"/v2/alerts/{alert.fingerprint}/close?identifierType=alias"
    assert receiver.json(1)["source"] == "Vigil"
    assert statuses(alert) == [("firing", "sent", 1), ("resolved", "sent", 1)]


@pytest.mark.parametrize(
    ("kind", "default"),
    [
        ("telegram", "https://api.telegram.org/botT/sendMessage"),
        ("ntfy", "https://ntfy.sh/"),
        ("opsgenie", "https://api.opsgenie.com/v2/alerts"),
    ],
)
def test_providers_with_a_public_api_default_to_it(kind, default):
    from alerts.notifications import message_for
    from alerts.transports import transport_for

    unset = NotificationChannel(kind=kind, secret="T", config={"chat_id": "1", "topic": "t"})
    assert transport_for(unset).url(message_for(None, "test")) == default


def test_slack_shows_agent_text_as_written_instead_of_pinging_or_linking(receiver, api):
    channel("slack", receiver.url("/services/T000/B000/XXX"))
    body = {
        "instanceId": "web-9",
        "alertType": "disk <!channel>",
        "severity": "high",
        "message": "<!here> see <https://evil.example|your bank> & more",
    }
    api.post("/api/v1/alerts", body)
    evaluate_rules()

    sent = receiver.json()
    section = sent["blocks"][1]["text"]["text"]
    assert section == "&lt;!here&gt; see &lt;https://evil.example|your bank&gt; &amp; more"
    assert "<!" not in sent["text"] and "&lt;!channel&gt;" in sent["text"]


def test_a_newline_in_an_instance_name_can_not_drop_or_forge_an_alert_email():
    channel("email", "ops@example.com")
    alert = fire(name="Web 1\nBcc: attacker@example.net")

    (message,) = mail.outbox
    assert "\n" not in message.subject and "\r" not in message.subject
    assert (
        message.subject
        == f"[FIRING] [CRITICAL] {alert.alert_type} on Web 1 Bcc: attacker@example.net"
    )
    assert message.recipients() == ["ops@example.com"]
    assert statuses(alert) == [("firing", "sent", 1)]


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://files.example.com/hook"])
def test_a_channel_stored_with_a_non_http_target_sends_nothing_there(target):
    channel("webhook", target)
    alert = fire()

    note = Notification.objects.get(alert=alert)
    assert note.status == "gave_up" and "only http(s) URLs" in note.error


def test_discord_shows_agent_text_as_written_instead_of_linking(receiver, api):
    channel("discord", receiver.url("/api/webhooks/123/tok"))
    body = {
        "instanceId": "web-9",
        "alertType": "disk",
        "severity": "high",
        "message": "[Reset your password](https://evil.example) **now** @everyone",
    }
    api.post("/api/v1/alerts", body)
    evaluate_rules()

    sent = receiver.json()
    description = sent["embeds"][0]["description"]
    assert description.startswith(
        r"\[Reset your password\]\(https://evil.example\) \*\*now\*\* @everyone"
    )
    assert sent["allowed_mentions"] == {"parse": []}


def test_a_telegram_notice_too_long_is_cut_where_its_html_stays_whole(receiver, api):
    channel("telegram", receiver.url(""), secret="1:tok", config={"chat_id": "7"})
    body = {
        "instanceId": "web-9",
        "alertType": "noisy",
        "severity": "high",
        "message": "<&>" * 3000,
    }
    api.post("/api/v1/alerts", body)
    evaluate_rules()

    text = receiver.json()["text"]
    assert len(text) <= 4096
    body_line = text.split("\n")[1]
    assert body_line.endswith("…") and body_line.startswith("&lt;&amp;&gt;&lt;")
    assert re.fullmatch(r"(&lt;|&amp;|&gt;)+…", body_line)
