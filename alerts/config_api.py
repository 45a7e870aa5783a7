"""The alerting configuration over HTTP: as one YAML document (read it with the read scope,
import it with the manage scope), and each rule, recording rule, inhibition rule, channel,
route and silence on its own (list and read with the read scope; make, change and delete with
the manage scope). An object has the keys of its entry in the file, judged as an import judges them
(alerts/alerting_config.py): the models' own validation, a 400 naming each bad key, nothing
stored, changes audited under the token's name."""

from typing import Literal

import orjson
from django.db import models, transaction
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Router, Status

from accounts.models import AuditEvent
from alerts.alerting_config import (
    ConfigError,
    dump,
    entry_of,
    export_config,
    import_config,
    save_entry,
)
from alerts.models import (
    AlertRule,
    InhibitRule,
    NotificationChannel,
    RecordingRule,
    Route,
    Silence,
)
from api.auth import manage_scope, read_scope
from api.formats import ListLimit, response_links
from ingestion.errors import ApiError

router = Router(tags=["alerting configuration"])

YAML_TYPE = "application/yaml"
YAML_BODY = {"content": {YAML_TYPE: {"schema": {"type": "string"}}}}


@router.get(
    "/alerting/config",
    auth=read_scope,
    summary="The whole alerting configuration as YAML (channel secrets as references)",
    openapi_extra={"responses": {200: {"description": "The YAML document", **YAML_BODY}}},
)
def read_config(request: HttpRequest) -> HttpResponse:
    return HttpResponse(dump(export_config()), content_type=f"{YAML_TYPE}; charset=utf-8")


@router.put(
    "/alerting/config",
    auth=manage_scope,
    response={200: dict},
    summary="Create or update what a YAML alerting configuration describes, all or nothing",
    openapi_extra={"requestBody": {"required": True, **YAML_BODY}},
)
def replace_config(request: HttpRequest):
    try:
        text = request.body.decode()
    except UnicodeDecodeError:
        raise ApiError(400, "the body is not UTF-8 text") from None
    try:
        report = import_config(text, actor=request.auth.name)
    except ConfigError as error:
        details = [
            {"index": None, "field": path, "message": message} for path, message in error.problems
        ]
        raise ApiError(400, "invalid alerting configuration, nothing stored", details) from None
    return report.as_dict()


# The things of the alerting configuration, each under /api/v1/alerting/<kind>: the model and
# the section of the YAML file whose entries are the API's objects.
KINDS = {
    "rules": (AlertRule, "rules"),
    "recording-rules": (RecordingRule, "recording_rules"),
    "inhibit-rules": (InhibitRule, "inhibit_rules"),
    "channels": (NotificationChannel, "channels"),
    "routes": (Route, "routes"),
    "silences": (Silence, "silences"),
}
Kind = Literal["rules", "recording-rules", "inhibit-rules", "channels", "routes", "silences"]
# The key an entry is named by, where its section has one.
NAME_KEYS = {"recording_rules": "record", "silences": None}
AUDIT = {"rules": "rule", "recording_rules": "recordingrule", "inhibit_rules": "inhibitrule",
         "channels": "channel", "routes": "route", "silences": "silence"}  # fmt: skip


def _shown(section: str, obj: models.Model) -> dict:
    """An object as the API shows it: its entry in the file (channel secrets as references,
    never in clear) and its id."""
    return {"id": obj.pk, **entry_of(section, obj)}


def _object_or_404(kind: str, object_id: int) -> models.Model:
    model, _ = KINDS[kind]
    found = model.objects.filter(pk=object_id).first()
    if found is None:
        raise Http404(f"no {kind} {object_id}")
    return found


def _refused(error: ConfigError) -> ApiError:
    details = [{"index": None, "field": path, "message": msg} for path, msg in error.problems]
    return ApiError(400, "invalid, nothing stored", details)


OBJECT_ID = {"kind": "$request.path.kind", "object_id": "$response.body#/id"}
BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


@router.get("/alerting/{kind}", auth=read_scope, response={200: dict}, summary="List them")
def list_objects(request: HttpRequest, kind: Kind, limit: ListLimit = 100):
    model, section = KINDS[kind]
    objects = list(model.objects.order_by("pk")[:limit])
    return {"items": [_shown(section, obj) for obj in objects], "count": len(objects)}


@router.post(
    "/alerting/{kind}",
    auth=manage_scope,
    response={201: dict},
    summary="Make one, with the keys of its entry in the alerting configuration file",
    openapi_extra={
        **BODY,
        **response_links(
            201,
            GetObject=("alerts_config_api_get_object", OBJECT_ID),
            UpdateObject=("alerts_config_api_update_object", OBJECT_ID),
            DeleteObject=("alerts_config_api_delete_object", OBJECT_ID),
        ),
    },
)
def create_object(request: HttpRequest, kind: Kind):
    model, section = KINDS[kind]
    entry = _body_map(request)
    key = NAME_KEYS.get(section, "name")
    if key is not None and model.objects.filter(**{key: str(entry.get(key))}).exists():
        raise ApiError(400, "invalid, nothing stored", [
            {"index": None, "field": key, "message": f"{entry.get(key)!r} is taken"}
        ])  # fmt: skip
    try:
        created = save_entry(section, entry, request.auth.name)
    except ConfigError as error:
        raise _refused(error) from None
    if created is None:
        raise ApiError(400, "invalid, nothing stored", [
            {"index": None, "field": "(entry)", "message": "the same silence exists"}
        ])  # fmt: skip
    return Status(201, _shown(section, created))


@router.get(
    "/alerting/{kind}/{object_id}", auth=read_scope, response={200: dict}, summary="Read one"
)
def get_object(request: HttpRequest, kind: Kind, object_id: int):
    return _shown(KINDS[kind][1], _object_or_404(kind, object_id))


@router.patch(
    "/alerting/{kind}/{object_id}",
    auth=manage_scope,
    response={200: dict},
    summary="Change the keys given (a channel's secrets left out stay as stored)",
    openapi_extra=BODY,
)
def update_object(request: HttpRequest, kind: Kind, object_id: int):
    section = KINDS[kind][1]
    changes = _body_map(request)
    # What a read answered may be sent back whole: its id names the object already.
    changes.pop("id", None)
    with transaction.atomic():
        obj = _object_or_404(kind, object_id)
        entry = {**entry_of(section, obj, include_secrets=True), **changes}
        try:
            saved = save_entry(section, entry, request.auth.name, target=obj)
        except ConfigError as error:
            raise _refused(error) from None
    return _shown(section, saved)


@router.delete(
    "/alerting/{kind}/{object_id}", auth=manage_scope, response={204: None}, summary="Delete one"
)
def delete_object(request: HttpRequest, kind: Kind, object_id: int):
    section = KINDS[kind][1]
    with transaction.atomic():
        obj = _object_or_404(kind, object_id)
        if isinstance(obj, Route) and obj.is_root:
            raise ApiError(400, "the root route can not be deleted (every alert needs it)")
        AuditEvent.record(request.auth.name, f"{AUDIT[section]}.delete", obj)
        obj.delete()
    return Status(204, None)


def _body_map(request: HttpRequest) -> dict:
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        raise ApiError(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body
