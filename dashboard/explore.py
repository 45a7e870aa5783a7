"""Explore: a PromQL query over a time range, drawn as a line per returned series, with a table
of each series' latest value and the whole result as CSV. The query builder (instance, metric,
labels, aggregation) writes the PromQL of the common case into the query box.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

from dashboard import query_charts
from dashboard.timerange import TimeRange
from instances.models import Series
from query.functions import format_value
from query.http_api import parse_duration
from query.values import METRIC_NAME, QueryError

# The builder's aggregations: what it calls them and the PromQL function over each window
# (None: the raw selector).
AGGREGATIONS = {
    "avg": ("Average", "avg_over_time"),
    "min": ("Minimum", "min_over_time"),
    "max": ("Maximum", "max_over_time"),
    "last": ("Last", "last_over_time"),
    "count": ("Count", "count_over_time"),
    "rate": ("Rate per second", "rate"),
    "raw": ("Raw samples", None),
}
CHART_POINTS = 250
# More lines than this make an unreadable chart (and a slow page): the rest are counted, not drawn.
MAX_SERIES = 100
# The builder's window: at least Prometheus's lookback, so every step sees a sample.
BUILDER_MIN_WINDOW_MS = 5 * 60 * 1000


def parse_labels(text: str) -> dict[str, str]:
    """``core=0, mount=/`` as a dict; pieces without ``=`` are ignored."""
    labels = {}
    for piece in text.split(","):
        key, sep, value = piece.partition("=")
        if sep and key.strip():
            labels[key.strip()] = value.strip().strip('"')
    return labels


@dataclass(frozen=True)
class QueryBuilder:
    """The old pickers: instance (agent id), metric, labels and a per-window aggregation."""

    instance: str = ""
    metric: str = ""
    labels_text: str = ""
    aggregation: str = "avg"

    @classmethod
    def from_query(cls, query) -> "QueryBuilder":
        aggregation = query.get("aggregation", "avg")
        return cls(
            instance=query.get("instance", "").strip(),
            metric=query.get("metric", "").strip(),
            labels_text=query.get("labels", "").strip(),
            aggregation=aggregation if aggregation in AGGREGATIONS else "avg",
        )

    def promql(self, window_ms: int) -> str:
        """E.g. ``avg_over_time(cpu_usage{instance="web-1"}[5m])``."""
        labels = {"instance": self.instance} if self.instance else {}
        labels.update(parse_labels(self.labels_text))
        inner = query_charts.selector(self.metric, labels)
        function = AGGREGATIONS[self.aggregation][1]
        if function is None:
            return inner
        return f"{function}({inner}[{query_charts.duration(window_ms)}])"


@dataclass(frozen=True)
class ExploreQuery:
    promql: str
    time_range: TimeRange
    step_text: str  # as typed: blank for a step from the range
    builder: QueryBuilder

    @classmethod
    def from_query(cls, query) -> "ExploreQuery":
        """The query box's PromQL; the builder's when its button was pressed, or when only the
        builder is given (links from before PromQL)."""
        time_range = TimeRange.from_query(query)
        builder = QueryBuilder.from_query(query)
        promql = query.get("promql", "").strip()
        if builder.metric and ("build" in query or not promql):
            window = max(query_charts.auto_step_ms(time_range, CHART_POINTS), BUILDER_MIN_WINDOW_MS)
            promql = builder.promql(window)
        return cls(promql, time_range, query.get("step", "").strip(), builder)

    @property
    def auto_step(self) -> str:
        return query_charts.duration(query_charts.auto_step_ms(self.time_range, CHART_POINTS))

    def step_ms(self) -> int:
        """The step asked for, else one from the range; QueryError if it cannot be read."""
        if not self.step_text:
            return query_charts.auto_step_ms(self.time_range, CHART_POINTS)
        step = parse_duration(self.step_text, "step")
        if step <= 0:
            raise QueryError("zero or negative query resolution step widths are not accepted")
        return step

    def as_query(self) -> str:
        """The URL query that shows this again (the builder's choices left out)."""
        step = {"step": self.step_text} if self.step_text else {}
        return f"{urlencode({'promql': self.promql, **step})}&{self.time_range.as_query()}"

    def evaluate(self, limit: int | None = MAX_SERIES) -> query_charts.RangeResult:
        """Raises QueryError for what the engine refuses."""
        return query_charts.evaluate_range(self.promql, self.time_range, self.step_ms(), limit)


@dataclass(frozen=True)
class LatestValue:
    legend: str
    value: str
    at: datetime | None  # None when the series has no value in the range


@dataclass
class ExploreResult(query_charts.QueryOutcome):
    answer: query_charts.RangeResult | None = None
    legends: list[str] = field(default_factory=list)
    figure: str = ""
    step: str = ""
    error: QueryError | None = None

    @property
    def truncated(self) -> bool:
        return self.answer is not None and self.answer.total > len(self.answer.labels)

    def latest_values(self) -> list[LatestValue]:
        """Each series' newest value to 12 significant digits: a rate's 6820.650000000001 reads
        6820.65 (the CSV keeps every digit)."""
        return [
            LatestValue(legend, format_value(float(f"{value:.12g}")) if at else "", at)
            for legend, (_, value, at) in zip(self.legends, self.answer.latest(), strict=True)
        ]


def run(query: ExploreQuery) -> ExploreResult:
    """The query's result as a chart and table; the engine's refusal as ``error``."""
    if not query.promql:
        return ExploreResult()
    try:
        result = query.evaluate()
    except QueryError as error:
        return ExploreResult(error=error)
    legends = [query_charts.legend(labels) if labels else query.promql for labels in result.labels]
    figure = query_charts.figure(result, query.time_range, legends, always_legend=True)
    return ExploreResult(result, legends, figure, query_charts.duration(query.step_ms()))


# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """``text`` as a spreadsheet shows it rather than runs it: label values come from agents,
    and ``=HYPERLINK(...)`` in one must not become a live formula in whoever opens the CSV."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_rows(result: query_charts.RangeResult) -> Iterator[list[str]]:
    """Header (time, the result's label names, value), then a row per series and step with a
    value; label values are made spreadsheet-safe (the numbers Vigil formats itself stay
    numbers, negative ones included)."""
    names = sorted({name for labels in result.labels for name in labels})
    if METRIC_NAME in names:
        names.remove(METRIC_NAME)
        names.insert(0, METRIC_NAME)
    yield ["time_utc", *names, "value"]
    times = result.plot_times()
    for labels, values, present in zip(result.labels, result.values, result.present, strict=True):
        label_columns = [spreadsheet_safe(labels.get(name, "")) for name in names]
        for step in present.nonzero()[0]:
            yield [times[step], *label_columns, format_value(float(values[step]))]


def metric_names(agent_id: str) -> list[str]:
    series = Series.objects.all()
    if agent_id:
        series = series.filter(instance__agent_id=agent_id)
    return list(series.order_by("name").values_list("name", flat=True).distinct())
