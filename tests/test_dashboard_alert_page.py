"""The alert page ("why is this firing") and silencing alerts from the dashboard."""

import uuid
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from alerts.models import Alert, AlertRule, Notification, NotificationChannel, Silence
from instances.models import Instance
from tests import test_dashboard_pages
from tests.test_dashboard_pages import HTMX, add_samples

pytestmark = pytest.mark.django_db(transaction=True)

# The pages' logged-in operator.
user, logged_in = test_dashboard_pages.user, test_dashboard_pages.logged_in


@pytest.fixture
def firing(db):
    """A cpu rule firing on one web box, with two other web boxes in its scope."""
    now = timezone.now()
    rule = AlertRule.objects.create(
        name="High CPU",
        metric="cpu_usage",
        scope=AlertRule.Scope.TYPE,
        scope_value="web",
        warning_threshold=80,
        critical_threshold=90,
    )
    boxes = [
        Instance.objects.create(agent_id=f"web-{i}", name=f"Web {i}", type="web", last_seen=now)
        for i in range(3)
    ]
    outsider = Instance.objects.create(agent_id="db-1", name="Outsider", type="db", last_seen=now)
    for box, base in zip(boxes, (95, 30, 40), strict=True):
        add_samples(box, "cpu_usage", [base] * 20)
    add_samples(outsider, "cpu_usage", [50] * 20)
    alert = Alert.objects.create(
        instance=boxes[0],
        rule=rule,
        alert_type="High CPU",
        severity="critical",
        source=Alert.Source.RULE,
        message="cpu_usage avg over 1m is 95 (> 90)",
        value=95,
        pending_since=now - timedelta(minutes=4),
        created_at=now - timedelta(minutes=2),
    )
    channel = NotificationChannel.objects.create(
        name="Ops hook", kind="webhook", target="http://127.0.0.1:9/hook"
    )
    Notification.objects.create(
        dispatch=uuid.uuid4(),
        alert=alert,
        channel=channel,
        kind="firing",
        status="gave_up",
        attempt=3,
        response_code=503,
        error="receiver unavailable",
    )
    return {"rule": rule, "alert": alert, "boxes": boxes, "outsider": outsider}


def figure_of(html: str) -> dict:
    start = html.index('data-figure="') + len('data-figure="')
    raw = html[start : html.index('"', start)]
    return orjson.loads(raw.replace("&quot;", '"').replace("&amp;", "&").replace("&#x27;", "'"))


def test_alert_page_charts_the_rule_metric_with_threshold_bands_and_moments(logged_in, firing):
    response = logged_in.get(f"/alerts/{firing['alert'].pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Why is this firing" in html and "High CPU" in html
    figure = figure_of(html)
    names = [trace["name"] for trace in figure["data"]]
    assert names == ["other instances", "other instances", "Web 0"], "its own series on top"
    hovers = " ".join(trace["hovertemplate"] for trace in figure["data"])
    assert "Web 1" in hovers and "Web 2" in hovers and "Outsider" not in hovers
    shapes = figure["layout"]["shapes"]
    bands = {(s["y0"], s["y1"]) for s in shapes if s["type"] == "rect"}
    assert bands == {(90, 100), (80, 90)}
    marks = [s["name"] for s in shapes if s["type"] == "line"]
    assert marks == ["pending", "firing"]


def test_alert_page_shows_the_notification_log_and_earlier_episodes(logged_in, firing):
    alert = firing["alert"]
    earlier = Alert.objects.create(
        instance=alert.instance,
        rule=alert.rule,
        alert_type=alert.alert_type,
        source=Alert.Source.RULE,
        message="the day before",
        created_at=timezone.now() - timedelta(days=1),
        resolved_at=timezone.now() - timedelta(hours=23),
        status="resolved",
        fingerprint=alert.fingerprint,
    )

    html = logged_in.get(f"/alerts/{alert.pk}/").content.decode()

    assert "Ops hook" in html and "Gave up" in html and "HTTP 503" in html
    assert "receiver unavailable" in html
    assert f'href="/alerts/{earlier.pk}/"' in html


def test_alert_page_of_an_api_alert_says_no_rule_is_behind_it(logged_in, firing):
    alert = Alert.objects.create(instance=firing["outsider"], alert_type="DiskFull")

    response = logged_in.get(f"/alerts/{alert.pk}/")

    assert response.status_code == 200
    assert "no rule or metric is behind it" in response.content.decode()
    assert "data-figure" not in response.content.decode()


def test_silencing_an_alert_from_its_row_marks_it_and_stores_the_silence(logged_in, firing):
    alert = firing["alert"]

    response = logged_in.post(
        f"/alerts/{alert.pk}/silence",
        {"duration": "24h", "comment": "kernel upgrade", "layout": "row"},
        headers=HTMX,
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert f'id="alert-row-{alert.pk}"' in html and "silenced" in html and "Unsilence" in html
    silence = Silence.objects.get()
    assert silence.rule == firing["rule"] and silence.instance == alert.instance
    assert silence.comment == "kernel upgrade"
    assert timedelta(hours=23) < silence.ends_at - silence.starts_at <= timedelta(hours=24)
    alert.refresh_from_db()
    assert alert.silenced and alert.status == Alert.Status.ACTIVE


def test_unsilencing_ends_the_covering_silence_now(logged_in, firing):
    alert = firing["alert"]
    logged_in.post(f"/alerts/{alert.pk}/silence", {"duration": "1h"})

    response = logged_in.post(f"/alerts/{alert.pk}/unsilence", {"layout": "detail"}, headers=HTMX)

    assert response.status_code == 200
    assert 'id="alert-summary"' in response.content.decode()
    assert not Silence.objects.active().exists()
    alert.refresh_from_db()
    assert not alert.silenced


def test_acknowledging_from_the_alert_page_answers_its_status_panel(logged_in, firing):
    alert = firing["alert"]

    response = logged_in.post(
        f"/alerts/{alert.pk}/acknowledge", {"note": "looking", "layout": "detail"}, headers=HTMX
    )

    html = response.content.decode()
    assert 'id="alert-summary"' in html and "acknowledged" in html and "looking" in html
    alert.refresh_from_db()
    assert alert.status == Alert.Status.ACKNOWLEDGED


def test_silencing_and_unsilencing_from_the_dashboard_are_audited(logged_in, user, firing):
    alert = firing["alert"]

    logged_in.post(f"/alerts/{alert.pk}/silence", {"duration": "1h", "comment": "deploy"})
    logged_in.post(f"/alerts/{alert.pk}/unsilence")

    silence = Silence.objects.get()
    events = AuditEvent.objects.filter(target_id=str(silence.pk)).order_by("created", "id")
    assert [(event.action, event.actor) for event in events] == [
        ("silence.create", user),
        ("silence.end", user),
    ]


@pytest.fixture
def past_episode(firing):
    """The firing alert's earlier, resolved episode of the same problem."""
    alert = firing["alert"]
    return Alert.objects.create(
        instance=alert.instance,
        rule=alert.rule,
        alert_type=alert.alert_type,
        source=Alert.Source.RULE,
        created_at=timezone.now() - timedelta(days=1),
        resolved_at=timezone.now() - timedelta(hours=23),
        status=Alert.Status.RESOLVED,
        fingerprint=alert.fingerprint,
    )


def test_acknowledging_a_past_episode_while_a_newer_one_is_open_is_a_conflict(
    logged_in, firing, past_episode
):
    response = logged_in.post(
        f"/alerts/{past_episode.pk}/acknowledge", {"layout": "row"}, headers=HTMX
    )

    assert response.status_code == 409
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="alert-row-{past_episode.pk}"')
    assert "A newer episode of this alert is open: act on that one." in html
    assert f'href="/alerts/{firing["alert"].pk}/"' in html
    past_episode.refresh_from_db()
    assert (past_episode.status, past_episode.acknowledged_by) == (Alert.Status.RESOLVED, None)
    assert not AuditEvent.objects.filter(action="alert.acknowledge").exists()


def test_the_conflict_without_htmx_shows_the_past_episode_page(logged_in, firing, past_episode):
    response = logged_in.post(f"/alerts/{past_episode.pk}/acknowledge")

    assert response.status_code == 409
    html = response.content.decode()
    assert "Why is this firing" in html
    assert "A newer episode of this alert is open: act on that one." in html
    past_episode.refresh_from_db()
    assert past_episode.status == Alert.Status.RESOLVED
