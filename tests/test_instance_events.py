"""Announcing new instance data on the channel layer: coalesced while a send gathers or is in
flight, never failing ingest when Redis is down."""

import asyncio
import logging
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer

from instances import events
from instances.events import (
    INSTANCES_GROUP,
    instance_group,
    publish_instance_updated,
    wait_for_publishes,
)
from instances.models import Instance

pytestmark = pytest.mark.django_db(transaction=True)


async def listener(*groups):
    layer = get_channel_layer()
    channel = await layer.new_channel()
    for group in groups:
        await layer.group_add(group, channel)
    return channel


async def receive(channel, seconds=2.0):
    return await asyncio.wait_for(get_channel_layer().receive(channel), seconds)


def test_publishes_during_a_send_in_flight_go_out_as_one_event_listing_them_all():
    first, *others = [str(uuid.uuid4()) for _ in range(4)]

    async def scenario():
        channel = await listener(INSTANCES_GROUP)
        # On this loop, as in a server: handed over, not sent before we yield.
        publish_instance_updated(first, 10)
        while events._publisher.pending:
            await asyncio.sleep(0)
        # The send of ``first`` is under way (it waits on Redis): these wait for it.
        assert events._publisher.in_flight
        for instance_id in others:
            publish_instance_updated(instance_id, 10)
        return [await receive(channel), await receive(channel)]

    assert async_to_sync(scenario)() == [
        {"type": "instances.updated", "instance_ids": [first]},
        {"type": "instances.updated", "instance_ids": others},
    ]
    assert wait_for_publishes()


def test_an_instance_group_hears_its_own_instance_once_per_send_with_its_samples():
    watched, unwatched = str(uuid.uuid4()), str(uuid.uuid4())

    async def scenario():
        channel = await listener(instance_group(watched))
        publish_instance_updated(watched, 3)
        while events._publisher.pending:
            await asyncio.sleep(0)
        publish_instance_updated(unwatched, 5)
        publish_instance_updated(watched, 4)
        publish_instance_updated(watched, 1)
        return [await receive(channel), await receive(channel)]

    assert async_to_sync(scenario)() == [
        {"type": "instance.updated", "instance_id": watched, "samples": 3},
        {"type": "instance.updated", "instance_id": watched, "samples": 5},
    ]


def test_an_idle_publish_is_sent_after_a_moment_from_a_server_loop():
    instance_id = str(uuid.uuid4())

    async def scenario():
        channel = await listener(INSTANCES_GROUP)
        publish_instance_updated(instance_id, 1)
        # Well under a coalescing delay's second: it waits a twentieth for company.
        return await receive(channel, 0.5)

    assert async_to_sync(scenario)() == {"type": "instances.updated", "instance_ids": [instance_id]}
    assert wait_for_publishes()


def test_publishes_in_a_server_within_its_gathering_time_go_out_as_one_event():
    first, second = str(uuid.uuid4()), str(uuid.uuid4())

    async def scenario():
        channel = await listener(INSTANCES_GROUP)
        publish_instance_updated(first, 1)
        await asyncio.sleep(events.PUBLISH_GATHER_SECONDS / 5)
        publish_instance_updated(second, 1)
        return await receive(channel)

    assert async_to_sync(scenario)() == {
        "type": "instances.updated",
        "instance_ids": [first, second],
    }
    assert wait_for_publishes()


def test_a_send_cut_off_while_it_gathers_is_made_by_the_process():
    channel = async_to_sync(listener)(INSTANCES_GROUP)
    instance_id = str(uuid.uuid4())

    async def scenario():
        publish_instance_updated(instance_id, 1)
        await asyncio.sleep(events.PUBLISH_GATHER_SECONDS / 5)
        # Returning now closes this loop while its send gathers.
        return events._publisher.flush_task is not None and bool(events._publisher.pending)

    assert async_to_sync(scenario)()
    assert wait_for_publishes()
    event = async_to_sync(receive)(channel)
    assert event == {"type": "instances.updated", "instance_ids": [instance_id]}


def test_an_idle_publish_without_a_server_loop_is_out_when_it_returns():
    channel = async_to_sync(listener)(INSTANCES_GROUP)
    instance_id = str(uuid.uuid4())
    publish_instance_updated(instance_id, 1)
    assert events._publisher.idle.is_set()
    event = async_to_sync(receive)(channel, 0.5)
    assert event == {"type": "instances.updated", "instance_ids": [instance_id]}


def test_ingest_succeeds_while_redis_is_down_and_announces_again_once_it_is_back(
    api, settings, caplog
):
    layers = settings.CHANNEL_LAYERS
    down = {name: dict(config) for name, config in layers.items()}
    down["default"]["CONFIG"] = {**down["default"]["CONFIG"], "hosts": ["redis://127.0.0.1:1/0"]}
    settings.CHANNEL_LAYERS = down
    channel_layers.backends = {}
    body = {"instance": {"agent_id": "cut-off"}, "samples": [{"name": "cpu_usage", "value": 1}]}
    with caplog.at_level(logging.WARNING, logger="instances.events"):
        response = api.post("/api/v1/ingest", body)
    assert response.status_code == 202, response.content
    assert Instance.objects.filter(agent_id="cut-off").exists()
    assert "could not publish instance.updated" in caplog.text

    settings.CHANNEL_LAYERS = layers
    channel_layers.backends = {}
    channel = async_to_sync(listener)(INSTANCES_GROUP)
    assert api.post("/api/v1/ingest", body).status_code == 202
    event = async_to_sync(receive)(channel)
    assert event == {"type": "instances.updated", "instance_ids": [response.json()["instance_id"]]}


def test_a_send_cut_off_by_its_loop_closing_is_finished_by_the_process():
    channel = async_to_sync(listener)(INSTANCES_GROUP)
    instance_id = str(uuid.uuid4())

    async def scenario():
        publish_instance_updated(instance_id, 1)
        while events._publisher.pending:
            await asyncio.sleep(0)
        # Returning now closes this loop, its send still waiting on Redis.
        return events._publisher.in_flight

    assert async_to_sync(scenario)()
    assert wait_for_publishes()
    event = async_to_sync(receive)(channel)
    assert event == {"type": "instances.updated", "instance_ids": [instance_id]}


def test_a_send_cancelled_before_it_began_is_made_by_the_process_and_later_ones_too():
    channel = async_to_sync(listener)(INSTANCES_GROUP)
    first, later = str(uuid.uuid4()), str(uuid.uuid4())

    async def scenario():
        # Returning at once closes this loop, which cancels the send it was handed before that
        # send ran a line.
        publish_instance_updated(first, 1)

    async_to_sync(scenario)()
    assert wait_for_publishes()
    publish_instance_updated(later, 1)

    events_heard = [async_to_sync(receive)(channel), async_to_sync(receive)(channel)]
    assert events_heard == [
        {"type": "instances.updated", "instance_ids": [first]},
        {"type": "instances.updated", "instance_ids": [later]},
    ]
