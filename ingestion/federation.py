"""``GET /federate``: Vigil's latest values for an existing Prometheus to scrape.

``match[]`` takes series selectors in Prometheus's syntax, this subset of it::

    node_load1
    node_load1{job="node", mode!="idle"}
    {__name__=~"node_.*", instance="web-1"}

Label matchers are ``=``, ``!=``, ``=~`` and ``!~`` (regexes match whole values, as in
Prometheus); ``instance`` is the instance's agent id and ``__name__`` the metric name.
"""

import re
from datetime import timedelta

MATCHER_OPS = ("=~", "!~", "!=", "=")
# Prometheus's lookback: series with no sample this recent are not federated.
LOOKBACK = timedelta(minutes=5)
MAX_SELECTORS = 20

_NAME = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*")
_LABEL = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'')
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def parse_selector(text: str) -> list[dict]:
    """The matchers (``{"label", "op", "value"}``) of one selector; ValueError if malformed."""
    matchers, position = [], 0
    name = _NAME.match(text)
    if name:
        matchers.append({"label": "__name__", "op": "=", "value": name.group(1)})
        position = name.end()
    if position < len(text) and text[position] == "{":
        position = _parse_braces(text, position + 1, matchers)
    if text[position:].strip():
        raise ValueError(
            f"unexpected {text[position : position + 20]!r} in selector {text[:100]!r}"
        )
    for matcher in matchers:
        if matcher["op"] in ("=~", "!~"):
            try:
                re.compile(matcher["value"])
            except re.error as error:
                raise ValueError(f"bad regex {matcher['value'][:50]!r}: {error}") from None
    if not any(_matches_something(matcher) for matcher in matchers):
        raise ValueError(f"selector {text[:100]!r} must name a metric or match a non-empty label")
    return matchers


def _parse_braces(text: str, position: int, matchers: list) -> int:
    while True:
        closing = re.compile(r"\s*\}").match(text, position)
        if closing:
            return closing.end()
        label = _LABEL.match(text, position)
        if not label:
            raise ValueError(f"expected a label matcher at {text[position : position + 20]!r}")
        value = _STRING.match(text, label.end())
        if not value:
            raise ValueError(f"expected a quoted value for label {label.group(1)!r}")
        raw = value.group(1) if value.group(1) is not None else value.group(2)
        matchers.append({"label": label.group(1), "op": label.group(2), "value": _unquote(raw)})
        position = value.end()
        separator = re.compile(r"\s*,").match(text, position)
        if separator:
            position = separator.end()
        elif not re.compile(r"\s*\}").match(text, position):
            raise ValueError(f"expected ',' or '}}' at {text[position : position + 20]!r}")


def _unquote(raw: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), raw)


def _matches_something(matcher: dict) -> bool:
    """A matcher that the empty string fails (Prometheus refuses selectors of only those)."""
    if matcher["op"] == "=":
        return matcher["value"] != ""
    if matcher["op"] == "=~":
        return re.fullmatch(matcher["value"], "") is None
    return matcher["op"] == "!=" and matcher["value"] == ""
