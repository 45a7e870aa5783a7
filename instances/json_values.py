"""Free-form JSON the API stores (instance metadata, labels): what is accepted, how it is read
back, and how a stored value is always written.

PostgreSQL's jsonb keeps numbers of any size and any nesting, but the API's JSON writer
(orjson) writes only 64-bit integers and 255 levels, and jsonb itself refuses NUL characters and
lone surrogates. So values are checked at the edge (``check_json``, ``check_text``); jsonb gives
a large float back as its digits (1e20 as 100000000000000000000), so ``StoredJsonDecoder`` reads
those as floats again; and a value stored before the checks existed is written as a string
(``writable_json``) rather than failing a whole list.
"""

import json
import re

import orjson

MAX_DEPTH = 16
MAX_BYTES = 64 * 1024
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# orjson also writes unsigned 64-bit integers; checks keep to signed ones, as most readers do.
WRITABLE_INT_MIN, WRITABLE_INT_MAX = INT64_MIN, 2**64 - 1
# Below orjson's own recursion limit (255), with room for the envelope around a stored value.
WRITABLE_DEPTH = 200
UNSTORABLE_CHARACTER = re.compile("[\x00\ud800-\udfff]")


def check_text(text: str) -> str:
    """``text`` if PostgreSQL can store it, else ValueError: no NUL, no lone surrogate."""
    if UNSTORABLE_CHARACTER.search(text):
        raise ValueError("must not contain NUL characters or lone surrogates")
    return text


def check_json(value):
    """``value`` if it is JSON the API can store and write, else ValueError saying where.

    Numbers are 64-bit integers or finite floats, nesting is at most MAX_DEPTH levels, keys and
    strings hold no NUL or lone surrogate, and the whole is at most MAX_BYTES of JSON.
    """
    _check_json(value, "", 1)
    size = len(orjson.dumps(value))
    if size > MAX_BYTES:
        raise ValueError(f"is {size} bytes of JSON; at most {MAX_BYTES} accepted")
    return value


def _check_json(value, path: str, depth: int) -> None:
    if isinstance(value, dict | list):
        if depth > MAX_DEPTH:
            raise ValueError(f"at {path or '/'}: nested deeper than {MAX_DEPTH} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            where = f"{path}/{key}"
            if isinstance(key, str) and UNSTORABLE_CHARACTER.search(key):
                raise ValueError(f"at {where!r}: a key contains a NUL or a lone surrogate")
            _check_json(item, where, depth + 1)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"at {path or '/'}: integers must fit in 64 bits (signed)")
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"at {path or '/'}: numbers must be finite")
    elif isinstance(value, str):
        if UNSTORABLE_CHARACTER.search(value):
            raise ValueError(f"at {path or '/'}: a string contains a NUL or a lone surrogate")
    else:
        raise ValueError(f"at {path or '/'}: {type(value).__name__} is not JSON")


class StoredJsonDecoder(json.JSONDecoder):
    """Reads stored jsonb: an integer beyond 64 bits is read as a float, which is what it was
    sent as (the checks refuse such integers) or at least what every JSON reader can take."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, parse_int=read_integer, **kwargs)


def read_integer(digits: str) -> int | float:
    if len(digits) < 19:  # within 64 bits whatever the digits
        return int(digits)
    if len(digits) <= 20 and INT64_MIN <= (value := int(digits)) <= INT64_MAX:
        return value
    return float(digits)


def writable_json(value) -> tuple[object, list[str]]:
    """``value`` with every part the API's JSON writer cannot write replaced by a string, and
    the paths of those parts (none: ``value`` itself, untouched)."""
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        replaced: list[str] = []
        return _writable(value, "", 1, replaced), replaced
    return value, []


def _writable(value, path: str, depth: int, replaced: list[str]):
    if isinstance(value, dict | list | tuple):
        if depth > WRITABLE_DEPTH:
            replaced.append(path or "/")
            return _json_text(value)
        # Loops, not comprehensions: one stack frame per level of nesting.
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        parts = []
        for key, item in pairs:
            parts.append((key, _writable(item, f"{path}/{key}", depth + 1, replaced)))
        if isinstance(value, dict):
            return {_writable_text(str(key)): item for key, item in parts}
        return [item for _, item in parts]
    if isinstance(value, bool | float) or value is None:
        return value  # orjson writes NaN and infinity as null
    if isinstance(value, int):
        if WRITABLE_INT_MIN <= value <= WRITABLE_INT_MAX:
            return value
        replaced.append(path or "/")
        return str(value)
    if isinstance(value, str):
        writable = _writable_text(value)
        if writable != value:
            replaced.append(path or "/")
        return writable
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        replaced.append(path or "/")
        return str(value)
    return value


def _json_text(value) -> str:
    """A subtree nested too deep for orjson, as JSON text (Python's encoder has no such limit
    but the interpreter's recursion limit)."""
    try:
        return json.dumps(value, default=str)
    except RecursionError:
        return "(nested too deep to write)"


def _writable_text(text: str) -> str:
    # A lone surrogate cannot be UTF-8: write it as its escape, e.g. "\\ud800".
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
