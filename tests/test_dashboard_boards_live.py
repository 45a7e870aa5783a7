"""A dashboard's socket, through the real ASGI application, Redis channel layer and ingest API:
each push carries every time-series panel's value now, by line name, for the page's variables
and range; a fixed range and a deleted dashboard get nothing more."""

import html
import re

import orjson
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from dashboard.models import Dashboard
from instances.events import INSTANCES_GROUP
from tests.test_dashboard_boards import board_with
from tests.test_dashboard_live import ingest, receive_all, session_cookie, socket  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

POINTS = re.compile(r'<div id="board-points" hidden hx-swap-oob="true" data-points="([^"]*)">')
HOST_VARIABLE = {"name": "host", "kind": "query", "query": "label_values(cpu_usage, instance)"}


def pushed_points(message: str) -> dict:
    found = POINTS.search(message)
    assert found, message
    return orjson.loads(html.unescape(found[1]))


def board_of_cpu() -> Dashboard:
    return board_with(
        {
            "type": "timeseries",
            "title": "CPU",
            "queries": [{"expr": 'cpu_usage{instance="$host"}', "legend": "{{instance}}"}],
        },
        {"type": "stat", "title": "CPU now", "queries": [{"expr": "cpu_usage"}]},
        variables=[HOST_VARIABLE],
    )


def test_an_ingested_sample_extends_the_time_series_panel_of_the_chosen_host(
    api,
    session_cookie,  # noqa: F811
):
    ingest(api, "web-1", "Web 1", 10.0)
    ingest(api, "web-2", "Web 2", 20.0)
    board = board_of_cpu()
    chart = board.panels.get(type="timeseries")

    async def scenario():
        communicator = socket(f"/ws/dashboards/{board.pk}/?var-host=web-2&range=1h", session_cookie)
        assert (await communicator.connect())[0]
        await sync_to_async(ingest)(api, "web-2", "Web 2", 77.0)
        message = await communicator.receive_from(timeout=5)
        await communicator.disconnect()
        return message

    points = pushed_points(async_to_sync(scenario)())
    assert list(points) == [str(chart.pk)]
    assert list(points[str(chart.pk)]) == ["web-2"]
    assert points[str(chart.pk)]["web-2"][1] == 77.0


def test_the_previous_releases_instance_updated_event_extends_the_panels_too(
    api,
    session_cookie,  # noqa: F811
):
    # During a rolling deploy a process of the previous release still sends one instance.updated
    # per instance to the instances group, where this release sends instances.updated.
    instance_id = ingest(api, "web-2", "Web 2", 20.0)
    board = board_of_cpu()
    chart = board.panels.get(type="timeseries")
    old_event = {"type": "instance.updated", "instance_id": instance_id, "samples": 1}

    async def scenario():
        communicator = socket(f"/ws/dashboards/{board.pk}/?var-host=web-2&range=1h", session_cookie)
        assert (await communicator.connect())[0]
        await get_channel_layer().group_send(INSTANCES_GROUP, old_event)
        first = await communicator.receive_from(timeout=5)
        # Still open: the next ingest is pushed as well.
        await sync_to_async(ingest)(api, "web-2", "Web 2", 77.0)
        second = await communicator.receive_from(timeout=5)
        await communicator.disconnect()
        return first, second

    first, second = (pushed_points(message) for message in async_to_sync(scenario)())
    assert first[str(chart.pk)]["web-2"][1] == 20.0
    assert second[str(chart.pk)]["web-2"][1] == 77.0


def test_a_fixed_range_is_not_extended(api, session_cookie):  # noqa: F811
    board = board_of_cpu()

    async def scenario():
        path = (
            f"/ws/dashboards/{board.pk}/?range=custom&start=2026-01-01T00:00&end=2026-01-01T01:00"
        )
        communicator = socket(path, session_cookie)
        assert (await communicator.connect())[0]
        await sync_to_async(ingest)(api, "web-1", "Web 1", 55.0)
        messages = await receive_all(communicator, 1.5)
        await communicator.disconnect()
        return messages

    assert async_to_sync(scenario)() == []


def test_the_socket_of_a_deleted_dashboard_closes(api, session_cookie):  # noqa: F811
    board = board_of_cpu()

    async def scenario():
        communicator = socket(f"/ws/dashboards/{board.pk}/", session_cookie)
        assert (await communicator.connect())[0]
        await sync_to_async(Dashboard.objects.filter(pk=board.pk).delete)()
        await sync_to_async(ingest)(api, "web-1", "Web 1", 55.0)
        closed = await communicator.receive_output(timeout=5)
        await communicator.disconnect()
        return closed

    assert async_to_sync(scenario)() == {"type": "websocket.close", "code": 4404}


def test_an_anonymous_dashboard_socket_is_refused():
    board = board_of_cpu()

    async def scenario():
        return await socket(f"/ws/dashboards/{board.pk}/").connect()

    assert async_to_sync(scenario)() == (False, 4401)
