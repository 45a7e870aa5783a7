"""Validation of incoming samples, shared by every ingest format.

Parsers turn a decoded payload into plain values or collect every problem as
``{"index": i, "field": "...", "message": "..."}``, so a client learns all that is wrong at once.
"""

import dataclasses
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import msgspec
import numpy as np
import orjson
from django.conf import settings

from ingestion.errors import ApiError, BatchInvalid
from instances.formats import EPOCH
from instances.json_values import check_json, check_text
from instances.store import MICROSECOND, labels_key

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
MAX_NAME_LENGTH = 200
MAX_LABEL_VALUE_LENGTH = 1024
MAX_UNIT_LENGTH = 50
# Label sets larger than this are label floods (PRODUCT.md section 5.4).
MAX_LABELS = 32
INSTANCE_FIELDS = {"name": 200, "type": 100, "region": 100, "endpoint": 500}


class ParsedSample(NamedTuple):
    # A tuple, not a dataclass: a batch makes thousands of these, and a tuple is made fastest.
    name: str
    value: float
    ts: datetime
    labels: dict
    unit: str

    @property
    def series_ident(self) -> tuple[str, bytes]:
        """What tells this sample's series apart within its instance."""
        return self.name, labels_key(self.labels)


NO_LABELS_KEY = labels_key({})


def series_idents(samples: list[ParsedSample]) -> list[tuple[str, bytes]]:
    """Each sample's ``series_ident``, made inline: a batch has thousands of samples, most of
    them without labels, and a property call each cost more than the rest of its storing."""
    return [(s.name, labels_key(s.labels) if s.labels else NO_LABELS_KEY) for s in samples]


class BatchSeries(NamedTuple):
    """One series of a batch: what its samples have in common."""

    name: str
    labels: dict
    unit: str
    # ``(name, labels key)``: what tells this series apart within its instance.
    ident: tuple[str, bytes]


class SampleColumns(Sequence[ParsedSample]):
    """A batch's samples held as columns: each series once, then arrays of each sample's series
    (its position in ``series``), value and time (microseconds since the epoch). A batch is
    mostly a few scrapes of the same series, so storing it this way checks and resolves each
    series once and hands the numbers on as arrays, where a ``ParsedSample`` a sample cost more
    than writing it. Read as a sequence, it gives the samples it holds (made when first asked)."""

    __slots__ = ("series", "positions", "values", "micros", "_samples")

    def __init__(
        self,
        series: list[BatchSeries],
        positions: np.ndarray,
        values: np.ndarray,
        micros: np.ndarray,
    ):
        self.series = series
        self.positions = positions
        self.values = values
        self.micros = micros
        self._samples: list[ParsedSample] | None = None

    @classmethod
    def of(cls, samples: Sequence[ParsedSample]) -> "SampleColumns":
        if isinstance(samples, SampleColumns):
            return samples
        position_of: dict[tuple, int] = {}
        series, positions, micros_of = [], [], {}
        for sample in samples:
            ident = (sample.name, labels_key(sample.labels) if sample.labels else NO_LABELS_KEY)
            key = (ident, sample.unit)
            position = position_of.get(key)
            if position is None:
                position = position_of[key] = len(series)
                series.append(BatchSeries(sample.name, sample.labels, sample.unit, ident))
            positions.append(position)
            if sample.ts not in micros_of:
                micros_of[sample.ts] = (sample.ts - EPOCH) // MICROSECOND
        return cls(
            series,
            np.array(positions, dtype=np.intp),
            np.array([sample.value for sample in samples], dtype=np.float64),
            np.array([micros_of[sample.ts] for sample in samples], dtype=np.int64),
        )

    @property
    def earliest(self) -> datetime:
        return EPOCH + timedelta(microseconds=int(self.micros.min()))

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index):
        return self._listed()[index]

    def __iter__(self) -> Iterator[ParsedSample]:
        return iter(self._listed())

    def __eq__(self, other) -> bool:
        if isinstance(other, list | SampleColumns):
            return self._listed() == list(other)
        return NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return f"SampleColumns({self._listed()!r})"

    def _listed(self) -> list[ParsedSample]:
        if self._samples is None:
            micros = self.micros.tolist()
            moments = {us: EPOCH + timedelta(microseconds=us) for us in set(micros)}
            # tuple.__new__: a ParsedSample without its constructor's Python frame.
            make, sample_type, series = tuple.__new__, ParsedSample, self.series
            self._samples = [
                make(sample_type, (of.name, value, moments[us], of.labels, of.unit))
                for of, value, us in zip(
                    map(series.__getitem__, self.positions.tolist()),
                    self.values.tolist(),
                    micros,
                    strict=True,
                )
            ]
        return self._samples


@dataclass(frozen=True)
class ParsedMetric:
    """One metric of the seed-compatible API: a sample and the instance it belongs to."""

    instance_ref: str
    sample: ParsedSample


@dataclass(frozen=True)
class ParsedBatch:
    instance: dict
    samples: Sequence[ParsedSample]
    # Series that ended at these times (Prometheus's staleness markers; values are NaN).
    staleness_markers: list[ParsedSample] = dataclasses.field(default_factory=list)


class Problems:
    """Collects item errors; raises them all together, listing the first ``MAX_LISTED`` (a
    request of a million bad items must not answer a million details)."""

    MAX_LISTED = 100

    def __init__(self):
        self.items: list[dict] = []
        self.count = 0

    def add(self, index: int | None, field: str, message: str) -> None:
        self.count += 1
        if len(self.items) < self.MAX_LISTED:
            self.items.append({"index": index, "field": field, "message": message})

    def raise_if_any(self) -> None:
        if self.count:
            raise BatchInvalid(self.items, self.count)


class TimeWindow:
    """The timestamps a batch may carry: not older than retention, not far in the future.

    Made once per batch, so the per-sample check is two comparisons.
    """

    def __init__(self, now: datetime | None = None):
        self.now = now or datetime.now(UTC)
        self.future_seconds = settings.INGEST_MAX_FUTURE_SECONDS
        self.retention_days = settings.RETENTION_RAW_DAYS
        self.latest = self.now + timedelta(seconds=self.future_seconds)
        self.earliest = self.now - timedelta(days=self.retention_days)
        self.latest_ms = self.latest.timestamp() * 1000
        self.earliest_ms = self.earliest.timestamp() * 1000

    def too_late(self) -> ValueError:
        return ValueError(f"is more than {self.future_seconds} s in the future")

    def too_early(self) -> ValueError:
        return ValueError(f"is older than the {self.retention_days}-day retention")


def parse_timestamp(raw, window: TimeWindow) -> datetime:
    """Epoch milliseconds or an RFC 3339 string (missing: now), within the accepted window.

    Raises ValueError with a message fit for a client.
    """
    if raw is None:
        return window.now
    if isinstance(raw, bool):
        raise ValueError("must be epoch milliseconds or an RFC 3339 string")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise ValueError("must be a finite number")
        if raw > window.latest_ms:
            raise window.too_late()
        if raw < window.earliest_ms:
            raise window.too_early()
        return datetime.fromtimestamp(raw / 1000, tz=UTC)
    if not isinstance(raw, str):
        raise ValueError("must be epoch milliseconds or an RFC 3339 string")
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError("is not an RFC 3339 timestamp") from None
    if ts.tzinfo is None:
        raise ValueError("needs a time zone offset (RFC 3339), e.g. 'Z'")
    if ts > window.latest:
        raise window.too_late()
    if ts < window.earliest:
        raise window.too_early()
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
    if not raw and (raw is None or isinstance(raw, dict)):
        return {}
    if not isinstance(raw, dict):
        raise ValueError("must be an object of label names to values")
    if len(raw) > MAX_LABELS:
        raise ValueError(f"has {len(raw)} labels; at most {MAX_LABELS} allowed")
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
        try:
            labels[key] = check_text(value)
        except ValueError as error:
            raise ValueError(f"label {key!r} {error}") from None
    return labels


def parse_unit(raw) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str) or len(raw) > MAX_UNIT_LENGTH:
        raise ValueError(f"must be a string of at most {MAX_UNIT_LENGTH} characters")
    return check_text(raw)


def parse_agent_id(raw) -> str:
    """An agent's id for its instance (or, in the seed API, the instance's uuid)."""
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 200:
        raise ValueError("must be a non-empty string (≤ 200)")
    return check_text(raw.strip())


def parse_instance(raw, problems: Problems, agent_id_field: str = "agent_id") -> dict:
    """The instance block: ``agent_id`` plus optional descriptive fields."""
    if not isinstance(raw, dict):
        problems.add(None, "instance", "must be an object with at least agent_id")
        return {}
    fields = {}
    try:
        fields["agent_id"] = parse_agent_id(raw.get(agent_id_field))
    except ValueError as error:
        problems.add(None, f"instance.{agent_id_field}", str(error))
    for field, max_length in INSTANCE_FIELDS.items():
        value = raw.get(field)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > max_length:
            problems.add(None, f"instance.{field}", f"must be a string of at most {max_length}")
            continue
        try:
            fields[field] = check_text(value)
        except ValueError as error:
            problems.add(None, f"instance.{field}", str(error))
    metadata = raw.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        problems.add(None, "instance.metadata", "must be an object")
    elif metadata is not None:
        try:
            fields["metadata"] = check_json(metadata)
        except ValueError as error:
            problems.add(None, "instance.metadata", str(error))
    return fields


# Field of a sample → its parser; the order is the order errors are reported in.
SAMPLE_FIELDS = (
    ("name", parse_metric_name),
    ("value", parse_value),
    ("labels", parse_labels),
    ("unit", parse_unit),
)


# Field of a sample → its key in a payload, for the native format and the seed API's metrics.
NATIVE_SAMPLE_KEYS = {
    "name": "name",
    "value": "value",
    "labels": "labels",
    "unit": "unit",
    "ts": "ts",
}
SEED_METRIC_KEYS = {
    "name": "metricName",
    "value": "metricValue",
    "labels": "tags",
    "unit": "unit",
    "ts": "timestamp",
}


def parse_sample(
    raw,
    index: int | None,
    window: TimeWindow,
    problems: Problems,
    keys: Mapping[str, str] = NATIVE_SAMPLE_KEYS,
) -> ParsedSample | None:
    """One sample; problems are reported under the payload's own keys."""
    if not isinstance(raw, dict):
        problems.add(index, "", "must be an object")
        return None
    parsed = {}
    for field, parser in SAMPLE_FIELDS:
        try:
            parsed[field] = parser(raw.get(keys[field]))
        except ValueError as error:
            problems.add(index, keys[field], str(error))
    try:
        parsed["ts"] = parse_timestamp(raw.get(keys["ts"]), window)
    except ValueError as error:
        problems.add(index, keys["ts"], str(error))
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
    check_sample_count(len(raw_samples))
    window = TimeWindow()
    samples = _parse_native_samples(raw_samples, window, problems)
    problems.raise_if_any()
    return ParsedBatch(instance=instance, samples=samples)


def decode_json(body: bytes):
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, f"malformed JSON: {error}") from None


def parse_native_body(body: bytes) -> ParsedBatch:
    """A native ingest body as sent, or ApiError/BatchInvalid saying what is wrong with it.

    The usual body is decoded straight into typed samples (``_native_batch_typed``); any other,
    and any with a problem, goes through ``decode_json`` and ``parse_native_batch``, which say
    what is wrong, so both paths give the same batch and the same errors."""
    batch = _native_batch_typed(body)
    if batch is None:
        batch = parse_native_batch(decode_json(body))
    return batch


# gc=False: a batch decodes thousands, none of which can be part of a reference cycle.
class _TypedSample(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    name: str
    value: float
    ts: int
    # Raw: decoded by orjson, as the full path does (msgspec.Raw() when absent).
    labels: msgspec.Raw = msgspec.Raw()
    unit: str | None = None


class _TypedBody(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    instance: msgspec.Raw = msgspec.Raw(b"null")
    samples: list[_TypedSample] = []


_TYPED_BODY = msgspec.json.Decoder(_TypedBody)


def _native_batch_typed(body: bytes) -> ParsedBatch | None:
    """The batch of a body whose samples are all well-formed with epoch-millisecond timestamps,
    decoded in C into columns (``SampleColumns``) and checked in bulk (each distinct series
    once, the timestamps by their least and greatest); None for any other body, or at the
    first problem: the full path then says which.

    Unknown keys are refused here (the full path ignores them), so every byte of what is taken
    is decoded as orjson would; the instance block and labels are left to orjson itself."""
    try:
        decoded = _TYPED_BODY.decode(body)
        instance = orjson.loads(memoryview(decoded.instance))
    except (msgspec.DecodeError, orjson.JSONDecodeError, RecursionError):
        # RecursionError: msgspec skipping over a deeply nested value it keeps raw.
        return None
    raw_samples = decoded.samples
    if len(raw_samples) > settings.INGEST_MAX_SAMPLES:
        return None
    problems = Problems()
    instance = parse_instance(instance, problems)
    if problems.count:
        return None
    if not raw_samples:
        return ParsedBatch(instance=instance, samples=[])
    window = TimeWindow()
    try:
        stamps = np.fromiter((sample.ts for sample in raw_samples), np.int64, len(raw_samples))
    except OverflowError:
        return None
    if stamps.min() < window.earliest_ms or stamps.max() > window.latest_ms:
        return None
    values = np.fromiter((sample.value for sample in raw_samples), np.float64, len(raw_samples))
    if not np.isfinite(values).all():
        return None
    # A sample's series as written: its name alone when it has no labels or unit (most do).
    keys = [
        (sample.name, bytes(sample.labels), sample.unit)
        if sample.labels or sample.unit is not None
        else sample.name
        for sample in raw_samples
    ]
    position_of: dict = {}
    positions = np.fromiter(
        (position_of.setdefault(key, len(position_of)) for key in keys), np.intp, len(keys)
    )
    try:
        series = [_typed_series(key) for key in position_of]
    except (ValueError, orjson.JSONDecodeError):
        return None
    return ParsedBatch(
        instance=instance, samples=SampleColumns(series, positions, values, stamps * 1000)
    )


def _typed_series(key: str | tuple[str, bytes, str | None]) -> BatchSeries:
    """The series a typed sample's key names, checked as the full path checks each sample."""
    name, raw_labels, raw_unit = (key, b"", None) if type(key) is str else key
    parse_metric_name(name)
    labels = parse_labels(orjson.loads(raw_labels)) if raw_labels else {}
    ident = (name, labels_key(labels) if labels else NO_LABELS_KEY)
    return BatchSeries(name, labels, parse_unit(raw_unit), ident)


def _parse_native_samples(raw_samples: list, window: TimeWindow, problems: Problems) -> list:
    """``parse_sample`` over a batch, with a shortcut for the usual sample (a known-good name,
    a finite number, epoch milliseconds inside the window, no labels or unit): the same checks,
    without a call per field. Anything else takes the full path, which names every problem."""
    good_names: set[str] = set()
    earliest, latest = window.earliest_ms, window.latest_ms
    from_timestamp, isfinite = datetime.fromtimestamp, math.isfinite
    # Epoch milliseconds → datetime: a batch is mostly a few scrapes, each many samples of one
    # timestamp, and making the datetime cost more than the rest of the checks.
    moments: dict[int, datetime] = {}
    samples = []
    for index, raw in enumerate(raw_samples):
        if type(raw) is dict and len(raw) <= 3:
            name, value, ts = raw.get("name"), raw.get("value"), raw.get("ts")
            if (
                type(name) is str
                and name in good_names
                and type(value) in (float, int)
                and type(ts) is int
                and earliest <= ts <= latest
                and isfinite(value)
                and len(raw) == 3
            ):
                moment = moments.get(ts)
                if moment is None:
                    moment = moments[ts] = from_timestamp(ts / 1000, UTC)
                samples.append(ParsedSample(name, float(value), moment, {}, ""))
                continue
        sample = parse_sample(raw, index, window, problems)
        if sample is not None:
            good_names.add(sample.name)
        samples.append(sample)
    return samples


def check_series_count(count: int) -> None:
    if count > settings.INGEST_MAX_SERIES:
        raise ApiError(413, f"{count} series; at most {settings.INGEST_MAX_SERIES} per request")


def check_sample_count(count: int) -> None:
    if count > settings.INGEST_MAX_SAMPLES:
        raise ApiError(413, f"{count} samples; at most {settings.INGEST_MAX_SAMPLES} per request")


def parse_seed_metrics(payload) -> list[ParsedMetric]:
    """A seed-API metric object, or an array of them (PRODUCT.md 5.2), all or nothing.

    Raises BatchInvalid listing every bad item (``index`` is None for a single object).
    """
    single = isinstance(payload, dict)
    items = [payload] if single else payload
    if not isinstance(items, list) or not items:
        raise BatchInvalid(
            [{"index": None, "field": "", "message": "body must be a metric or an array of them"}]
        )
    check_sample_count(len(items))
    problems, window, metrics = Problems(), TimeWindow(), []
    for position, raw in enumerate(items):
        index = None if single else position
        sample = parse_sample(raw, index, window, problems, SEED_METRIC_KEYS)
        if not isinstance(raw, dict):
            continue
        try:
            instance_ref = parse_agent_id(raw.get("instanceId"))
        except ValueError as error:
            problems.add(index, "instanceId", str(error))
            continue
        if sample is not None:
            metrics.append(ParsedMetric(instance_ref, sample))
    problems.raise_if_any()
    return metrics
