"""Annotations: deploy markers posted with a manage-scoped token (the other scopes and no token
are refused), listed by tag, and drawn with the alert episodes on a dashboard's time charts —
only those whose tags the dashboard asks for."""

import zoneinfo
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.permissions import Role
from alerts.models import Alert
from dashboard.models import Annotation, Dashboard
from ingestion.models import IngestToken
from instances.models import Instance
from tests.test_dashboard_boards import CPU, HTMX, STEP, board_with, operator  # noqa: F401
from tests.test_dashboard_pages import add_samples

pytestmark = pytest.mark.django_db

DEPLOY = {"text": "Deployed api 2.4.1", "tags": ["deploy", "api"]}


def bearer(*scopes: str) -> dict:
    return {"Authorization": f"Bearer {IngestToken.issue('deployer', list(scopes))[1]}"}


def post(client, body: dict, headers: dict):
    return client.post(
        "/api/v1/annotations", orjson.dumps(body), content_type="application/json", headers=headers
    )


def test_a_manage_token_posts_a_deploy_marker(client):
    response = post(client, DEPLOY, bearer("manage"))

    assert response.status_code == 201, response.content
    annotation = Annotation.objects.get()
    assert (annotation.text, annotation.tags, annotation.posted_by) == (
        "Deployed api 2.4.1",
        ["deploy", "api"],
        "deployer",
    )
    assert timezone.now() - annotation.time < timedelta(minutes=1)
    assert response.json()["id"] == str(annotation.pk)


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"scopes": ["ingest"]}, 403), ({"scopes": ["read"]}, 403)],
)
def test_posting_an_annotation_needs_the_manage_scope(client, headers, status):
    sent = bearer(*headers["scopes"]) if headers else {}

    assert post(client, DEPLOY, sent).status_code == status
    assert not Annotation.objects.exists()


def test_a_span_ending_before_it_starts_is_refused(client):
    now = timezone.now()
    body = {**DEPLOY, "time": now.isoformat(), "timeEnd": (now - timedelta(hours=1)).isoformat()}

    response = post(client, body, bearer("manage"))

    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "timeEnd"
    assert not Annotation.objects.exists()


def test_annotations_are_listed_by_tag_with_a_read_token(client):
    Annotation.objects.create(time=timezone.now(), text="api deploy", tags=["deploy", "api"])
    Annotation.objects.create(time=timezone.now(), text="db migration", tags=["db"])

    response = client.get("/api/v1/annotations", {"tag": "api"}, headers=bearer("read"))

    assert response.status_code == 200
    assert [item["text"] for item in response.json()["items"]] == ["api deploy"]


@pytest.fixture
def charted_host(db):
    web = Instance.objects.create(agent_id="web-1", name="Web 1")
    add_samples(web, "cpu_usage", [40.0] * 41, step=STEP)
    return web


def chart_of(client, board: Dashboard) -> dict:
    panel = board.panels.get()
    response = client.get(f"/dashboards/{board.pk}/panels/{panel.pk}/", headers=HTMX)
    return orjson.loads(response.context["shown"].figure)


def test_a_time_chart_marks_the_annotations_its_dashboard_asks_for(operator, charted_host):  # noqa: F811
    now = timezone.now()
    Annotation.objects.create(time=now - timedelta(minutes=3), text="api 2.4.1", tags=["api"])
    Annotation.objects.create(time=now - timedelta(minutes=2), text="db vacuum", tags=["db"])
    board = board_with({"type": "timeseries", "title": "CPU", "queries": [CPU]})
    board.annotation_tags = ["api"]
    board.save()

    layout = chart_of(operator, board)["layout"]

    assert [label["hovertext"] for label in layout["annotations"]] == ["api 2.4.1 [api]"]
    assert [shape["type"] for shape in layout["shapes"]] == ["line"]


def test_a_time_chart_shades_the_alert_episodes_of_its_instances(operator, charted_host):  # noqa: F811
    now = timezone.now()
    Alert.objects.create(
        instance=charted_host,
        alert_type="HighCpu",
        severity=Alert.Severity.CRITICAL,
        fired_at=now - timedelta(minutes=5),
        resolved_at=now - timedelta(minutes=1),
        status=Alert.Status.RESOLVED,
    )
    other = Instance.objects.create(agent_id="db-1", name="DB 1")
    Alert.objects.create(instance=other, alert_type="DiskFull", fired_at=now - timedelta(minutes=4))
    board = board_with({"type": "timeseries", "title": "CPU", "queries": [CPU]})

    layout = chart_of(operator, board)["layout"]

    assert [label["hovertext"] for label in layout["annotations"]] == [
        "HighCpu on Web 1 (critical)"
    ]
    (span,) = layout["shapes"]
    assert span["type"] == "rect" and span["fillcolor"] == "var(--unhealthy)"


def test_annotation_tags_are_part_of_the_dashboard_s_settings_and_export(operator):  # noqa: F811
    board = board_with({"type": "text", "text": "hi"})

    response = operator.post(
        f"/dashboards/{board.pk}/edit/",
        {
            "title": "Web tier",
            "tags": "web",
            "time_range": "1h",
            "refresh": "off",
            "variables": "[]",
            "annotation_tags": "deploy, api",
        },
    )

    assert response.status_code == 302
    board.refresh_from_db()
    assert board.annotation_tags == ["deploy", "api"]
    assert board.to_dict()["annotation_tags"] == ["deploy", "api"]


def delete(client, annotation: Annotation, headers: dict):
    return client.delete(f"/api/v1/annotations/{annotation.pk}", headers=headers)


def test_a_manage_token_deletes_an_annotation(client):
    annotation = Annotation.objects.create(time=timezone.now(), text="api deploy")

    response = delete(client, annotation, bearer("manage"))

    assert response.status_code == 204
    assert not Annotation.objects.exists()
    assert AuditEvent.objects.get(action="annotation.delete").actor_label == "deployer"


@pytest.mark.parametrize(("scopes", "status"), [((), 401), (("read",), 403), (("ingest",), 403)])
def test_deleting_an_annotation_needs_the_manage_scope(client, scopes, status):
    annotation = Annotation.objects.create(time=timezone.now(), text="api deploy")

    assert delete(client, annotation, bearer(*scopes) if scopes else {}).status_code == status
    assert Annotation.objects.exists()


def test_deleting_an_annotation_that_is_not_there_is_a_404(client):
    gone = Annotation.objects.create(time=timezone.now(), text="api deploy")
    gone.delete()

    assert delete(client, gone, bearer("manage")).status_code == 404
    assert client.delete("/api/v1/annotations/nope", headers=bearer("manage")).status_code == 404


def test_the_annotations_page_lists_those_its_dashboard_marks_newest_first(operator):  # noqa: F811
    now = timezone.now()
    Annotation.objects.create(time=now - timedelta(hours=2), text="api 2.4.0", tags=["api"])
    Annotation.objects.create(time=now - timedelta(hours=1), text="api 2.4.1", tags=["api"])
    Annotation.objects.create(time=now - timedelta(hours=1), text="db vacuum", tags=["db"])
    Annotation.objects.create(time=now - timedelta(days=9), text="api 2.3.0", tags=["api"])
    board = board_with({"type": "text", "text": "hi"})
    board.annotation_tags = ["api"]
    board.save()

    page = operator.get(f"/dashboards/{board.pk}/annotations/")
    longer = operator.get(f"/dashboards/{board.pk}/annotations/", {"range": "30d"})

    assert [a.text for a in page.context["annotations"]] == ["api 2.4.1", "api 2.4.0"]
    assert [a.text for a in longer.context["annotations"]] == [
        "api 2.4.1",
        "api 2.4.0",
        "api 2.3.0",
    ]
    assert "Add annotation" in page.text and "Delete" in page.text
    assert (
        f'href="/dashboards/{board.pk}/annotations/"'
        in operator.get(f"/dashboards/{board.pk}/").text
    )


def test_an_operator_adds_an_annotation_in_their_time_zone_and_the_chart_marks_it(
    operator,  # noqa: F811
    charted_host,
):
    board = board_with({"type": "timeseries", "title": "CPU", "queries": [CPU]})
    board.annotation_tags = ["deploy"]
    board.save()
    operator.cookies["vigil_tz"] = "Asia/Tokyo"
    wall_time = timezone.localtime(
        timezone.now() - timedelta(minutes=2), zoneinfo.ZoneInfo("Asia/Tokyo")
    )

    response = operator.post(
        f"/dashboards/{board.pk}/annotations/new",
        {"time": wall_time.strftime("%Y-%m-%dT%H:%M"), "text": "web 3.0", "tags": "deploy, web"},
    )

    assert response.status_code == 302
    added = Annotation.objects.get()
    assert (added.text, added.tags, added.posted_by) == ("web 3.0", ["deploy", "web"], "operator")
    assert added.time == wall_time.replace(second=0, microsecond=0)
    assert AuditEvent.objects.filter(action="annotation.create").exists()
    layout = chart_of(operator, board)["layout"]
    assert [label["hovertext"] for label in layout["annotations"]] == ["web 3.0 [deploy, web]"]


def test_an_annotation_without_text_is_refused_and_the_form_says_why(operator):  # noqa: F811
    board = board_with({"type": "text", "text": "hi"})

    response = operator.post(
        f"/dashboards/{board.pk}/annotations/new", {"time": "2026-01-01T10:00", "text": ""}
    )

    assert response.status_code == 400
    assert "text" in response.context["form"].errors
    assert not Annotation.objects.exists()


def test_an_operator_deletes_an_annotation_from_the_page(operator):  # noqa: F811
    board = board_with({"type": "text", "text": "hi"})
    annotation = Annotation.objects.create(time=timezone.now(), text="api deploy")

    response = operator.post(f"/dashboards/{board.pk}/annotations/{annotation.pk}/delete")

    assert response.status_code == 302
    assert not Annotation.objects.exists()
    assert AuditEvent.objects.filter(action="annotation.delete").exists()


def test_a_viewer_sees_the_annotations_without_controls_and_may_not_change_them(
    client, user_with_role
):
    client.force_login(user_with_role(Role.VIEWER, "viewer"))
    board = board_with({"type": "text", "text": "hi"})
    annotation = Annotation.objects.create(time=timezone.now(), text="api deploy")

    page = client.get(f"/dashboards/{board.pk}/annotations/")
    added = client.post(
        f"/dashboards/{board.pk}/annotations/new", {"time": "2026-01-01T10:00", "text": "x"}
    )
    deleted = client.post(f"/dashboards/{board.pk}/annotations/{annotation.pk}/delete")

    assert page.status_code == 200 and "api deploy" in page.text
    assert "Add annotation" not in page.text and "Delete" not in page.text
    assert (added.status_code, deleted.status_code) == (403, 403)
    assert list(Annotation.objects.values_list("text", flat=True)) == ["api deploy"]


def test_the_instance_page_charts_mark_its_alert_episodes_and_the_annotations(
    operator,  # noqa: F811
    charted_host,
):
    now = timezone.now()
    Alert.objects.create(
        instance=charted_host,
        alert_type="HighCpu",
        severity=Alert.Severity.WARNING,
        fired_at=now - timedelta(minutes=5),
    )
    other = Instance.objects.create(agent_id="db-1", name="DB 1")
    Alert.objects.create(instance=other, alert_type="DiskFull", fired_at=now - timedelta(minutes=4))
    Annotation.objects.create(time=now - timedelta(minutes=2), text="api 2.4.1", tags=["api"])
    counter = [float(i * 100) for i in range(41)]
    add_samples(charted_host, "requests_total", counter, "", None, STEP)

    charts = operator.get(f"/instances/{charted_host.pk}/").context["charts"]

    marked = {
        chart.name: [
            label["hovertext"] for label in orjson.loads(chart.figure)["layout"]["annotations"]
        ]
        for chart in charts
    }
    expected = ["HighCpu on Web 1 (warning)", "api 2.4.1 [api]"]
    assert marked == {"cpu_usage": expected, "requests_total": expected}
