"""The ``victoriametrics`` samples engine: samples kept by a VictoriaMetrics single-node or
cluster, series inventory still in PostgreSQL.

Writes go to ``VM_WRITE_URL``'s ``/api/v1/import`` (JSON lines, one request per batch, retried
within the request); a batch counts as stored only once VictoriaMetrics answered 2xx. Reads go
to ``VM_QUERY_URL``'s Prometheus API: PromQL as is, everything else (charts, window aggregates,
the seed API's samples) from ``/api/v1/export`` of the series the inventory names. Both URLs are
the base of the Prometheus API, so ``http://vm:8428`` (single-node) and
``http://vminsert:8480/insert/0/prometheus`` / ``http://vmselect:8481/select/0/prometheus``
(cluster) work alike.
"""

import logging
import math
import struct
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import cramjam
import numpy as np
import orjson
import urllib3
from django.db import OperationalError

from instances import store
from instances.formats import EPOCH
from instances.models import Instance

logger = logging.getLogger(__name__)

ATTEMPTS = 3
# Between attempts: enough for a restarting VictoriaMetrics to open its port again.
RETRY_PAUSES_SECONDS = (0.5, 1.5)
TIMEOUT = urllib3.Timeout(connect=2.0, read=30.0)
# Look-backs tried in turn for "the newest samples" without a start: most answers need the first.
RECENT_WINDOWS = (timedelta(hours=1), timedelta(days=1), timedelta(days=31), timedelta(days=36500))


class VictoriaMetricsUnavailable(OperationalError):
    """VictoriaMetrics did not take or answer a request. An OperationalError, as PostgreSQL
    down is: the API answers 503 with Retry-After, Celery tasks retry, /readyz reports it."""


class VictoriaMetricsRefused(Exception):
    """VictoriaMetrics answered a request with a 4xx: ``status`` and its JSON error, if any."""

    def __init__(self, status: int, body: bytes):
        self.status = status
        try:
            self.answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            self.answer = {"error": body.decode(errors="replace").strip()}
        super().__init__(f"VictoriaMetrics answered {status}: {self.answer.get('error', '')}")


# Prometheus's staleness marker: a NaN with its own bit pattern, "this series ended here".
STALENESS_MARKER = struct.unpack("<d", bytes.fromhex("020000000000f07f"))[0]


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def remote_write_request(series: Sequence[tuple[dict, Sequence[tuple[float, int]]]]) -> bytes:
    """A Prometheus remote write ``WriteRequest`` (protobuf) of ``(labels, [(value, ms)])``:
    TimeSeries = 1 (Label = 1 {name = 1, value = 2}, Sample = 2 {double value = 1, int64
    timestamp = 2})."""
    body = bytearray()
    for labels, samples in series:
        message = b"".join(
            _field(1, _field(1, name.encode()) + _field(2, value.encode()))
            for name, value in sorted(labels.items())
        )
        for value, ms in samples:
            message += _field(2, b"\x09" + struct.pack("<d", value) + b"\x10" + _varint(ms))
        body += _field(1, message)
    return bytes(body)


def _millis(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(milliseconds=1)


def _json_number(value: float) -> bytes:
    # VictoriaMetrics' JSON reads ±1e309 as ±Inf; it has no NaN (Vigil stores finite values).
    if math.isnan(value):
        raise ValueError("VictoriaMetrics' JSON import cannot carry NaN")
    if math.isinf(value):
        return b"1e309" if value > 0 else b"-1e309"
    return orjson.dumps(value)


def _as_json(line: bytes) -> bytes:
    """An export line as JSON: VictoriaMetrics writes infinite values as bare ``+Inf``/``-Inf``
    (only in the values array; a label value may hold the same letters)."""
    head, values = line.split(b'"values":[', 1)
    values, tail = values.split(b"]", 1)
    values = values.replace(b"+Inf", b"1e309").replace(b"-Inf", b"-1e309")
    return head + b'"values":[' + values + b"]" + tail


def _selector(labels: dict) -> str:
    """A PromQL selector with an equality matcher per label."""
    return (
        "{"
        + ",".join(f"{key}={orjson.dumps(value).decode()}" for key, value in labels.items())
        + "}"
    )


class VictoriaMetricsEngine:
    name = "victoriametrics"

    def __init__(self, write_url: str, query_url: str):
        self.write_url, self.query_url = write_url, query_url
        self.http = urllib3.PoolManager(num_pools=4, maxsize=16, timeout=TIMEOUT, retries=False)

    # --- HTTP ------------------------------------------------------------------------------

    def _request(self, method: str, url: str, **kwargs) -> urllib3.BaseHTTPResponse:
        """``method url``, tried ATTEMPTS times while VictoriaMetrics is unreachable or answers
        5xx; VictoriaMetricsUnavailable when it never took it, VictoriaMetricsRefused on 4xx."""
        failure = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(RETRY_PAUSES_SECONDS[attempt - 1])
            try:
                response = self.http.request(method, url, **kwargs)
            except urllib3.exceptions.HTTPError as error:
                failure = f"{error.__class__.__name__}: {error}"
                continue
            if response.status < 400:
                return response
            if response.status < 500:
                raise VictoriaMetricsRefused(response.status, response.data)
            failure = f"HTTP {response.status}: {response.data[:200]!r}"
        logger.warning("VictoriaMetrics %s %s failed %d times: %s", method, url, ATTEMPTS, failure)
        raise VictoriaMetricsUnavailable(f"VictoriaMetrics unavailable: {failure}")

    def _form(self, path: str, fields: list[tuple[str, str]]) -> urllib3.BaseHTTPResponse:
        return self._request(
            "POST", f"{self.query_url}{path}", fields=fields, encode_multipart=False
        )

    def unavailable(self) -> str | None:
        for url in {self.write_url, self.query_url}:
            parts = urlsplit(url)
            try:
                response = self.http.request(
                    "GET", f"{parts.scheme}://{parts.netloc}/health", timeout=2.0
                )
            except urllib3.exceptions.HTTPError as error:
                return f"victoriametrics: {parts.netloc} {error.__class__.__name__}"
            if response.status != 200:
                return f"victoriametrics: {parts.netloc} answered {response.status}"
        return None

    def warnings(self) -> list[str]:
        """What works but needs a person's attention: without ``-dedup.minScrapeInterval`` on
        the node that answers queries, a batch an agent sends again is counted twice."""
        parts = urlsplit(self.query_url)
        try:
            response = self.http.request(
                "GET", f"{parts.scheme}://{parts.netloc}/flags", timeout=2.0
            )
        except urllib3.exceptions.HTTPError:
            return []
        if response.status != 200 or b"-dedup.minScrapeInterval" in response.data:
            return []
        return [
            f"VictoriaMetrics at {parts.netloc} runs without -dedup.minScrapeInterval: "
            "samples sent twice (an agent's retry) are kept twice; set it to 1ms"
        ]

    # --- writes ----------------------------------------------------------------------------

    def write_samples(self, rows: Sequence[tuple[int, datetime, float]]) -> int:
        """Send ``rows`` to VictoriaMetrics, one JSON line per series; returns only once it
        took them. Each series' newest value is kept on its inventory row, as with PostgreSQL.
        VictoriaMetrics cannot tell a replayed sample: all count as new (its
        ``-dedup.minScrapeInterval`` keeps one per timestamp)."""
        if not rows:
            return 0
        by_series: dict[int, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
        for series_id, ts, value in rows:
            stamps, values = by_series[series_id]
            stamps.append(_millis(ts))
            values.append(value)
        self.import_series(by_series)
        store.note_newest(rows)
        return len(rows)

    def import_series(self, samples: dict[int, tuple[Sequence[int], Sequence[float]]]) -> None:
        """Send each series' ``(timestamps in ms, values)`` in one ``/api/v1/import`` request;
        returns once VictoriaMetrics took them all."""
        labels = self.promql_labels(samples)
        lines = [
            b'{"metric":%b,"values":[%b],"timestamps":%b}'
            % (
                orjson.dumps(labels[series_id]),
                b",".join(map(_json_number, values)),
                orjson.dumps(list(stamps)),
            )
            for series_id, (stamps, values) in samples.items()
        ]
        self._request("POST", f"{self.write_url}/api/v1/import", body=b"\n".join(lines) + b"\n")

    def write_staleness_markers(
        self, instance_id, markers: Sequence[tuple[store.SeriesKey, datetime]]
    ) -> int:
        """Send Prometheus's staleness markers for these series of ``instance_id`` (JSON import
        has no NaN, so through remote write); a marker for a series never stored is dropped.
        Returns how many were sent."""
        names = sorted({key.name for key, _ in markers})
        known = {
            (row.name, store.labels_key(row.labels)): row.promql_labels
            for row in store.series_of([instance_id], names)
        }
        series = [
            (known[(key.name, key.labels_key)], [(STALENESS_MARKER, _millis(ts))])
            for key, ts in markers
            if (key.name, key.labels_key) in known
        ]
        if series:
            self._request(
                "POST",
                f"{self.write_url}/api/v1/write",
                body=bytes(cramjam.snappy.compress_raw(remote_write_request(series))),
                headers={
                    "Content-Encoding": "snappy",
                    "Content-Type": "application/x-protobuf",
                    "X-Prometheus-Remote-Write-Version": "0.1.0",
                },
            )
        return len(series)

    _LABELS: dict[int, dict] = {}
    LABELS_CACHE_SERIES = 1_000_000

    def promql_labels(self, series_ids: Iterable[int]) -> dict[int, dict]:
        """Each series' labels as PromQL sees them (a series id never changes its labels)."""
        wanted = set(series_ids)
        missing = wanted - self._LABELS.keys()
        if missing:
            if len(self._LABELS) + len(missing) > self.LABELS_CACHE_SERIES:
                self._LABELS.clear()
            for row in store.series_by_id(sorted(missing)):
                self._LABELS[row.series_id] = row.promql_labels
        return {sid: self._LABELS[sid] for sid in wanted if sid in self._LABELS}

    # --- raw reads -------------------------------------------------------------------------

    def _export(
        self,
        series: Sequence[store.SeriesRow],
        start_ms: int,
        end_ms: int,
        limit: int | None = None,
        markers: bool = False,
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """The samples of ``series`` with ``start_ms <= ts <= end_ms``, by series id, in time
        order; store.TooManySamples past ``limit``. Staleness markers (exported as null) come
        as NaN with ``markers``, else are left out, as the postgres engine reads them.
        Selectors name each (metric, instance) once; the exported series are told apart by
        their whole label set."""
        if not series:
            return {}
        by_labels = {store.labels_key(row.promql_labels): row.series_id for row in series}
        selectors = sorted(
            {_selector({"__name__": r.name, "instance": r.agent_id}) for r in series}
        )
        fields = [("match[]", selector) for selector in selectors]
        fields += [("start", f"{start_ms / 1000:.3f}"), ("end", f"{end_ms / 1000:.3f}")]
        response = self._form("/api/v1/export", fields)
        found: dict[int, tuple[list, list]] = defaultdict(lambda: ([], []))
        total = 0
        for line in response.data.splitlines():
            if not line:
                continue
            exported = orjson.loads(_as_json(line))
            series_id = by_labels.get(store.labels_key(exported["metric"]))
            if series_id is None:
                continue
            stamps, values = found[series_id]
            stamps.extend(exported["timestamps"])
            values.extend(exported["values"])
            total += len(exported["values"])
            if limit is not None and total > limit:
                raise store.TooManySamples(limit)
        arrays = {}
        for series_id, (stamps, values) in found.items():
            ts = np.array(stamps, dtype=np.int64)
            value = np.array(values, dtype=np.float64)
            order = np.argsort(ts, kind="stable")
            keep = (ts[order] >= start_ms) & (ts[order] <= end_ms)
            if not markers:
                keep &= ~np.isnan(value[order])
            arrays[series_id] = (ts[order][keep], value[order][keep])
        return arrays

    def sample_arrays(
        self, series_ids: Sequence[int], start_ms: int, end_ms: int, limit: int
    ) -> store.SampleArrays:
        arrays = self._export(store.series_by_id(series_ids), start_ms, end_ms, limit, markers=True)
        ids = sorted(arrays)
        if not ids:
            empty = np.empty(0, dtype=np.int64)
            return store.SampleArrays(empty, empty, np.empty(0, dtype=np.float64))
        return store.SampleArrays(
            np.repeat(ids, [len(arrays[sid][0]) for sid in ids]),
            np.concatenate([arrays[sid][0] for sid in ids]),
            np.concatenate([arrays[sid][1] for sid in ids]),
        )

    def _window(
        self, series: Sequence[store.SeriesRow], start: datetime, end: datetime
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Samples in ``[start, end)``, to the microsecond as the postgres engine bounds them."""
        arrays = self._export(series, _millis(start), _millis(end))
        end_ms = (end - EPOCH) / timedelta(milliseconds=1)
        return {sid: (ts[ts < end_ms], values[ts < end_ms]) for sid, (ts, values) in arrays.items()}

    # --- charts ----------------------------------------------------------------------------

    def points_of_series(
        self,
        series_ids: Sequence[int],
        start: datetime,
        end: datetime,
        buckets: int,
        resolution: str = "auto",
    ) -> dict[int, list[store.Bucket]]:
        """As the postgres engine's raw resolution, whatever ``resolution`` asks: with no rollups
        of its own, every chart is bucketed from the samples."""
        stride_ms = store._stride(start, end, buckets) // timedelta(milliseconds=1)
        origin = _millis(start)
        arrays = self._window(store.series_by_id(series_ids), start, end)
        points: dict[int, list[store.Bucket]] = {sid: [] for sid in series_ids}
        for sid, (ts, values) in arrays.items():
            bucket_of = (ts - origin) // stride_ms
            for bucket in np.unique(bucket_of):
                inside = values[bucket_of == bucket]
                points[sid].append(
                    store.Bucket(
                        EPOCH + timedelta(milliseconds=int(origin + bucket * stride_ms)),
                        float(inside.min()),
                        float(inside.max()),
                        float(inside.sum() / len(inside)),
                        float(inside[-1]),
                        len(inside),
                    )
                )
        return points

    def series_points(
        self, series_id: int, start: datetime, end: datetime, buckets: int, resolution: str = "auto"
    ) -> list[store.Bucket]:
        return self.points_of_series([series_id], start, end, buckets, resolution)[series_id]

    def metric_trends(
        self,
        names: Sequence[str],
        start: datetime,
        end: datetime,
        buckets: int,
        instance_ids: Sequence | None = None,
    ) -> dict[tuple[object, str], list[tuple[datetime, float]]]:
        series = store.series_of(instance_ids, names)
        arrays = self._window(series, start, end)
        stride_ms = store._stride(start, end, buckets) // timedelta(milliseconds=1)
        origin = _millis(start)
        sums: dict[tuple[object, str], dict[int, list[float]]] = defaultdict(dict)
        for row in series:
            if row.series_id not in arrays:
                continue
            ts, values = arrays[row.series_id]
            per_bucket = sums[(row.instance_id, row.name)]
            for bucket, value in zip((ts - origin) // stride_ms, values, strict=True):
                total = per_bucket.setdefault(int(bucket), [0.0, 0])
                total[0] += value
                total[1] += 1
        return {
            key: [
                (EPOCH + timedelta(milliseconds=origin + bucket * stride_ms), total / count)
                for bucket, (total, count) in sorted(per_bucket.items())
            ]
            for key, per_bucket in sums.items()
        }

    def samples_per_second(
        self, window: timedelta = timedelta(minutes=1), now: datetime | None = None
    ) -> float:
        now = now or datetime.now(UTC)
        seconds = int(window.total_seconds())
        answer = self.instant_query(
            f'sum(count_over_time({{__name__!=""}}[{seconds}s]))', _millis(now)
        )
        result = answer["result"]
        return float(result[0]["value"][1]) / seconds if result else 0.0

    # --- window aggregates (threshold rules) ------------------------------------------------

    def window_aggregates(
        self, series_ids: Sequence[int], start: datetime, end: datetime, aggregation: str
    ) -> dict[int, float | None]:
        arrays = self._window(store.series_by_id(series_ids), start, end)
        return {
            sid: _aggregate(aggregation, *arrays.get(sid, (np.empty(0), np.empty(0))))
            for sid in series_ids
        }

    def window_values(
        self,
        name: str,
        matchers: Sequence[dict],
        instance_ids: Sequence | None,
        start: datetime,
        end: datetime,
        aggregation: str,
    ) -> list[store.SeriesValue]:
        """As the postgres engine: over ``(start, end]``, a row for every matching series."""
        series = store.series_named(name, matchers, instance_ids)
        arrays = self._export(series, _millis(start), _millis(end))
        start_ms = (start - EPOCH) / timedelta(milliseconds=1)
        found = []
        for row in series:
            ts, values = arrays.get(row.series_id, (np.empty(0), np.empty(0)))
            value = _aggregate(aggregation, ts[ts > start_ms], values[ts > start_ms])
            found.append(store.SeriesValue(row.instance_id, row.series_id, row.labels, value))
        return found

    # --- the seed API's samples --------------------------------------------------------------

    def recent_samples(
        self,
        instance_ids: Sequence | None = None,
        names: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
    ) -> list[store.Sample]:
        series = store.series_of(instance_ids, names)
        end = end or datetime.now(UTC) + timedelta(days=1)
        starts = [start] if start else [end - window for window in RECENT_WINDOWS]
        for first in starts:
            samples = self._samples(series, self._window(series, first, end))
            if len(samples) >= limit:
                break
        samples.sort(key=lambda sample: (-_millis(sample.ts), sample.series_id))
        return samples[:limit]

    def _samples(
        self, series: Sequence[store.SeriesRow], arrays: dict[int, tuple[np.ndarray, np.ndarray]]
    ) -> list[store.Sample]:
        return [
            store.Sample(
                row.series_id,
                row.instance_id,
                row.name,
                row.labels,
                row.unit,
                EPOCH + timedelta(milliseconds=int(ts)),
                float(value),
            )  # fmt: skip
            for row in series
            if row.series_id in arrays
            for ts, value in zip(*arrays[row.series_id], strict=True)
        ]

    def sample_at(self, series_id: int, ts: datetime) -> store.Sample | None:
        series = store.series_by_id([series_id])
        at = _millis(ts)
        samples = self._samples(series, self._export(series, at, at))
        return next((sample for sample in samples if sample.ts == ts), None)

    def metric_aggregates(
        self,
        start: datetime,
        end: datetime,
        instance_ids: Sequence | None = None,
        names: Sequence[str] | None = None,
    ) -> list[store.MetricAggregate]:
        series = store.series_of(instance_ids, names)
        arrays = self._window(series, start, end)
        grouped: dict[tuple[object, str], list] = defaultdict(list)
        for row in series:
            if row.series_id in arrays and len(arrays[row.series_id][0]):
                grouped[(row.instance_id, row.name)].append(arrays[row.series_id])
        aggregates = []
        by_instance_and_name = sorted(
            grouped.items(), key=lambda item: (str(item[0][0]), item[0][1])
        )
        for (instance_id, name), parts in by_instance_and_name:
            ts = np.concatenate([part[0] for part in parts])
            values = np.concatenate([part[1] for part in parts])
            aggregates.append(
                store.MetricAggregate(
                    instance_id,
                    name,
                    len(values),
                    float(values.min()),
                    float(values.max()),
                    float(values.sum() / len(values)),
                    float(values[np.argmax(ts)]),
                )  # fmt: skip
            )
        return aggregates

    # --- whole store ---------------------------------------------------------------------------

    def count_samples(self, series_ids: Sequence[int] | None = None) -> int:
        if series_ids is None:
            series = store.series_of(None, None)
        else:
            series = store.series_by_id(series_ids)
        arrays = self._export(series, 0, _millis(datetime.now(UTC) + timedelta(days=1)))
        return sum(len(ts) for ts, _ in arrays.values())

    def delete_samples_of_instance(self, instance_id) -> int:
        """Delete the instance's series in VictoriaMetrics (through vmselect's ``/delete/`` path
        in a cluster); the count of deleted samples is not known there, so 0."""
        agent_ids = Instance.objects.filter(pk=instance_id).values_list("agent_id", flat=True)
        agent_id = agent_ids.first()
        store.delete_samples_of_instance(instance_id)
        if agent_id:
            base = self.query_url.replace("/select/", "/delete/", 1)
            self._request(
                "POST",
                f"{base}/api/v1/admin/tsdb/delete_series",
                fields=[("match[]", _selector({"instance": agent_id}))],
                encode_multipart=False,
            )
        return 0

    # --- PromQL ----------------------------------------------------------------------------

    def instant_query(self, text: str, at_ms: int, timeout_seconds: float | None = None) -> dict:
        """``data`` of VictoriaMetrics' answer to an instant query at ``at_ms``."""
        fields = [("query", text), ("time", f"{at_ms / 1000:.3f}")]
        return self._promql("/api/v1/query", fields, timeout_seconds)

    def range_query(
        self, text: str, start_ms: int, end_ms: int, step_ms: int, timeout_seconds: float | None
    ) -> dict:
        fields = [
            ("query", text),
            ("start", f"{start_ms / 1000:.3f}"),
            ("end", f"{end_ms / 1000:.3f}"),
            ("step", f"{step_ms}ms"),
        ]
        return self._promql("/api/v1/query_range", fields, timeout_seconds)

    def _promql(self, path: str, fields: list, timeout_seconds: float | None) -> dict:
        if timeout_seconds is not None:
            fields.append(("timeout", f"{max(timeout_seconds, 0.001):.3f}s"))
        # Answers for recent times are not cached: a sample just written must show.
        fields.append(("nocache", "1"))
        return orjson.loads(self._form(path, fields).data)["data"]


def _aggregate(aggregation: str, ts: np.ndarray, values: np.ndarray) -> float | None:
    """``aggregation`` (a key of store.WINDOW_AGGREGATES) over one series' window, as the SQL
    there computes it."""
    if aggregation == "count":
        return float(len(values))
    if not len(values):
        return None
    if aggregation == "last":
        return float(values[-1])
    if aggregation == "avg":
        return float(values.sum() / len(values))
    if aggregation == "min":
        return float(values.min())
    if aggregation == "max":
        return float(values.max())
    if aggregation == "sum":
        return float(values.sum())
    if aggregation == "p95":
        return float(np.percentile(values, 95))
    if aggregation == "rate":
        span = (ts[-1] - ts[0]) / 1000
        if len(values) < 2 or span == 0:
            return None
        return max(float(values[-1] - values[0]), 0.0) / span
    raise ValueError(f"unknown aggregation {aggregation!r}")
