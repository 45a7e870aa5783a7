"""The checks API: list checks and read their status with the read scope; make, change and
delete them with the manage scope. Fields are the check's own names, in and out; what a field
means, and the bad targets refused (schemes, link-local and, unless allowed, private
addresses), are the same as in the app's form, since both end in the model's validation."""

import uuid
from typing import Annotated, Literal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from ninja import Field, Router, Schema, Status
from pydantic import ConfigDict, StringConstraints

from accounts.models import AuditEvent
from api.auth import manage_scope, read_scope
from api.formats import ListLimit, StoredText, api_list, response_links
from checks import history
from checks.models import Check, CheckGroup
from ingestion.errors import ApiError

router = Router(tags=["checks"])

Text = Annotated[StoredText, StringConstraints(max_length=500)]
Seconds = Annotated[float, Field(allow_inf_nan=False)]
HTTP_METHODS = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
DNS_TYPES = Literal["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "SRV", "CAA"]


class CheckFields(Schema):
    """What a check is made or changed with; every field may be left out (the model's default
    on a new check, unchanged on an update)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[StoredText, StringConstraints(min_length=1, max_length=200)] | None = None
    group: Annotated[str, StringConstraints(max_length=100)] | None = Field(
        None, description="The slug of its group (status page, slug pings); empty for none."
    )
    slug: Annotated[str, StringConstraints(max_length=100)] | None = None
    paused: bool | None = None
    url: Annotated[StoredText, StringConstraints(max_length=2000)] | None = None
    host: Annotated[StoredText, StringConstraints(max_length=255)] | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    http_method: HTTP_METHODS | None = None
    http_headers: dict[str, StoredText] | None = None
    http_body: Annotated[StoredText, StringConstraints(max_length=100_000)] | None = None
    expected_statuses: Annotated[StoredText, StringConstraints(max_length=200)] | None = None
    keyword: Text | None = None
    keyword_absent: bool | None = None
    json_path: Text | None = None
    json_expected: Text | None = None
    follow_redirects: bool | None = None
    max_redirects: Annotated[int, Field(ge=0, le=50)] | None = None
    ignore_tls_errors: bool | None = None
    dns_record_type: DNS_TYPES | None = None
    dns_expected: Text | None = None
    dns_resolver: Annotated[StoredText, StringConstraints(max_length=100)] | None = None
    interval_seconds: Annotated[int, Field(ge=20, le=604_800)] | None = None
    timeout_seconds: Annotated[Seconds, Field(ge=0.1, le=60)] | None = None
    retries: Annotated[int, Field(ge=0, le=100)] | None = None
    jitter_seconds: Annotated[Seconds, Field(ge=0, le=3_600)] | None = None
    certificate_warning_days: Annotated[int, Field(ge=0, le=3_650)] | None = None
    certificate_critical_days: Annotated[int, Field(ge=0, le=3_650)] | None = None
    period_seconds: Annotated[int, Field(ge=20, le=31_536_000)] | None = None
    grace_seconds: Annotated[int, Field(ge=0, le=31_536_000)] | None = None
    cron: Annotated[StoredText, StringConstraints(max_length=100)] | None = None
    time_zone: Annotated[str, StringConstraints(max_length=64)] | None = None
    late_alerts: bool | None = None


class CheckCreate(CheckFields):
    kind: Check.Kind
    name: Annotated[StoredText, StringConstraints(min_length=1, max_length=200)]


def check_or_404(check_id: str) -> Check:
    try:
        return Check.objects.select_related("group").get(pk=uuid.UUID(check_id))
    except (ValueError, Check.DoesNotExist):
        raise Http404(f"no check {check_id!r}") from None


def apply_fields(check: Check, payload: CheckFields) -> list[str]:
    """Set the fields the payload gives on ``check`` and judge the whole of it (400 with
    every refused field); returns the names of the fields given."""
    given = payload.model_dump(exclude_unset=True, exclude={"kind"})
    # An explicit null clears a field only where the check may be without it.
    refused = [
        {"index": None, "field": name, "message": "may not be null"}
        for name, value in given.items()
        if value is None and not Check._meta.get_field(name).null
    ]
    if refused:
        raise ApiError(400, "invalid check", refused)
    for name, value in given.items():
        if name == "group":
            check.group = _group_named(value)
        else:
            setattr(check, name, value)
    try:
        check.full_clean()
    except ValidationError as error:
        details = [
            {"index": None, "field": field, "message": message}
            for field, messages in error.message_dict.items()
            for message in messages
        ]
        raise ApiError(400, "invalid check", details) from None
    return sorted(given)


def _group_named(slug: str | None) -> CheckGroup | None:
    if not slug:
        return None
    group = CheckGroup.objects.filter(slug=slug).first()
    if group is None:
        raise ApiError(400, "invalid check", [{"index": None, "field": "group",
                                               "message": f"no group {slug!r}"}])  # fmt: skip
    return group


CHECK_ID = {"check_id": "$response.body#/id"}


@router.post(
    "/checks",
    auth=manage_scope,
    response={201: dict},
    summary="Make a check",
    openapi_extra=response_links(
        201,
        GetCheck=("checks_api_get_check", CHECK_ID),
        GetCheckStatus=("checks_api_check_status", CHECK_ID),
        UpdateCheck=("checks_api_update_check", CHECK_ID),
        DeleteCheck=("checks_api_delete_check", CHECK_ID),
    ),
)
def create_check(request, payload: CheckCreate):
    check = Check(kind=payload.kind)
    apply_fields(check, payload)
    with transaction.atomic():
        check.save()
        AuditEvent.record(request.auth.name, "check.create", check)
    return Status(201, check.to_api())


@router.get("/checks", auth=read_scope, response={200: dict}, summary="List checks by name")
def list_checks(
    request,
    kind: Check.Kind | None = None,
    state: Check.State | None = None,
    group: str | None = None,
    limit: ListLimit = 100,
):
    checks = Check.objects.select_related("group").order_by("name", "pk")
    if kind is not None:
        checks = checks.filter(kind=kind)
    if state is not None:
        checks = checks.filter(state=state)
    if group is not None:
        checks = checks.filter(group__slug=group)
    return api_list(checks[:limit])


@router.get("/checks/{check_id}", auth=read_scope, response={200: dict}, summary="Read a check")
def get_check(request, check_id: str):
    return check_or_404(check_id).to_api()


@router.get(
    "/checks/{check_id}/status",
    auth=read_scope,
    response={200: dict},
    summary="A check's state, last result and availability over 24 h, 7 d, 30 d and 90 d",
)
def check_status(request, check_id: str):
    check = check_or_404(check_id)
    availability = {
        label.replace(" ", ""): history.uptimes([check], window)[check.pk]
        for label, window in history.AVAILABILITY_WINDOWS.items()
    }
    return {**check.status_api(), "availability": availability}


@router.patch(
    "/checks/{check_id}", auth=manage_scope, response={200: dict}, summary="Change a check"
)
def update_check(request, check_id: str, payload: CheckFields):
    with transaction.atomic():
        check = check_or_404(check_id)
        changed = apply_fields(check, payload)
        check.save()
        AuditEvent.record(request.auth.name, "check.change", check, fields=changed)
    return check.to_api()


@router.delete(
    "/checks/{check_id}", auth=manage_scope, response={204: None}, summary="Delete a check"
)
def delete_check(request, check_id: str):
    check_or_404(check_id).delete_recorded(request.auth.name)
    return Status(204, None)
