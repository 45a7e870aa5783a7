"""The alerting configuration as one YAML document over HTTP: read it with the read scope,
replace what it describes with the manage scope (alerts/alerting_config.py does both)."""

from django.http import HttpRequest, HttpResponse
from ninja import Router

from alerts.alerting_config import ConfigError, dump, export_config, import_config
from api.auth import manage_scope, read_scope
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
