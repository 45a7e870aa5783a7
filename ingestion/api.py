"""Ingest endpoints: the native batch format and Prometheus remote write (PRODUCT.md 5.1, 5.3)."""

from ninja import Router, Schema, Status

from api.auth import check_push_for, ingest_scope
from api.formats import response_links
from ingestion import idempotency
from ingestion.errors import ApiError
from ingestion.parsers import parse_native_body
from ingestion.remote_write import RemoteWrite
from ingestion.schemas import NATIVE_BATCH_SCHEMA, json_request_body
from ingestion.storage import store_batch, store_batches

router = Router(tags=["ingest"])


class IngestAccepted(Schema):
    accepted: int
    instance_id: str


class ErrorBody(Schema):
    error: str
    details: list[dict]


ERRORS = {code: ErrorBody for code in (400, 401, 403, 413, 415, 429, 503)}


@router.post(
    "/ingest",
    auth=ingest_scope,
    response={202: IngestAccepted, **ERRORS},
    summary="Push a batch of samples for one instance",
    description=(
        "Atomic: any bad sample answers 400 listing every bad item and stores nothing. A retried "
        "batch (same `Idempotency-Key`, or the same series and timestamps) is stored once."
    ),
    openapi_extra={
        **json_request_body(NATIVE_BATCH_SCHEMA),
        "parameters": [
            {
                "in": "header",
                "name": "Idempotency-Key",
                "required": False,
                "schema": {"type": "string", "maxLength": idempotency.MAX_KEY_LENGTH},
            }
        ],
        **response_links(
            202, GetInstance=("ingestion_rest_get_instance", {"ref": "$response.body#/instance_id"})
        ),
    },
)
def ingest(request):
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 0 < len(key) <= idempotency.MAX_KEY_LENGTH:
        raise ApiError(400, f"Idempotency-Key must be 1 to {idempotency.MAX_KEY_LENGTH} characters")
    answer = idempotency.recall(request.auth.pk, key)
    if answer is None:
        batch = parse_native_body(request.body)
        check_push_for(request, [batch.instance["agent_id"]])
        stored = store_batch(batch.instance, batch.samples)
        answer = {"accepted": stored.accepted, "instance_id": str(stored.instance.pk)}
        idempotency.remember(request.auth.pk, key, answer)
    return Status(202, answer)


@router.post(
    "/write",
    auth=ingest_scope,
    response={204: None, **ERRORS},
    summary="Prometheus remote write 1.0",
    description=(
        "A snappy-compressed protobuf `prometheus.WriteRequest` (`Content-Encoding: snappy`, "
        "`X-Prometheus-Remote-Write-Version: 0.1.0`). The `instance` label (else `job`) names "
        "the instance; a series with neither belongs to the instance named after the sending "
        "token (its agent id is the token's name). Atomic across every instance of the "
        "request; staleness markers are kept, other NaN values skipped. 4xx means the request "
        "can never succeed (Prometheus drops it), 503 means retry."
    ),
    openapi_extra={
        "parameters": [
            {
                "in": "header",
                "name": "Content-Encoding",
                "required": True,
                "schema": {"type": "string", "enum": ["snappy"]},
            },
            {
                "in": "header",
                "name": "X-Prometheus-Remote-Write-Version",
                "required": False,
                "schema": {"type": "string", "enum": ["0.1.0"]},
            },
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}}
            },
        },
    },
)
def remote_write(request):
    RemoteWrite.check_headers(request.headers)
    batches = RemoteWrite.parse(RemoteWrite.decode(request.body), sender=request.auth.name)
    check_push_for(request, [batch.instance["agent_id"] for batch in batches])
    store_batches(batches)
    return Status(204, None)
