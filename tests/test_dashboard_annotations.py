"""Annotations: deploy markers posted with a manage-scoped token (the other scopes and no token
are refused), listed by tag, and drawn with the alert episodes on a dashboard's time charts —
only those whose tags the dashboard asks for."""

from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

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
    assert span["type"] == "rect" and span["fillcolor"] == "#d23f3f"


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
