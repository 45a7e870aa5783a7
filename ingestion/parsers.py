"""Validation of incoming samples, shared by every ingest format.

Parsers turn a decoded payload into plain values or collect every problem as
``{"index": i, "field": "...", "message": "..."}``, so a client learns all that is wrong at once.
"""

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings

from ingestion.errors import ApiError, BatchInvalid

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
MAX_NAME_LENGTH = 200
MAX_LABEL_VALUE_LENGTH = 1024
MAX_UNIT_LENGTH = 50
INSTANCE_FIELDS = {"name": 200, "type": 100, "region": 100, "endpoint": 500}


@dataclass(frozen=True)
class ParsedSample:
    name: str
    value: float
    ts: datetime
    labels: dict
    unit: str


@dataclass(frozen=True)
class ParsedBatch:
    instance: dict
    samples: list[ParsedSample]


class Problems:
    """Collects item errors; raises them all together."""

    def __init__(self):
        self.items: list[dict] = []

    def add(self, index: int | None, field: str, message: str) -> None:
        self.items.append({"index": index, "field": field, "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            raise BatchInvalid(self.items)


def parse_timestamp(raw, now: datetime) -> datetime:
    """Epoch milliseconds or an RFC 3339 string (missing: now), within the accepted window.

    Raises ValueError with a message fit for a client.
    """
    if raw is None:
        return now
    if isinstance(raw, bool):
        raise ValueError("must be epoch milliseconds or an RFC 3339 string")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise ValueError("must be a finite number")
        try:
            ts = datetime.fromtimestamp(raw / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError("is out of range") from None
    elif isinstance(raw, str):
        try:
            ts = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError("is not an RFC 3339 timestamp") from None
        if ts.tzinfo is None:
            raise ValueError("needs a time zone offset (RFC 3339), e.g. 'Z'")
    else:
        raise ValueError("must be epoch milliseconds or an RFC 3339 string")
    if ts > now + timedelta(seconds=settings.INGEST_MAX_FUTURE_SECONDS):
        raise ValueError(f"is more than {settings.INGEST_MAX_FUTURE_SECONDS} s in the future")
    if ts < now - timedelta(days=settings.RETENTION_RAW_DAYS):
        raise ValueError(f"is older than the {settings.RETENTION_RAW_DAYS}-day retention")
    return ts


def parse_value(raw) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError("must be a number")
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError("must be finite (no NaN or infinity)")
    return value


def parse_metric_name(raw) -> str:
    if not isinstance(raw, str) or not METRIC_NAME.fullmatch(raw):
        raise ValueError("must match [a-zA-Z_:][a-zA-Z0-9_:]*")
    if len(raw) > MAX_NAME_LENGTH:
        raise ValueError(f"is longer than {MAX_NAME_LENGTH} characters")
    return raw


def parse_labels(raw) -> dict:
    """A flat object of label name → string; scalar values are taken as their string form."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError("must be an object of label names to values")
    if len(raw) > settings.INGEST_MAX_LABELS:
        raise ValueError(f"has {len(raw)} labels; at most {settings.INGEST_MAX_LABELS} allowed")
    labels = {}
    for key, value in raw.items():
        if not LABEL_NAME.fullmatch(key) or len(key) > MAX_NAME_LENGTH:
            raise ValueError(f"label name {key[:50]!r} must match [a-zA-Z_][a-zA-Z0-9_]*")
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = repr(value) if isinstance(value, float) else str(value)
        elif not isinstance(value, str):
            raise ValueError(f"label {key!r} must have a string value")
        if len(value) > MAX_LABEL_VALUE_LENGTH:
            raise ValueError(f"label {key!r} is longer than {MAX_LABEL_VALUE_LENGTH} characters")
        labels[key] = value
    return labels


def parse_unit(raw) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str) or len(raw) > MAX_UNIT_LENGTH:
        raise ValueError(f"must be a string of at most {MAX_UNIT_LENGTH} characters")
    return raw


def parse_instance(raw, problems: Problems, agent_id_field: str = "agent_id") -> dict:
    """The instance block: ``agent_id`` plus optional descriptive fields."""
    if not isinstance(raw, dict):
        problems.add(None, "instance", "must be an object with at least agent_id")
        return {}
    fields = {}
    agent_id = raw.get(agent_id_field)
    if not isinstance(agent_id, str) or not agent_id.strip() or len(agent_id) > 200:
        problems.add(None, f"instance.{agent_id_field}", "must be a non-empty string (≤ 200)")
    else:
        fields["agent_id"] = agent_id.strip()
    for field, max_length in INSTANCE_FIELDS.items():
        value = raw.get(field)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > max_length:
            problems.add(None, f"instance.{field}", f"must be a string of at most {max_length}")
        else:
            fields[field] = value
    metadata = raw.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            problems.add(None, "instance.metadata", "must be an object")
        else:
            fields["metadata"] = metadata
    return fields


# Field of a sample → its parser; the order is the order errors are reported in.
SAMPLE_FIELDS = (
    ("name", parse_metric_name),
    ("value", parse_value),
    ("labels", parse_labels),
    ("unit", parse_unit),
)


def parse_sample(raw, index: int, now: datetime, problems: Problems) -> ParsedSample | None:
    if not isinstance(raw, dict):
        problems.add(index, "", "must be an object")
        return None
    parsed = {}
    for field, parser in SAMPLE_FIELDS:
        try:
            parsed[field] = parser(raw.get(field))
        except ValueError as error:
            problems.add(index, field, str(error))
    try:
        parsed["ts"] = parse_timestamp(raw.get("ts"), now)
    except ValueError as error:
        problems.add(index, "ts", str(error))
    if len(parsed) != len(SAMPLE_FIELDS) + 1:
        return None
    return ParsedSample(**parsed)


def parse_native_batch(payload) -> ParsedBatch:
    """A native ingest body (PRODUCT.md section 5.1), or BatchInvalid listing every bad item."""
    problems = Problems()
    if not isinstance(payload, dict):
        raise BatchInvalid([{"index": None, "field": "", "message": "body must be a JSON object"}])
    instance = parse_instance(payload.get("instance"), problems)
    raw_samples = payload.get("samples", [])
    if not isinstance(raw_samples, list):
        problems.add(None, "samples", "must be an array")
        raw_samples = []
    if len(raw_samples) > settings.INGEST_MAX_SAMPLES:
        raise ApiError(
            413, f"{len(raw_samples)} samples; at most {settings.INGEST_MAX_SAMPLES} per request"
        )
    now = datetime.now(UTC)
    samples = [parse_sample(raw, index, now, problems) for index, raw in enumerate(raw_samples)]
    problems.raise_if_any()
    return ParsedBatch(instance=instance, samples=samples)
