from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from alerts import lifecycle
from alerts.evaluation import evaluate_rules
from alerts.instance_status import derive_statuses, record_contact
from alerts.models import Alert
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


@pytest.mark.django_db
def test_recording_contact_gives_the_instance_as_the_orm_loads_it():
    """record_contact reads the row its UPDATE returns itself: each field as the ORM gives it
    (the metadata's JSON decoded, a large float kept as its digits), and the new last_seen."""
    metadata = {"rack": "b2", "disks": [1, 2.5], "big": 1e20, "nested": {"on": True}}
    registered = Instance.register("web-1", name="Web one", region="eu", metadata=metadata)

    found = record_contact("web-1")

    loaded = Instance.objects.get(pk=registered.pk)
    fields = [field.attname for field in Instance._meta.concrete_fields]
    assert {f: getattr(found, f) for f in fields} == {f: getattr(loaded, f) for f in fields}
    assert found.metadata == metadata
    assert found.last_seen is not None and found.status == Instance.Status.HEALTHY
    assert not found._state.adding


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
    assert event == {"type": "instances.updated", "instance_ids": [instance_id]}
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
    assert event["instance_ids"] == [str(Instance.objects.get(agent_id="next").pk)]
    async_to_sync(layer.group_discard)(INSTANCES_GROUP, channel)


@pytest.mark.django_db(transaction=True)
def test_vigils_own_instance_is_never_silent_its_alerts_alone_give_its_status():
    vigil = Instance.vigil()
    mark_silent_instances.delay().get()
    evaluate_rules()
    assert Instance.objects.get(pk=vigil.pk).status == Instance.Status.HEALTHY

    Alert.objects.create(instance=vigil, alert_type="backup_failed", severity="critical")
    evaluate_rules()
    assert Instance.objects.get(pk=vigil.pk).status == Instance.Status.UNHEALTHY


def open_critical(instance) -> Alert:
    alert = Alert(
        instance=instance,
        source=Alert.Source.SYSTEM,
        alert_type="disk_full",
        severity=Alert.Severity.CRITICAL,
    )
    return lifecycle.open_episode(alert, [], timezone.now())


def go_silent(instance_id, settings) -> None:
    silent_since = timezone.now() - timedelta(seconds=3 * settings.AGENT_INTERVAL_SECONDS + 1)
    Instance.objects.filter(pk=instance_id).update(last_seen=silent_since)


@pytest.mark.parametrize(
    ("open_severities", "resolved_severities", "status"),
    [
        ([], [], "healthy"),
        (["info"], ["critical"], "healthy"),
        (["warning"], [], "warning"),
        (["error", "info"], ["critical"], "warning"),
        (["critical"], [], "unhealthy"),
        (["warning", "critical"], [], "unhealthy"),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_a_batch_gives_the_status_its_open_alerts_give(
    api, open_severities, resolved_severities, status
):
    """Ingest derives the status in the statement that records contact; it agrees with
    derive_statuses, the rule every other path takes."""
    instance = Instance.register("web-1")
    instance.update(status=Instance.Status.UNKNOWN)
    for n, severity in enumerate(open_severities + resolved_severities):
        alert = Alert(
            instance=instance, source=Alert.Source.SYSTEM, alert_type=f"a{n}", severity=severity
        )
        alert = lifecycle.open_episode(alert, [], timezone.now())
        if n >= len(open_severities):
            lifecycle.recover(alert, timezone.now())

    post_sample(api)

    assert Instance.objects.get(pk=instance.pk).status == status
    assert derive_statuses(instance_ids=[instance.pk]) == 0


@pytest.mark.django_db(transaction=True)
def test_an_unknown_instance_reporting_again_with_a_critical_alert_open_is_unhealthy(api, settings):
    instance_id = post_sample(api)
    alert = open_critical(Instance.objects.get(pk=instance_id))
    go_silent(instance_id, settings)
    mark_silent_instances.delay().get()
    assert Instance.objects.get(pk=instance_id).status == "unknown"

    post_sample(api)
    assert Instance.objects.get(pk=instance_id).status == "unhealthy"  # never "healthy"

    lifecycle.recover(alert, timezone.now())
    evaluate_rules()
    assert Instance.objects.get(pk=instance_id).status == "healthy"


@pytest.mark.django_db(transaction=True)
def test_the_rest_put_status_is_recorded_as_reported_never_as_the_status(api, settings):
    instance_id = post_sample(api)
    open_critical(Instance.objects.get(pk=instance_id))
    derive_statuses()

    response = api.put(f"/api/v1/instances/{instance_id}", {"status": "healthy"})

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["reportedStatus"]) == (
        "unhealthy",
        "healthy",
    )
    go_silent(instance_id, settings)
    now = timezone.now().isoformat()
    body = api.put(f"/api/v1/instances/{instance_id}", {"lastHealthCheck": now}).json()
    assert (body["status"], body["reportedStatus"]) == ("unhealthy", "healthy")
    instance = Instance.objects.get(pk=instance_id)
    assert (instance.status, instance.reported_status) == ("unhealthy", "healthy")


@pytest.mark.django_db(transaction=True)
def test_each_status_change_is_announced_once_committed(settings):
    instance = Instance.register("web-1", last_seen=timezone.now())
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(instance_group(instance.pk), channel)

    assert derive_statuses(instance_ids=[instance.pk]) == 1
    assert derive_statuses(instance_ids=[instance.pk]) == 0

    event = async_to_sync(layer.receive)(channel)
    assert event == {"type": "instance.updated", "instance_id": str(instance.pk), "samples": 0}
    assert Instance.objects.get(pk=instance.pk).status == "healthy"
