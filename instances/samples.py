"""The samples interface: every write and read of samples goes through ``samples_engine()``.

Two engines keep samples: ``postgres`` (the default, ``instances/store.py``: partitioned tables,
rollups, retention) and ``victoriametrics`` (``instances/victoriametrics.py``: a VictoriaMetrics
single-node or cluster at ``VM_WRITE_URL`` / ``VM_QUERY_URL``), chosen by ``METRICS_ENGINE``.
Whichever keeps the samples, the series inventory (labels, units, the cardinality limit, each
series' newest value) and everything else stay in PostgreSQL.
"""

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Protocol

from django.conf import settings

from instances import store
from instances.victoriametrics import VictoriaMetricsEngine

POSTGRES = "postgres"
VICTORIAMETRICS = "victoriametrics"


class SamplesEngine(Protocol):
    """What an engine answers; each method has the meaning of its namesake in ``store``."""

    name: str

    def write_samples(self, rows: Sequence[tuple[int, datetime, float]]) -> int: ...

    def write_staleness_markers(
        self, instance_id, markers: Sequence[tuple[store.SeriesKey, datetime]]
    ) -> int: ...

    def sample_arrays(
        self, series_ids: Sequence[int], start_ms: int, end_ms: int, limit: int
    ) -> store.SampleArrays: ...

    def points_of_series(
        self,
        series_ids: Sequence[int],
        start: datetime,
        end: datetime,
        buckets: int,
        resolution: str = "auto",
    ) -> dict[int, list[store.Bucket]]: ...

    def series_points(
        self, series_id: int, start: datetime, end: datetime, buckets: int, resolution: str = "auto"
    ) -> list[store.Bucket]: ...

    def metric_trends(
        self,
        names: Sequence[str],
        start: datetime,
        end: datetime,
        buckets: int,
        instance_ids: Sequence | None = None,
    ) -> dict[tuple[object, str], list[tuple[datetime, float]]]: ...

    def samples_per_second(self) -> float: ...

    def window_aggregates(
        self, series_ids: Sequence[int], start: datetime, end: datetime, aggregation: str
    ) -> dict[int, float | None]: ...

    def window_values(
        self,
        name: str,
        matchers: Sequence[dict],
        instance_ids: Sequence | None,
        start: datetime,
        end: datetime,
        aggregation: str,
    ) -> list[store.SeriesValue]: ...

    def recent_samples(
        self,
        instance_ids: Sequence | None = None,
        names: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
    ) -> list[store.Sample]: ...

    def sample_at(self, series_id: int, ts: datetime) -> store.Sample | None: ...

    def metric_aggregates(
        self,
        start: datetime,
        end: datetime,
        instance_ids: Sequence | None = None,
        names: Sequence[str] | None = None,
    ) -> list[store.MetricAggregate]: ...

    def count_samples(self, series_ids: Sequence[int] | None = None) -> int: ...

    def delete_samples_of_instance(self, instance_id) -> int: ...

    def unavailable(self) -> str | None:
        """Why the engine cannot take or answer samples now (None: it can), for /readyz."""

    def warnings(self) -> list[str]:
        """What works but needs a person's attention, for /readyz."""


class PostgresEngine:
    """Samples in Vigil's own PostgreSQL tables (``instances/store.py``)."""

    name = POSTGRES
    write_samples = staticmethod(store.write_samples)
    write_staleness_markers = staticmethod(store.write_staleness_markers)
    sample_arrays = staticmethod(store.sample_arrays)
    points_of_series = staticmethod(store.points_of_series)
    series_points = staticmethod(store.series_points)
    metric_trends = staticmethod(store.metric_trends)
    samples_per_second = staticmethod(store.samples_per_second)
    window_aggregates = staticmethod(store.window_aggregates)
    window_values = staticmethod(store.window_values)
    recent_samples = staticmethod(store.recent_samples)
    sample_at = staticmethod(store.sample_at)
    metric_aggregates = staticmethod(store.metric_aggregates)
    count_samples = staticmethod(store.count_samples)
    delete_samples_of_instance = staticmethod(store.delete_samples_of_instance)

    def unavailable(self) -> str | None:
        # PostgreSQL is checked by /readyz on its own account.
        return None

    def warnings(self) -> list[str]:
        return []


def samples_engine() -> SamplesEngine:
    """The engine ``METRICS_ENGINE`` names, with the URLs it is set to."""
    return _engine(settings.METRICS_ENGINE, settings.VM_WRITE_URL, settings.VM_QUERY_URL)


@cache
def _engine(name: str, write_url: str, query_url: str) -> SamplesEngine:
    if name == VICTORIAMETRICS:
        return VictoriaMetricsEngine(write_url, query_url)
    return PostgresEngine()
