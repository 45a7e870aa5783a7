"""Prometheus remote write 1.0 (PRODUCT.md section 5.3): snappy-compressed protobuf.

Prometheus retries a request answered 5xx or 429 and drops one answered with any other 4xx, so a
request that can never succeed (corrupt, invalid, too large, samples outside the accepted time
window) answers 4xx and one that may succeed later (storage down) answers 503.
"""

import math
import struct
from collections import defaultdict

import cramjam
from django.conf import settings
from google.protobuf.message import DecodeError

from ingestion.errors import ApiError
from ingestion.parsers import (
    ParsedBatch,
    ParsedSample,
    Problems,
    TimeWindow,
    check_sample_count,
    check_series_count,
    parse_agent_id,
    parse_labels,
    parse_metric_name,
    parse_timestamp,
)
from ingestion.prompb import WriteRequest

STALENESS_MARKER = bytes.fromhex("7ff0000000000002")
# A snappy block says how large it will be; more than this is refused before decompressing.
MAX_DECOMPRESSION_RATIO = 10


class RemoteWrite:
    """Decodes and validates one remote write request into per-instance batches.

    The ``instance`` label names the Instance (its agent id), else the ``job`` label; that label
    is not kept on the series. A series with neither (a recording rule's ``sum without
    (instance, job)``, say, which Prometheus sends like any other) belongs to the instance named
    after the sending token: Vigil needs an instance for every series, and refusing the series
    would make Prometheus drop the whole request with the series beside it. ``__name__``
    becomes the metric name, and every other label is a series label. Prometheus's staleness
    marker (a NaN of its own, "this series ended") is kept as such, so PromQL stops returning
    the series at once; other NaN values and infinities are skipped, as Vigil stores finite
    values only.
    """

    content_encoding = "snappy"
    version_prefix = "0.1."

    @classmethod
    def check_headers(cls, headers) -> None:
        encoding = headers.get("Content-Encoding", "")
        if encoding.lower() != cls.content_encoding:
            raise ApiError(415, "Content-Encoding must be snappy (Prometheus remote write 1.0)")
        version = headers.get("X-Prometheus-Remote-Write-Version")
        if version is not None and not version.startswith(cls.version_prefix):
            raise ApiError(415, f"remote write version {version[:20]} is not supported; use 0.1.0")
        proto = _content_type_param(headers.get("Content-Type", ""), "proto")
        if proto not in (None, "prometheus.WriteRequest"):
            raise ApiError(415, "only prometheus.WriteRequest (remote write 1.0) is accepted")

    @staticmethod
    def decode(body: bytes) -> WriteRequest:
        """The WriteRequest in a snappy block; 400 if either layer is corrupt, 413 if huge."""
        try:
            length = cramjam.snappy.decompress_raw_len(body)
        except cramjam.DecompressionError as error:
            raise ApiError(400, f"malformed snappy block: {error}") from None
        limit = settings.INGEST_MAX_BODY_BYTES * MAX_DECOMPRESSION_RATIO
        if length > limit:
            raise ApiError(413, f"decompresses to {length} bytes; at most {limit} accepted")
        try:
            raw = bytes(cramjam.snappy.decompress_raw(body))
        except cramjam.DecompressionError as error:
            raise ApiError(400, f"malformed snappy block: {error}") from None
        try:
            return WriteRequest.FromString(raw)
        except DecodeError as error:
            raise ApiError(400, f"malformed protobuf WriteRequest: {error}") from None

    @staticmethod
    def parse(request: WriteRequest, sender: str) -> list[ParsedBatch]:
        """One batch per instance, or BatchInvalid listing the bad series (index = position);
        ``sender`` is the agent id of the series without an instance or job label.

        Within a series, timestamps must increase; each must lie in the batch's TimeWindow.
        """
        check_series_count(len(request.timeseries))
        check_sample_count(sum(len(series.samples) for series in request.timeseries))
        problems, window = Problems(), TimeWindow()
        samples_of, markers_of = defaultdict(list), defaultdict(list)
        for index, series in enumerate(request.timeseries):
            parsed = _parse_series(series, index, window, problems, sender)
            if parsed is not None:
                agent_id, samples, markers = parsed
                samples_of[agent_id].extend(samples)
                markers_of[agent_id].extend(markers)
        problems.raise_if_any()
        return [
            ParsedBatch(
                instance={"agent_id": agent_id},
                samples=samples_of[agent_id],
                staleness_markers=markers_of[agent_id],
            )
            for agent_id in samples_of
            if samples_of[agent_id] or markers_of[agent_id]
        ]


def _parse_series(series, index: int, window: TimeWindow, problems: Problems, sender: str):
    labels = {label.name: label.value for label in series.labels}
    if len(labels) != len(series.labels):
        problems.add(index, "labels", "has a label name twice")
        return None
    raw_name = labels.pop("__name__", None)
    if not labels.get("instance"):
        labels.pop("instance", None)  # an empty label is no label, in Prometheus as here
    instance_label = "instance" if "instance" in labels else "job"
    raw_agent_id = labels.pop(instance_label, None) or sender
    ok = True
    try:
        name = parse_metric_name(raw_name)
    except ValueError as error:
        problems.add(index, "labels.__name__", str(error))
        ok = False
    try:
        agent_id = parse_agent_id(raw_agent_id)
    except ValueError as error:
        problems.add(index, f"labels.{instance_label}", str(error))
        ok = False
    try:
        labels = parse_labels(labels)
    except ValueError as error:
        problems.add(index, "labels", str(error))
        ok = False
    if not ok:
        return None
    samples, markers, previous_ms = [], [], None
    for position, sample in enumerate(series.samples):
        field = f"samples[{position}].timestamp"
        if previous_ms is not None and sample.timestamp <= previous_ms:
            problems.add(index, field, "is out of order: timestamps must increase within a series")
            return None
        previous_ms = sample.timestamp
        try:
            ts = parse_timestamp(sample.timestamp, window)
        except ValueError as error:
            problems.add(index, field, f"{error} ({name})")
            return None
        if is_staleness_marker(sample.value):
            markers.append(ParsedSample(name, sample.value, ts, labels, ""))
        elif math.isfinite(sample.value):
            samples.append(ParsedSample(name, sample.value, ts, labels, ""))
    return agent_id, samples, markers


def is_staleness_marker(value: float) -> bool:
    """Prometheus's staleness marker: a NaN with its own bit pattern (any other NaN is a value,
    which Vigil does not store)."""
    return struct.pack(">d", value) == STALENESS_MARKER


def _content_type_param(content_type: str, name: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"')
    return None
