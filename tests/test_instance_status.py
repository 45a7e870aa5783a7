from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from instances.events import INSTANCES_GROUP, instance_group
from instances.models import Instance
from instances.tasks import mark_silent_instances


def post_sample(api, agent_id="web-1"):
    body = {"instance": {"agent_id": agent_id}, "samples": [{"name": "cpu_usage", "value": 1}]}
    response = api.post("/api/v1/ingest", body)
    assert response.status_code == 202, response.content
    return response.json()["instance_id"]


@pytest.mark.django_db(transaction=True)
def test_an_instance_that_reports_is_healthy(api):
    post_sample(api)
    assert Instance.objects.get(agent_id="web-1").status == Instance.Status.HEALTHY


@pytest.mark.django_db(transaction=True)
def test_an_instance_silent_for_three_intervals_becomes_unknown(api, settings):
    post_sample(api, "quiet")
    post_sample(api, "chatty")
    Instance.objects.filter(agent_id="quiet").update(
        last_seen=timezone.now() - timedelta(seconds=3 * settings.AGENT_INTERVAL_SECONDS + 1)
    )
    assert mark_silent_instances.delay().get() == 1
    statuses = dict(Instance.objects.values_list("agent_id", "status"))
    assert statuses == {"quiet": "unknown", "chatty": "healthy"}
    post_sample(api, "quiet")
    assert Instance.objects.get(agent_id="quiet").status == "healthy"


@pytest.mark.django_db(transaction=True)
def test_an_accepted_batch_is_announced_once_on_the_channel_layer(api):
    layer = get_channel_layer()
    overview = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(INSTANCES_GROUP, overview)
    instance_id = post_sample(api)
    event = async_to_sync(layer.receive)(overview)
    assert event == {"type": "instance.updated", "instance_id": instance_id, "samples": 1}
    detail = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(instance_group(instance_id), detail)
    post_sample(api)
    assert async_to_sync(layer.receive)(detail)["instance_id"] == instance_id
    async_to_sync(layer.group_discard)(INSTANCES_GROUP, overview)


@pytest.mark.django_db(transaction=True)
def test_a_rejected_batch_announces_nothing(api):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(INSTANCES_GROUP, channel)
    bad = {"instance": {"agent_id": "web-1"}, "samples": [{"name": "cpu", "value": "x"}]}
    assert api.post("/api/v1/ingest", bad).status_code == 400
    post_sample(api, "next")
    # The first event on the group is the accepted batch's, not the rejected one's.
    event = async_to_sync(layer.receive)(channel)
    assert event["instance_id"] == str(Instance.objects.get(agent_id="next").pk)
    async_to_sync(layer.group_discard)(INSTANCES_GROUP, channel)


@pytest.mark.django_db(transaction=True)
def test_vigils_own_instance_is_never_silent_its_alerts_alone_give_its_status():
    from alerts.evaluation import evaluate_rules
    from alerts.models import Alert

    vigil = Instance.vigil()
    mark_silent_instances.delay().get()
    evaluate_rules()
    assert Instance.objects.get(pk=vigil.pk).status == Instance.Status.HEALTHY

    Alert.objects.create(instance=vigil, alert_type="backup_failed", severity="critical")
    evaluate_rules()
    assert Instance.objects.get(pk=vigil.pk).status == Instance.Status.UNHEALTHY
