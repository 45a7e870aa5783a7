"""The seed-compatible REST API's instances and metrics (PRODUCT.md 5.2).

``{ref}`` and ``instanceId`` name an instance by its uuid or its agent id. A list answers
``{"items": [...], "count": N}`` where ``count`` is the number of items returned.
"""

import uuid

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone
from ninja import Field, Router, Schema, Status

from accounts.models import AuditEvent
from alerts.instance_status import derive_statuses
from api.auth import check_push_for, ingest_or_manage_scope, ingest_scope
from api.formats import (
    ApiMoment,
    InstanceRef,
    JsonObject,
    ListLimit,
    StoredText,
    api_list,
    response_links,
)
from ingestion.api import ERRORS
from ingestion.models import IngestToken
from ingestion.parsers import INSTANCE_FIELDS, decode_json, parse_seed_metrics
from ingestion.schemas import SEED_METRICS_SCHEMA, json_request_body
from ingestion.storage import store_metrics
from instances import store
from instances.models import Instance
from instances.samples import samples_engine

router = Router(tags=["instances and metrics"])


class InstanceFields(Schema):
    name: StoredText | None = Field(None, min_length=1, max_length=INSTANCE_FIELDS["name"])
    type: StoredText | None = Field(None, max_length=INSTANCE_FIELDS["type"])
    region: StoredText | None = Field(None, max_length=INSTANCE_FIELDS["region"])
    endpoint: StoredText | None = Field(None, max_length=INSTANCE_FIELDS["endpoint"])
    metadata: JsonObject | None = None


class InstanceIn(InstanceFields):
    agentId: InstanceRef | None = Field(
        None,
        description="The agent's own stable id: registering it again updates the instance.",
    )


class InstanceUpdate(InstanceFields):
    status: Instance.Status | None = Field(
        None,
        description="What the agent says of itself, kept as `reportedStatus`; `status` is "
        "derived from contact and open alerts.",
    )
    lastHealthCheck: ApiMoment | None = None


INSTANCE_ID = {"ref": "$response.body#/id"}
INSTANCE_LINKS = {
    "GetInstance": ("ingestion_rest_get_instance", INSTANCE_ID),
    "UpdateInstance": ("ingestion_rest_update_instance", INSTANCE_ID),
    "DeleteInstance": ("ingestion_rest_delete_instance", INSTANCE_ID),
    "ListItsMetrics": ("ingestion_rest_list_metrics", {"instanceId": "$response.body#/id"}),
}


def instance_or_404(ref: str) -> Instance:
    instance = Instance.find(ref)
    if instance is None:
        raise Http404(f"no instance {ref!r}")
    return instance


@router.post(
    "/instances",
    auth=ingest_or_manage_scope,
    response={200: dict, 201: dict, **ERRORS},
    summary="Register an instance",
    description="201 with the new instance; 200 when `agentId` names one already registered.",
    openapi_extra=response_links(200, 201, **INSTANCE_LINKS),
)
def create_instance(request, payload: InstanceIn):
    fields = payload.dict(exclude={"agentId"}, exclude_none=True)
    if payload.agentId is None:
        pk = uuid.uuid4()
        check_push_for(request, [str(pk)])
        return Status(201, Instance.register(str(pk), id=pk, **fields).to_api())
    check_push_for(request, [payload.agentId])
    known = Instance.objects.filter(agent_id=payload.agentId).exists()
    return Status(200 if known else 201, Instance.register(payload.agentId, **fields).to_api())


@router.get("/instances", response={200: dict, **ERRORS}, summary="List instances")
def list_instances(request, status: Instance.Status | None = None, limit: ListLimit = 100):
    instances = Instance.objects.all()
    if status is not None:
        instances = instances.filter(status=status)
    return api_list(instances[:limit])


@router.get("/instances/{ref}", response={200: dict, **ERRORS}, summary="Get an instance")
def get_instance(request, ref: str):
    return instance_or_404(ref).to_api()


@router.put(
    "/instances/{ref}",
    auth=ingest_or_manage_scope,
    response={200: dict, **ERRORS},
    summary="Update an instance",
    description=(
        "`lastHealthCheck` records contact at that moment (a future one counts as now). An "
        "ingest token updates its own agents' instances; setting `status` needs manage."
    ),
    openapi_extra=response_links(200, **INSTANCE_LINKS),
)
def update_instance(request, ref: str, payload: InstanceUpdate):
    instance = instance_or_404(ref)
    check_push_for(request, [instance.agent_id])
    if payload.status is not None and not request.auth.has_scope(IngestToken.Scope.MANAGE):
        raise PermissionDenied("setting an instance's status needs the manage scope")
    fields = payload.dict(exclude={"lastHealthCheck", "status"}, exclude_none=True)
    if payload.lastHealthCheck is not None:
        fields["last_seen"] = min(payload.lastHealthCheck, timezone.now())
    # The agent's word is kept, not taken: the status is derived from contact and alerts.
    fields["reported_status"] = payload.status
    instance.update(**fields)
    derive_statuses(instance_ids=[instance.pk])
    instance.refresh_from_db(fields=["status"])
    if payload.status is not None:
        AuditEvent.record(request.auth.name, "instance.status", instance, status=payload.status)
    return instance.to_api()


@router.delete(
    "/instances/{ref}",
    response={204: None, **ERRORS},
    summary="Delete an instance with its series, samples and alerts",
)
def delete_instance(request, ref: str):
    instance = instance_or_404(ref)
    AuditEvent.record(request.auth.name, "instance.delete", instance)
    instance.delete()
    return Status(204, None)


@router.post(
    "/metrics",
    auth=ingest_scope,
    response={201: dict, **ERRORS},
    summary="Store a metric, or an array of metrics",
    description=(
        "One metric answers 201 with it; an array (atomic) answers 201 with "
        '`{"items": [...], "count": N}`. An `instanceId` never seen before registers the instance.'
    ),
    openapi_extra={
        **json_request_body(SEED_METRICS_SCHEMA),
        **response_links(
            201,
            GetMetric=("ingestion_rest_get_metric", {"metric_id": "$response.body#/id"}),
            GetItsInstance=("ingestion_rest_get_instance", {"ref": "$response.body#/instanceId"}),
        ),
    },
)
def create_metrics(request):
    payload = decode_json(request.body)
    metrics = parse_seed_metrics(payload)
    refs = {metric.instance_ref for metric in metrics}
    check_push_for(request, [Instance.agent_id_named_by(ref) for ref in refs])
    samples = store_metrics(metrics)
    return Status(201, samples[0].to_api() if isinstance(payload, dict) else api_list(samples))


@router.get("/metrics", response={200: dict, **ERRORS}, summary="List metrics, newest first")
def list_metrics(
    request,
    instanceId: str | None = None,  # noqa: N803 (the seed API's name)
    metricName: str | None = None,  # noqa: N803
    limit: ListLimit = 100,
):
    names = None if metricName is None else [metricName]
    return api_list(
        samples_engine().recent_samples(Instance.ids_named_by(instanceId), names, limit=limit)
    )


@router.get("/metrics/{metric_id}", response={200: dict, **ERRORS}, summary="Get a metric")
def get_metric(request, metric_id: str):
    key = store.parse_metric_id(metric_id)
    sample = None if key is None else samples_engine().sample_at(*key)
    if sample is None:
        raise Http404(f"no metric {metric_id!r}")
    return sample.to_api()
