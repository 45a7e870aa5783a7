"""The Prometheus HTTP query API (``/prometheus/api/v1/``), so Grafana's Prometheus data
source and ``promtool query`` can read Vigil.

Views take GET or form-encoded POST and answer Prometheus's JSON shapes and error types. They
do not authenticate: the URL configuration wraps them (this package depends on ``instances``
only).
"""

import math
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import promql_parser
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from instances import store
from instances.formats import EPOCH
from query import engine
from query.functions import format_value
from query.values import (
    LABEL_NAME_PATTERN,
    QueryError,
    RangeVector,
    Scalar,
    String,
    Vector,
)

# The PromQL dialect Vigil answers: Prometheus's 2.x line (Grafana reads features off this).
COMPATIBLE_VERSION = "2.42.0"
# Without start/end, series and label look-ups cover this much recent history.
DEFAULT_LOOKUP_WINDOW = timedelta(hours=6)
# As Prometheus's MinTime / MaxTime, the bounds an API time may take.
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


def _json(body: dict, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(body), status=status, content_type="application/json")


def error_response(error: QueryError) -> HttpResponse:
    return _json(
        {"status": "error", "errorType": error.error_type, "error": str(error)}, error.status
    )


def _success(data) -> HttpResponse:
    return _json({"status": "success", "data": data})


def _param(request: HttpRequest, name: str) -> str | None:
    source = request.POST if request.method == "POST" else request.GET
    value = source.get(name)
    return value if value not in (None, "") else None


def _params(request: HttpRequest, name: str) -> list[str]:
    source = request.POST if request.method == "POST" else request.GET
    return source.getlist(name)


def parse_time(text: str, name: str) -> int:
    """An API time (Unix seconds, or RFC 3339) in milliseconds."""
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise QueryError(
                f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp'
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if not MIN_TIME <= moment <= MAX_TIME:
            raise QueryError(f'invalid parameter "{name}": timestamp out of range') from None
        return (moment - EPOCH) // timedelta(milliseconds=1)
    if not math.isfinite(seconds) or not MIN_TIME.timestamp() <= seconds <= MAX_TIME.timestamp():
        raise QueryError(f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp')
    return round(seconds * 1000)


def parse_duration(text: str, name: str) -> int:
    """A duration (seconds, or PromQL's 1m30s) in milliseconds."""
    try:
        seconds = float(text)
    except ValueError:
        try:
            return engine.ms(promql_parser.parse_duration(text))
        except (ValueError, TypeError, OverflowError):
            raise QueryError(
                f'invalid parameter "{name}": cannot parse "{text}" to a valid duration'
            ) from None
    if not math.isfinite(seconds) or seconds > 2**53 / 1000:
        raise QueryError(f'invalid parameter "{name}": cannot parse "{text}" to a valid duration')
    return round(seconds * 1000)


def _timeout(request: HttpRequest) -> float | None:
    text = _param(request, "timeout")
    if text is None:
        return None
    return parse_duration(text, "timeout") / 1000


def _stamp(ms: int) -> float:
    return ms / 1000


def _metric(labels: dict) -> dict:
    return dict(sorted(labels.items()))


def _vector_result(result: Vector, step: int, at_ms: int) -> list[dict]:
    rows = []
    for labels, values, present in zip(result.labels, result.values, result.present, strict=True):
        if present[step]:
            rows.append(
                {"metric": _metric(labels), "value": [_stamp(at_ms), format_value(values[step])]}
            )
    return rows


def _raw_samples(result: RangeVector) -> list[dict]:
    """An instant query of a range selector: each series' samples in the window."""
    rows = []
    for series in result.series:
        first, last = result.windows(series)
        begin, end = int(first[0]), int(last[0])
        if end > begin:
            rows.append({
                "metric": _metric(series.labels),
                "values": [
                    [_stamp(int(ts)), format_value(value)]
                    for ts, value in zip(
                        series.ts[begin:end], series.values[begin:end], strict=True
                    )
                ],
            })  # fmt: skip
    return rows


@csrf_exempt
@require_http_methods(["GET", "POST"])
def query(request: HttpRequest) -> HttpResponse:
    try:
        text = _param(request, "query")
        if text is None:
            raise QueryError('invalid parameter "query": query is empty')
        at_text = _param(request, "time")
        at_ms = parse_time(at_text, "time") if at_text else int(time.time() * 1000)
        result = engine.evaluate(text, at_ms, at_ms, 1, _timeout(request), allow_range=True)
    except QueryError as error:
        return error_response(error)
    if isinstance(result, Scalar):
        data = {"resultType": "scalar", "result": [_stamp(at_ms), format_value(result.values[0])]}
    elif isinstance(result, String):
        data = {"resultType": "string", "result": [_stamp(at_ms), result.value]}
    elif isinstance(result, RangeVector):
        data = {"resultType": "matrix", "result": _raw_samples(result)}
    else:
        data = {"resultType": "vector", "result": _vector_result(result, 0, at_ms)}
    return _success(data)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def query_range(request: HttpRequest) -> HttpResponse:
    try:
        text = _param(request, "query")
        if text is None:
            raise QueryError('invalid parameter "query": query is empty')
        start_ms = parse_time(_required(request, "start"), "start")
        end_ms = parse_time(_required(request, "end"), "end")
        step_ms = parse_duration(_required(request, "step"), "step")
        result = engine.evaluate(text, start_ms, end_ms, step_ms, _timeout(request))
    except QueryError as error:
        return error_response(error)
    times = engine.step_times(start_ms, end_ms, step_ms)
    if isinstance(result, Scalar):
        result = Vector([{}], result.values[None, :], np.ones((1, len(times)), dtype=bool))
    if isinstance(result, String):
        return error_response(
            QueryError(
                'invalid expression type "string" for range query, must be Scalar or instant Vector'
            )
        )
    rows = []
    for labels, values, present in zip(result.labels, result.values, result.present, strict=True):
        rows.append({
            "metric": _metric(labels),
            "values": [
                [_stamp(int(ts)), format_value(value)]
                for ts, value in zip(times[present], values[present], strict=True)
            ],
        })  # fmt: skip
    rows.sort(key=lambda row: sorted(row["metric"].items()))
    return _success({"resultType": "matrix", "result": rows})


def _required(request: HttpRequest, name: str) -> str:
    value = _param(request, name)
    if value is None:
        raise QueryError(f'invalid parameter "{name}": missing')
    return value


def _selectors(request: HttpRequest, required: bool) -> list[list[dict]]:
    texts = _params(request, "match[]")
    if required and not texts:
        raise QueryError("no match[] parameter provided")
    selectors = []
    for text in texts:
        expression = engine.parse(text)
        if not isinstance(expression, promql_parser.VectorSelector):
            raise QueryError(f'invalid parameter "match[]": {text} is not a series selector')
        selectors.append(engine.matchers_of(expression))
    return selectors


def _since(request: HttpRequest) -> datetime:
    """The start of a look-up: ``start``, else DEFAULT_LOOKUP_WINDOW back from ``end``/now."""
    start = _param(request, "start")
    if start is not None:
        return EPOCH + timedelta(milliseconds=parse_time(start, "start"))
    end = _param(request, "end")
    end_ms = parse_time(end, "end") if end is not None else int(time.time() * 1000)
    return EPOCH + timedelta(milliseconds=end_ms) - DEFAULT_LOOKUP_WINDOW


@csrf_exempt
@require_http_methods(["GET", "POST"])
def series(request: HttpRequest) -> HttpResponse:
    try:
        selectors = _selectors(request, required=True)
        limit = _series_limit(request)
        found = store.match_series(selectors, since=_since(request), limit=limit + 1)
    except QueryError as error:
        return error_response(error)
    answer = {"status": "success", "data": [_metric(item.labels) for item in found[:limit]]}
    if len(found) > limit:
        answer["warnings"] = ["results truncated due to limit"]
    return _json(answer)


def _series_limit(request: HttpRequest) -> int:
    """``limit`` (0 or none: the most there is), never above ``PROMQL_MAX_SERIES_LISTED``: a
    selector matching everything must not list every series there is."""
    most = settings.PROMQL_MAX_SERIES_LISTED
    text = _param(request, "limit") or "0"
    if not text.isdigit():
        raise QueryError(f'invalid parameter "limit": cannot parse "{text}" to a valid number')
    return min(int(text) or most, most)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def labels(request: HttpRequest) -> HttpResponse:
    try:
        names = store.label_names(_selectors(request, required=False), since=_since(request))
    except QueryError as error:
        return error_response(error)
    return _success(names)


@csrf_exempt
@require_http_methods(["GET"])
def label_values(request: HttpRequest, name: str) -> HttpResponse:
    if not LABEL_NAME_PATTERN.match(name):
        return error_response(QueryError(f'invalid label name: "{name}"'))
    try:
        values = store.label_values(
            name, _selectors(request, required=False), since=_since(request)
        )
    except QueryError as error:
        return error_response(error)
    return _success(values)


@require_http_methods(["GET"])
def metadata(request: HttpRequest) -> HttpResponse:
    """Per metric name its unit, and its type where the name says it (Vigil keeps none)."""
    wanted = request.GET.get("metric") or None
    entries: dict[str, list[dict]] = {}
    for name, unit in store.metric_units(wanted):
        kind = "counter" if name.endswith("_total") else "unknown"
        entries[name] = [{"type": kind, "help": "", "unit": unit}]
    return _success(entries)


@require_http_methods(["GET"])
def buildinfo(request: HttpRequest) -> HttpResponse:
    return _success({
        "version": COMPATIBLE_VERSION,
        "revision": "vigil",
        "branch": "",
        "buildUser": "vigil",
        "buildDate": "",
        "goVersion": "",
    })  # fmt: skip
