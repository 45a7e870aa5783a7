"""The seed-compatible REST API's alerts (PRODUCT.md 5.2): agents raise them (ingest scope, for
their own agent ids), a token with the manage scope acknowledges, resolves or deletes them."""

import uuid
from typing import Literal

from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import field_validator

from accounts.models import AuditEvent
from alerts import lifecycle
from alerts.models import Alert, Silence, agent_fingerprint, parse_severity
from api.auth import check_push_for, ingest_or_manage_scope
from api.formats import InstanceRef, ListLimit, StoredText, api_list, response_links
from instances.models import Instance

router = Router(tags=["alerts"])


class AlertIn(Schema):
    instanceId: InstanceRef = Field(description="uuid or agent id; a new agent id registers it")
    alertType: StoredText = Field(min_length=1, max_length=100)
    severity: str = Field(
        "warning", description="info, warning, error, critical (or the seed's low, medium, high)"
    )
    message: StoredText = Field("", max_length=10_000)
    status: Literal["active", "firing", "resolved"] = Field(
        "active", description="`resolved`: the problem is over, resolve its open alert."
    )

    @field_validator("severity")
    @classmethod
    def known_severity(cls, value: str) -> str:
        return parse_severity(value)


class AlertUpdate(Schema):
    status: Literal["active", "acknowledged", "resolved"]
    note: StoredText = Field("", max_length=10_000)


# What a PUT of each status does to an alert.
TRANSITIONS = {
    "active": lifecycle.reopen,
    "acknowledged": lifecycle.acknowledge,
    "resolved": lifecycle.resolve,
}


def alert_or_404(alert_id: str) -> Alert:
    try:
        return Alert.objects.get(pk=uuid.UUID(alert_id))
    except (ValueError, Alert.DoesNotExist):
        raise Http404(f"no alert {alert_id!r}") from None


ALERT_ID = {"alert_id": "$response.body#/id"}
ITS_INSTANCE = {"ref": "$response.body#/instanceId"}


@router.post(
    "/alerts",
    auth=ingest_or_manage_scope,
    response={200: dict, 201: dict, 404: dict},
    summary="Raise an alert",
    description="201 with a new alert; 200 with the open one when this instance already has "
    "an open alert of this type and severity (its `occurrences` and `lastSeenAt` go up, nobody "
    'is notified again). `"status": "resolved"` resolves that open alert (404 when none is).',
    openapi_extra=response_links(
        200,
        201,
        UpdateAlert=("alerts_api_update_alert", ALERT_ID),
        DeleteAlert=("alerts_api_delete_alert", ALERT_ID),
        ListItsInstanceAlerts=(
            "alerts_api_list_alerts",
            {"instanceId": "$response.body#/instanceId"},
        ),
        # An alert may register its instance: the instance's own operations take its id.
        GetItsInstance=("ingestion_rest_get_instance", ITS_INSTANCE),
        UpdateItsInstance=("ingestion_rest_update_instance", ITS_INSTANCE),
        DeleteItsInstance=("ingestion_rest_delete_instance", ITS_INSTANCE),
    ),
)
def create_alert(request, payload: AlertIn):
    check_push_for(request, [Instance.agent_id_named_by(payload.instanceId)])
    instance = Instance.find_or_register(payload.instanceId)
    key = agent_fingerprint(instance.pk, payload.alertType, payload.severity)
    now = timezone.now()
    if payload.status == "resolved":
        return _resolve_reported(key, now)
    for _ in range(2):
        ongoing = Alert.objects.filter(fingerprint=key, resolved_at__isnull=True).first()
        if ongoing is not None and lifecycle.repeat(ongoing, now, payload.message):
            return Status(200, ongoing.to_api())
        alert = Alert(
            instance=instance,
            alert_type=payload.alertType,
            severity=payload.severity,
            message=payload.message,
            source=Alert.Source.API,
            fingerprint=key,
            created_at=now,
            fired_at=now,
            last_seen_at=now,
        )
        try:
            with transaction.atomic():
                lifecycle.open_episode(alert, list(Silence.objects.active(now)), now)
        except IntegrityError:
            continue  # the same report, posted at the same moment, opened it: go on with it
        return Status(201, alert.to_api())
    raise HttpError(503, "the alert changed while being reported; post it again")


def _resolve_reported(key: str, now):
    """The agent says its problem is over: the open episode resolves (200 with it); 404 when
    none is open."""
    alert = Alert.objects.filter(fingerprint=key, resolved_at__isnull=True).first()
    if alert is None:
        raise Http404("no open alert of this type and severity on this instance")
    lifecycle.recover(alert, now, note="The agent reported it resolved.")
    return Status(200, alert.to_api())


@router.get("/alerts", response={200: dict}, summary="List alerts, newest first")
def list_alerts(
    request,
    status: Alert.Status | None = None,
    instanceId: str | None = None,  # noqa: N803 (the seed API's name)
    limit: ListLimit = 100,
):
    alerts = Alert.objects.all()
    if status is not None:
        alerts = alerts.filter(status=status)
    instance_ids = Instance.ids_named_by(instanceId)
    if instance_ids is not None:
        alerts = alerts.filter(instance_id__in=instance_ids)
    return api_list(alerts[:limit])


@router.put(
    "/alerts/{alert_id}", response={200: dict, 409: dict}, summary="Acknowledge, resolve or reopen"
)
def update_alert(request, alert_id: str, payload: AlertUpdate):
    alert = alert_or_404(alert_id)
    try:
        TRANSITIONS[payload.status](alert, note=payload.note, token_name=request.auth.name)
    except lifecycle.Refused as refusal:
        return Status(409, {"error": f"cannot mark it {payload.status}: {refusal}", "details": []})
    return alert.to_api()


@router.delete("/alerts/{alert_id}", response={204: None}, summary="Delete an alert")
def delete_alert(request, alert_id: str):
    alert = alert_or_404(alert_id)
    AuditEvent.record(request.auth.name, "alert.delete", alert)
    alert.delete()
    return Status(204, None)
