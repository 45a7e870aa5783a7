"""Explore: any metric of one instance or of all, filtered by labels, aggregated per time bucket."""

import contextlib
import uuid
from dataclasses import dataclass, field

from dashboard import figures
from dashboard.timerange import TimeRange
from instances import store
from instances.models import Instance, Series

# Per-bucket aggregations the store returns (instances.store.Bucket fields).
AGGREGATIONS = {
    "avg": "Average",
    "min": "Minimum",
    "max": "Maximum",
    "last": "Last",
    "count": "Count",
}
CHART_POINTS = 400
MAX_SERIES = 50


@dataclass(frozen=True)
class ExploreQuery:
    instance: Instance | None
    metric: str
    labels: dict
    aggregation: str
    time_range: TimeRange
    labels_text: str = ""

    @classmethod
    def from_query(cls, query) -> "ExploreQuery":
        instance = None
        with contextlib.suppress(ValueError):
            instance = Instance.objects.filter(pk=uuid.UUID(query.get("instance", ""))).first()
        aggregation = query.get("aggregation", "avg")
        labels_text = query.get("labels", "").strip()
        return cls(
            instance=instance,
            metric=query.get("metric", "").strip(),
            labels=parse_labels(labels_text),
            aggregation=aggregation if aggregation in AGGREGATIONS else "avg",
            time_range=TimeRange.from_query(query),
            labels_text=labels_text,
        )


def parse_labels(text: str) -> dict:
    """``core=0, mount=/`` as a dict; pieces without ``=`` are ignored."""
    labels = {}
    for piece in text.split(","):
        key, sep, value = piece.partition("=")
        if sep and key.strip():
            labels[key.strip()] = value.strip().strip('"')
    return labels


def metric_names(instance: Instance | None) -> list[str]:
    series = Series.objects.all() if instance is None else instance.series.all()
    return list(series.order_by("name").values_list("name", flat=True).distinct())


@dataclass
class ExploreResult:
    series: list[Series] = field(default_factory=list)
    points: dict = field(default_factory=dict)
    truncated: bool = False
    figure: str = ""


def run(query: ExploreQuery) -> ExploreResult:
    """The matching series (at most MAX_SERIES) and their bucketed points: two queries."""
    if not query.metric:
        return ExploreResult()
    matching = Series.objects.filter(name=query.metric).select_related("instance")
    if query.instance is not None:
        matching = matching.filter(instance=query.instance)
    if query.labels:
        matching = matching.filter(labels__contains=query.labels)
    series = list(matching.order_by("instance__name", "id")[: MAX_SERIES + 1])
    truncated = len(series) > MAX_SERIES
    series = series[:MAX_SERIES]
    start, end = query.time_range.start, query.time_range.end
    points = store.points_of_series([one.pk for one in series], start, end, CHART_POINTS)
    result = ExploreResult(series, points, truncated)
    if series:
        unit = next((one.unit for one in series if one.unit), "")
        traces = [(one, points.get(one.pk, [])) for one in series]
        names = {one.pk: trace_name(one, query.instance is None) for one in series}
        result.figure = figures.metric_figure(
            query.metric, unit, traces, start, end, value=query.aggregation, names=names
        )
    return result


def trace_name(series: Series, with_instance: bool) -> str:
    labels = figures.labels_text(series.labels)
    parts = [series.instance.name] if with_instance else []
    if labels:
        parts.append(labels)
    return " · ".join(parts) or series.name


def csv_rows(query: ExploreQuery, result: ExploreResult):
    """Header, then one row per series and bucket: time, instance, metric, labels, value."""
    yield ["time_utc", "instance", "metric", "labels", query.aggregation]
    for one in result.series:
        for bucket in result.points.get(one.pk, []):
            yield [
                figures.plot_time(bucket.ts),
                one.instance.name,
                one.name,
                figures.labels_text(one.labels),
                getattr(bucket, query.aggregation),
            ]
