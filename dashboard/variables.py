"""Template variables: their choices, the values picked (``var-<name>`` in the URL, as Grafana
writes it, so a link reproduces the view) and their interpolation into a panel's PromQL.

A variable is a dict in ``Dashboard.variables``::

    {"name": "instance", "kind": "query", "query": "label_values(cpu_usage, instance)",
     "multi": true, "include_all": true}
    {"name": "mode", "kind": "custom", "options": ["user", "system"]}

Besides them, ``$__interval`` (the panel's step), ``$__rate_interval`` (a rate window for that
step) and ``$__range`` (the time range) are always defined.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from dashboard import query_charts
from instances import store
from query import engine
from query.values import QueryError

ALL = "$__all"
LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?:(?P<metric>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*$"
)
# $name, ${name} and ${name:format} (the format is accepted and ignored: values are escaped by
# where they stand).
REFERENCE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
# A reference inside the string of a regex matcher (=~ or !~) whose quote is still open.
INSIDE_REGEX_MATCHER = re.compile(r'[=!]~\s*"(?:[^"\\]|\\.)*$')
RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


@dataclass(frozen=True)
class Variable:
    name: str
    options: list[str]
    selected: list[str]
    multi: bool
    include_all: bool

    @property
    def all_selected(self) -> bool:
        return self.selected == [ALL]

    def values(self) -> list[str]:
        return self.options if self.all_selected else self.selected


def options_of(definition: dict, since: datetime | None) -> list[str]:
    """A variable's choices: a custom list, or ``label_values([metric,] label)`` over the series
    seen since ``since``. Raises QueryError for a query it cannot read."""
    if definition.get("kind") == "custom":
        return [str(option) for option in definition.get("options", [])]
    found = LABEL_VALUES.match(definition.get("query", ""))
    if not found:
        raise QueryError(f"variable {definition.get('name')}: expected label_values(...)")
    selectors = [[]]
    if found["metric"]:
        selectors = [engine.matchers_of(engine.parse(found["metric"]))]
    return store.label_values(found["label"], selectors, since)


def resolve(definitions: list[dict], query, since: datetime | None) -> list[Variable]:
    """Each variable with its choices and what ``query`` (the URL's) picks: unknown values are
    dropped; nothing picked means "All" where allowed, else the first choice."""
    resolved = []
    for definition in definitions:
        try:
            options = options_of(definition, since)
        except QueryError:
            options = []
        multi, include_all = bool(definition.get("multi")), bool(definition.get("include_all"))
        asked = query.getlist(f"var-{definition['name']}")
        if include_all and ALL in asked:
            selected = [ALL]
        else:
            selected = [value for value in asked if value in options][: None if multi else 1]
        if not selected:
            selected = [ALL] if include_all else options[:1]
        resolved.append(Variable(definition["name"], options, selected, multi, include_all))
    return resolved


def url_query(variables: list[Variable]) -> list[tuple[str, str]]:
    """The ``var-<name>`` pairs that pick these selections again."""
    return [(f"var-{chosen.name}", value) for chosen in variables for value in chosen.selected]


def interpolate(promql: str, variables: list[Variable], step_ms: int, range_ms: int) -> str:
    """``promql`` with every known ``$name``/``${name}`` replaced. Inside a regex matcher's
    string the values are regex-escaped and joined with ``|``; elsewhere they are escaped for a
    string literal (several joined with ``|`` too). Unknown references stay as written."""
    builtins = {
        "__interval": query_charts.duration(step_ms),
        "__rate_interval": query_charts.duration(query_charts.rate_window_ms(step_ms)),
        "__range": query_charts.duration(range_ms),
    }
    by_name = {variable.name: variable for variable in variables}

    def replace(match: re.Match) -> str:
        name = match[1] or match[2]
        if name in builtins:
            return builtins[name]
        if name not in by_name:
            return match[0]
        values = by_name[name].values()
        if INSIDE_REGEX_MATCHER.search(promql[: match.start()]):
            return _literal_body("|".join(RE2_SPECIAL.sub(r"\\\1", value) for value in values))
        return _literal_body("|".join(values))

    return REFERENCE.sub(replace, promql)


def _literal_body(text: str) -> str:
    """``text`` as it is written between the double quotes of a PromQL string."""
    return query_charts.quoted(text)[1:-1]
