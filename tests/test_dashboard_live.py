"""The live dashboard's websockets, through the real ASGI application, Redis channel layer and
ingest API."""

import asyncio
import re
import time

import orjson
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.permissions import Role
from alerts.events import ALERTS_GROUP
from alerts.models import Alert
from dashboard import live
from instances.events import INSTANCES_GROUP
from instances.models import Instance

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = b"http://127.0.0.1"


def session_cookie_of(client, user) -> bytes:
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.fixture
def session_cookie(client, user_with_role):
    """An Operator's session: the tests here watch pages and act on alerts."""
    return session_cookie_of(client, user_with_role(Role.OPERATOR, "watcher"))


def socket(path, cookie=None, origin=ORIGIN):
    # Imported here, not at collection: building the app loads the static files middleware,
    # which must see the test settings (tests/conftest.py) first.
    from config.asgi import application

    headers = [(b"origin", origin), (b"host", b"127.0.0.1")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, path, headers=headers)


def ingest(api, agent_id, name, value=42.0):
    body = {
        "instance": {"agent_id": agent_id, "name": name, "type": "vm", "region": "fra1"},
        "samples": [{"name": "cpu_usage", "value": value, "unit": "percent"}],
    }
    response = api.post("/api/v1/ingest", body)
    assert response.status_code == 202, response.content
    return response.json()["instance_id"]


async def receive_all(communicator, seconds):
    """Every message the socket got within ``seconds`` (a receive timeout would cancel it)."""
    await asyncio.sleep(seconds)
    messages = []
    while not await communicator.receive_nothing(timeout=0.05):
        messages.append(await communicator.receive_from())
    return messages


def test_ingested_sample_reaches_the_overview_socket_as_a_fragment(api, session_cookie):
    async def scenario():
        communicator = socket("/ws/overview/", session_cookie)
        connected, _ = await communicator.connect()
        assert connected
        await communicator.send_to(text_data=orjson.dumps({"filters": ""}).decode())
        await sync_to_async(ingest)(api, "fresh-box", "Fresh Box")
        html = await communicator.receive_from(timeout=5)
        await communicator.disconnect()
        return html

    html = async_to_sync(scenario)()
    assert "Fresh Box" in html
    assert '<div id="instance-grid" hx-swap-oob="true">' in html
    assert '<section id="summary" class="summary" aria-label="Summary" hx-swap-oob="true">' in html


def test_overview_socket_sends_only_updated_cards_once_the_grid_is_known(api, session_cookie):
    async def scenario():
        communicator = socket("/ws/overview/", session_cookie)
        assert (await communicator.connect())[0]
        await sync_to_async(ingest)(api, "box-a", "Box A")
        first = await communicator.receive_from(timeout=5)
        await sync_to_async(ingest)(api, "box-a", "Box A", 43.0)
        second = await communicator.receive_from(timeout=5)
        await communicator.disconnect()
        return first, second

    first, second = async_to_sync(scenario)()
    box = Instance.objects.get(agent_id="box-a")
    assert 'id="instance-grid"' in first
    assert 'id="instance-grid"' not in second
    assert f'id="instance-{box.pk}"' in second and "Box A" in second


def test_grid_filters_sent_by_the_page_apply_to_pushes(api, session_cookie):
    async def scenario():
        communicator = socket("/ws/overview/", session_cookie)
        assert (await communicator.connect())[0]
        await communicator.send_to(text_data=orjson.dumps({"filters": "region=nowhere"}).decode())
        await sync_to_async(ingest)(api, "box-b", "Box B")
        html = await communicator.receive_from(timeout=5)
        await communicator.disconnect()
        return html

    html = async_to_sync(scenario)()
    assert "No instance matches these filters." in html
    assert 'id="instance-' not in html.replace('id="instance-grid"', "")


def test_anonymous_socket_is_refused():
    async def scenario():
        communicator = socket("/ws/overview/")
        connected, code = await communicator.connect()
        return connected, code

    assert async_to_sync(scenario)() == (False, 4401)


def test_socket_from_another_origin_is_refused(session_cookie):
    async def scenario():
        communicator = socket("/ws/overview/", session_cookie, origin=b"https://evil.example")
        connected, _ = await communicator.connect()
        return connected

    assert async_to_sync(scenario)() is False


def test_a_burst_of_a_hundred_updates_makes_at_most_two_pushes(api, session_cookie):
    instance_id = ingest(api, "bursty", "Bursty")

    async def scenario():
        communicator = socket("/ws/overview/", session_cookie)
        assert (await communicator.connect())[0]
        layer = get_channel_layer()
        event = {"type": "instances.updated", "instance_ids": [instance_id]}
        for _ in range(100):
            await layer.group_send(INSTANCES_GROUP, event)
        messages = await receive_all(communicator, 3)
        await communicator.disconnect()
        return messages

    messages = async_to_sync(scenario)()
    assert 1 <= len(messages) <= 2
    assert "Bursty" in messages[0]


def test_the_previous_releases_instance_updated_event_is_pushed_as_the_new_one(api, session_cookie):
    # During a rolling deploy a process of the previous release still sends one instance.updated
    # per instance to the instances group, where this release sends instances.updated.
    instance_id = ingest(api, "old-sender", "Old Sender")
    old_event = {"type": "instance.updated", "instance_id": instance_id, "samples": 1}
    new_event = {"type": "instances.updated", "instance_ids": [instance_id]}

    async def scenario():
        communicator = socket("/ws/overview/", session_cookie)
        assert (await communicator.connect())[0]
        layer = get_channel_layer()
        pushes = []
        # The first push carries the whole grid, the later ones the cards they note.
        for event in (new_event, old_event, new_event):
            await layer.group_send(INSTANCES_GROUP, event)
            pushes.append(await communicator.receive_from(timeout=5))
        await communicator.disconnect()
        return pushes

    _, after_old, after_new = async_to_sync(scenario)()
    assert f'id="instance-{instance_id}"' in after_old and "Old Sender" in after_old
    # The same card, but how long ago the instance was last seen, said a second apart.
    relative_times = re.compile(r"<time [^>]*>[^<]*</time>")
    assert relative_times.sub("", after_old) == relative_times.sub("", after_new)


def test_a_hundred_ingest_posts_are_pushed_at_most_once_a_second(api, session_cookie):
    ingest(api, "steady", "Steady")

    async def scenario():
        communicator = socket("/ws/overview/", session_cookie)
        assert (await communicator.connect())[0]
        started = time.monotonic()
        for value in range(100):
            await sync_to_async(ingest)(api, "steady", "Steady", float(value))
        elapsed = time.monotonic() - started
        messages = await receive_all(communicator, 1.5)
        await communicator.disconnect()
        return messages, elapsed

    messages, elapsed = async_to_sync(scenario)()
    assert 1 <= len(messages) <= int(elapsed) + 2


def test_instance_socket_pushes_new_chart_points_and_status(api, session_cookie):
    instance_id = ingest(api, "charted", "Charted", 10.0)
    since = int(time.time()) - 1

    async def scenario():
        communicator = socket(f"/ws/instances/{instance_id}/?since={since}", session_cookie)
        assert (await communicator.connect())[0]
        await sync_to_async(ingest)(api, "charted", "Charted", 77.5)
        html = await communicator.receive_from(timeout=5)
        await communicator.disconnect()
        return html

    html = async_to_sync(scenario)()
    assert 'id="instance-status"' in html and 'id="instance-alerts"' in html
    start = html.index('data-points="') + len('data-points="')
    points = orjson.loads(html[start : html.index('"', start)].replace("&quot;", '"'))
    [values] = points.values()
    assert [value for _, value in values][-1] == 77.5


def test_sockets_get_times_in_their_user_s_zone(api, session_cookie):
    instance_id = ingest(api, "zoned", "Zoned", 10.0)

    async def pushed(cookie):
        communicator = socket(f"/ws/instances/{instance_id}/", cookie)
        assert (await communicator.connect())[0]
        return communicator

    async def scenario():
        tokyo = await pushed(session_cookie + b"; vigil_tz=Asia/Tokyo")
        utc = await pushed(session_cookie)
        await sync_to_async(ingest)(api, "zoned", "Zoned", 11.0)
        htmls = [await tokyo.receive_from(timeout=5), await utc.receive_from(timeout=5)]
        for communicator in (tokyo, utc):
            await communicator.disconnect()
        return htmls

    tokyo, utc = async_to_sync(scenario)()
    registered = re.compile(r"<dt>Registered</dt><dd>[\d-]+ [\d:]+ (\w+)</dd>")
    assert registered.search(tokyo)[1] == "JST"
    assert registered.search(utc)[1] == "UTC"


def test_instance_socket_for_a_deleted_instance_closes(api, session_cookie):
    instance_id = ingest(api, "doomed", "Doomed")

    async def scenario():
        communicator = socket(f"/ws/instances/{instance_id}/", session_cookie)
        assert (await communicator.connect())[0]
        await sync_to_async(Instance.objects.filter(pk=instance_id).delete)()
        layer = get_channel_layer()
        await layer.group_send(
            f"instance.{instance_id}",
            {"type": "instance.updated", "instance_id": instance_id, "samples": 0},
        )
        output = await communicator.receive_output(timeout=5)
        return output

    assert async_to_sync(scenario)() == {"type": "websocket.close", "code": 4404}


def test_acknowledging_an_alert_reaches_the_overview_and_instance_sockets(
    api, client, session_cookie
):
    instance_id = ingest(api, "alerting", "Alerting Box")
    alert = Alert.objects.create(
        instance_id=instance_id, alert_type="HighCpu", severity="critical", message="hot"
    )

    async def scenario():
        overview_socket = socket("/ws/overview/", session_cookie)
        instance_socket = socket(f"/ws/instances/{instance_id}/", session_cookie)
        assert (await overview_socket.connect())[0]
        assert (await instance_socket.connect())[0]
        response = await sync_to_async(client.post)(
            f"/alerts/{alert.pk}/acknowledge", {"note": "on it"}
        )
        assert response.status_code == 302
        pushed = (
            await overview_socket.receive_from(timeout=5),
            await instance_socket.receive_from(timeout=5),
        )
        await overview_socket.disconnect()
        await instance_socket.disconnect()
        return pushed

    overview_html, instance_html = async_to_sync(scenario)()
    for html in (overview_html, instance_html):
        assert f'id="alert-{alert.pk}"' in html
        assert '<span class="badge alert-acknowledged">acknowledged</span>' in html
    assert 'id="summary"' in overview_html
    assert 'id="instance-status"' in instance_html


def test_an_alert_of_another_instance_is_not_pushed_to_an_instance_socket(api, session_cookie):
    watched = ingest(api, "watched", "Watched")
    other = ingest(api, "other", "Other")

    async def scenario():
        communicator = socket(f"/ws/instances/{watched}/", session_cookie)
        assert (await communicator.connect())[0]
        await get_channel_layer().group_send(
            ALERTS_GROUP,
            {"type": "alert.changed", "alert_id": "x", "instance_id": other, "status": "active"},
        )
        messages = await receive_all(communicator, 1.5)
        await communicator.disconnect()
        return messages

    assert async_to_sync(scenario)() == []


def test_alerts_changed_together_are_pushed_to_the_overview_and_their_instances_only(
    api, session_cookie
):
    firing = ingest(api, "firing", "Firing")
    quiet = ingest(api, "quiet", "Quiet")
    alert = Alert.objects.create(
        instance_id=firing, alert_type="HighCpu", severity="critical", message="hot"
    )

    async def scenario():
        sockets = {
            "overview": socket("/ws/overview/", session_cookie),
            "firing": socket(f"/ws/instances/{firing}/", session_cookie),
            "quiet": socket(f"/ws/instances/{quiet}/", session_cookie),
        }
        for communicator in sockets.values():
            assert (await communicator.connect())[0]
        await get_channel_layer().group_send(
            ALERTS_GROUP, {"type": "alerts.changed", "instance_ids": [firing]}
        )
        pushed = {name: await receive_all(one, 1.5) for name, one in sockets.items()}
        for communicator in sockets.values():
            await communicator.disconnect()
        return pushed

    pushed = async_to_sync(scenario)()
    assert f'id="alert-{alert.pk}"' in pushed["overview"][0]
    assert f'id="alert-{alert.pk}"' in pushed["firing"][0]
    assert pushed["quiet"] == []


def test_many_overview_sockets_share_one_render_per_push_window(api, session_cookie):
    instance_id = ingest(api, "shared", "Shared")
    sockets = 20

    async def scenario():
        communicators = [socket("/ws/overview/", session_cookie) for _ in range(sockets)]
        for communicator in communicators:
            assert (await communicator.connect())[0]
        before = live.render_counts["overview"]
        event = {"type": "instances.updated", "instance_ids": [instance_id]}
        for _ in range(3):
            for _ in range(10):
                await get_channel_layer().group_send(INSTANCES_GROUP, event)
            await asyncio.sleep(1.2)
        received = [await receive_all(communicator, 0) for communicator in communicators]
        await asyncio.sleep(1.2)
        received = [
            first + await receive_all(communicator, 0)
            for first, communicator in zip(received, communicators, strict=True)
        ]
        renders = live.render_counts["overview"] - before
        for communicator in communicators:
            await communicator.disconnect()
        return received, renders

    received, renders = async_to_sync(scenario)()
    pushes = {len(messages) for messages in received}
    assert len(pushes) == 1, "every socket got the same pushes"
    [windows] = pushes
    assert 2 <= windows <= 4
    assert renders == windows
    assert all("Shared" in messages[0] for messages in received)


def test_a_viewer_socket_gets_the_alert_without_its_controls(api, user_with_role, session_cookie):
    instance_id = ingest(api, "alerting", "Alerting Box")
    alert = Alert.objects.create(
        instance_id=instance_id, alert_type="HighCpu", severity="critical", message="hot"
    )
    viewer_cookie = session_cookie_of(Client(), user_with_role(Role.VIEWER, "victor"))

    async def scenario():
        sockets = {
            "viewer overview": socket("/ws/overview/", viewer_cookie),
            "viewer instance": socket(f"/ws/instances/{instance_id}/", viewer_cookie),
            "operator overview": socket("/ws/overview/", session_cookie),
        }
        for communicator in sockets.values():
            assert (await communicator.connect())[0]
        await get_channel_layer().group_send(
            ALERTS_GROUP,
            {"type": "alert.changed", "alert_id": str(alert.pk), "instance_id": instance_id},
        )
        pushed = {name: await one.receive_from(timeout=5) for name, one in sockets.items()}
        for communicator in sockets.values():
            await communicator.disconnect()
        return pushed

    pushed = async_to_sync(scenario)()
    acknowledge = f'hx-post="/alerts/{alert.pk}/acknowledge"'
    for name, html in pushed.items():
        assert f'id="alert-{alert.pk}"' in html, name
        assert (acknowledge in html) == name.startswith("operator"), name
