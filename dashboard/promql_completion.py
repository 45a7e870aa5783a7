"""What Explore's query box suggests at the cursor: metric (and function) names where a name is
being typed, label names after ``{`` or inside ``by (...)``, a label's values after ``label="``.

Each suggestion says which text just before the cursor it replaces, so the page's script splices
it in with its own string offsets.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from instances import store
from query.aggregations import SIMPLE as SIMPLE_AGGREGATIONS
from query.functions import FUNCTIONS
from query.values import METRIC_NAME

MAX_SUGGESTIONS = 20
AGGREGATIONS = SIMPLE_AGGREGATIONS | {"topk", "bottomk", "quantile", "count_values"}
# Before "(": the clauses whose parentheses hold label names.
LABEL_LIST_CLAUSES = {"by", "without", "on", "ignoring", "group_left", "group_right"}

NAME_BEING_TYPED = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_BEING_TYPED = re.compile(r"(?:^|[{,])\s*([a-zA-Z_][a-zA-Z0-9_]*)?$")
LABEL_AND_OPERATOR = re.compile(r"(?:^|[{,])\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*$")
# Complete matchers earlier in the braces narrow the values; regexes are left out, since a
# half-typed one is not a valid pattern.
EXACT_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(!=|=)(?![~])\s*"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Suggestion:
    text: str  # what the list shows
    kind: str  # metric, function, label, value
    insert: str  # what replaces ``replaces``
    replaces: str  # the text just before the cursor it replaces
    skip: str = ""  # text just after the cursor the insert makes redundant (a closing quote)


@dataclass
class Scan:
    """Where the cursor stands, from one pass over the text before it."""

    quote: str = ""  # the open string's quote character, if inside one
    quote_at: int = -1
    brace_at: int = -1  # the open selector brace, if inside one
    in_range: bool = False  # inside [...]
    clause: str = ""  # the word before the innermost open parenthesis


def scan(before: str) -> Scan:
    state = Scan()
    clauses: list[str] = []
    index = 0
    while index < len(before):
        char = before[index]
        if state.quote:
            if char == "\\" and state.quote != "`":
                index += 1
            elif char == state.quote:
                state.quote = ""
        elif char in "\"'`":
            state.quote, state.quote_at = char, index
        elif char == "#":
            newline = before.find("\n", index)
            index = len(before) if newline < 0 else newline
        elif char == "{":
            state.brace_at = index
        elif char == "}":
            state.brace_at = -1
        elif char == "[":
            state.in_range = True
        elif char == "]":
            state.in_range = False
        elif char == "(":
            word = re.search(r"([a-zA-Z_]+)\s*$", before[:index])
            clauses.append(word.group(1) if word else "")
        elif char == ")" and clauses:
            clauses.pop()
        index += 1
    state.clause = clauses[-1] if clauses else ""
    return state


def suggestions(text: str, cursor: int, since: datetime | None) -> list[Suggestion]:
    """What to offer at ``cursor`` (an offset in characters) of ``text``, for series with a
    sample since ``since``."""
    before = text[: max(0, min(cursor, len(text)))]
    after = text[len(before) :]
    state = scan(before)
    if state.in_range:
        return []
    if state.brace_at >= 0:
        return _inside_braces(before, after, state, since)
    if state.quote:
        return []
    if state.clause in LABEL_LIST_CLAUSES:
        typed = re.search(r"[a-zA-Z_][a-zA-Z0-9_]*$", before)
        partial = typed.group(0) if typed else ""
        names = [name for name in store.label_names([], since) if name != METRIC_NAME]
        return _matching(partial, names, lambda name: Suggestion(name, "label", name, partial))
    typed = NAME_BEING_TYPED.search(before)
    if typed is None:
        return []
    partial = typed.group(0)
    metrics = _matching(
        partial,
        store.label_values(METRIC_NAME, [], since),
        lambda name: Suggestion(name, "metric", name, partial),
    )
    calls = _matching(
        partial,
        sorted(AGGREGATIONS | set(FUNCTIONS)),
        lambda name: Suggestion(name, "function", name + "(", partial),
    )
    return (metrics + calls)[:MAX_SUGGESTIONS]


def _inside_braces(before: str, after: str, state: Scan, since) -> list[Suggestion]:
    opened = before[state.brace_at + 1 : state.quote_at if state.quote else len(before)]
    matchers = _context_matchers(before[: state.brace_at], opened)
    labelled = LABEL_AND_OPERATOR.search(opened)
    if state.quote:
        # A value being typed: replace it and close its quote.
        if labelled is None or state.quote == "`":
            return []
        partial = before[state.quote_at + 1 :]
        quote = state.quote
        skip = quote if after.startswith(quote) else ""
        return _values(
            labelled.group(1),
            matchers,
            since,
            partial,
            lambda value: _escaped(value, quote) + quote,
            skip,
        )
    if labelled is not None:
        # Right after the operator: the value comes with its quotes.
        return _values(
            labelled.group(1), matchers, since, "", lambda value: '"' + _escaped(value, '"') + '"'
        )
    typed = LABEL_BEING_TYPED.search(opened)
    if typed is None:
        return []
    partial = typed.group(1) or ""
    used = {matcher["label"] for matcher in matchers}
    names = [
        name for name in store.label_names([matchers], since) if name not in used | {METRIC_NAME}
    ]
    return _matching(partial, names, lambda name: Suggestion(name, "label", name + '="', partial))


def _context_matchers(before_brace: str, opened: str) -> list[dict]:
    """The metric name before the brace and the exact matchers already typed inside it."""
    matchers = []
    name = NAME_BEING_TYPED.search(before_brace.rstrip())
    if name:
        matchers.append({"label": METRIC_NAME, "op": "=", "value": name.group(0)})
    # Only matchers complete before the one at the cursor.
    finished = opened[: opened.rfind(",") + 1] if "," in opened else ""
    for label, op, value in EXACT_MATCHER.findall(finished):
        if "\x00" not in value:  # PostgreSQL text cannot hold it
            matchers.append({"label": label, "op": op, "value": _unescaped(value)})
    return matchers


def _values(label, matchers, since, partial, insert_of, skip="") -> list[Suggestion]:
    others = [matcher for matcher in matchers if matcher["label"] != label]
    values = store.label_values(label, [others], since)
    return _matching(
        partial, values, lambda value: Suggestion(value, "value", insert_of(value), partial, skip)
    )


def _matching(partial: str, candidates: list[str], suggestion) -> list[Suggestion]:
    """Candidates starting with ``partial`` first, then those containing it (ignoring case);
    none when the only one is what is typed already."""
    wanted = partial.lower()
    starting = [one for one in candidates if one.lower().startswith(wanted)]
    containing = [one for one in candidates if wanted in one.lower() and one not in starting]
    found = (starting + containing)[:MAX_SUGGESTIONS]
    if found == [partial]:
        return []
    return [suggestion(one) for one in found]


def _escaped(value: str, quote: str) -> str:
    return value.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n")


def _unescaped(value: str) -> str:
    return re.sub(r"\\(.)", lambda match: {"n": "\n", "t": "\t"}.get(match[1], match[1]), value)
