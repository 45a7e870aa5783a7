"""Comparing the answers of two Prometheus query APIs (Vigil's and a real Prometheus's)."""

import math
import urllib.error
import urllib.request

import orjson

RELATIVE_TOLERANCE = 1e-9


def unix(ms: int) -> str:
    return f"{ms / 1000:.3f}"


def get_json(url: str, headers: dict | None = None) -> dict:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return orjson.loads(error.read())


def results(body: dict):
    """A comparable form of a query answer: {labels: [(t, value), ...]} or an error."""
    if body.get("status") != "success":
        return ("error", body.get("errorType"))
    data = body["data"]
    if data["resultType"] in ("scalar", "string"):
        return {(): [tuple(data["result"])]}
    out = {}
    for item in data["result"]:
        points = item.get("values") or [item["value"]]
        out[tuple(sorted(item["metric"].items()))] = [(t, v) for t, v in points]
    return out


def same_value(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return math.isclose(x, y, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)


def differences(ours, theirs) -> str | None:
    if isinstance(ours, tuple) or isinstance(theirs, tuple):
        return None if ours == theirs else f"vigil {ours!r} prometheus {theirs!r}"
    if set(ours) != set(theirs):
        only_ours = sorted(set(ours) - set(theirs))[:2]
        only_theirs = sorted(set(theirs) - set(ours))[:2]
        return f"label sets differ: only vigil {only_ours}, only prometheus {only_theirs}"
    for labels, points in theirs.items():
        mine = ours[labels]
        if [t for t, _ in mine] != [t for t, _ in points]:
            return f"{dict(labels)}: steps differ: vigil {mine[:3]} prometheus {points[:3]}"
        for (t, a), (_, b) in zip(mine, points, strict=True):
            if not same_value(a, b):
                return f"{dict(labels)} at {t}: vigil {a} prometheus {b}"
    return None
