"""The samples store: all SQL over samples lives here.

Samples are ``(series_id, ts, value)`` rows in ``samples``, a table range-partitioned by day with a
``(series_id, ts)`` primary key (single-series reads, idempotent writes) and a BRIN index on ``ts``
(time-bounded scans). Writes use binary COPY; reads are set-based and driven from the series table
with LATERAL, one query per question. Functions take and return plain values.
"""

import logging
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

import numpy as np
import orjson
import psycopg
from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction
from psycopg import generators, pq

from instances.formats import EPOCH, epoch_ms

logger = logging.getLogger(__name__)

SAMPLES_TABLE = "samples"
STALENESS_TABLE = "staleness_markers"
UNIQUE_VIOLATION = "23505"
CHECK_VIOLATION = "23514"
SERIES_TABLE = "instances_series"
MINUTE = timedelta(minutes=1)
MICROSECOND = timedelta(microseconds=1)
USUAL_BATCH_MARGIN = timedelta(minutes=1)

# --- float64 arithmetic in SQL --------------------------------------------------------------
# PostgreSQL's float8 +, -, *, / and sum() raise "value out of range" where IEEE 754 (Python,
# Go, Prometheus) gives ±Inf on overflow or 0 on underflow, so one sample near ±1.8e308 would
# fail every aggregate over it. These build SQL expressions that give the IEEE result instead.
# Magnitudes past _HUGE are worked on scaled by 2^-64 (exact for them), where nothing overflows,
# and scaled back at the end, or made ±Inf when the result is beyond float64's range.
_HUGE = 2.0**960
_DOWN, _UP = 2.0**-64, 2.0**64
# Below this, a term is lost next to one past _HUGE (whose last bit weighs at least 2^908).
_NEGLIGIBLE = 2.0**-900
_TINY = 2.0**-960


def _float(value: float) -> str:
    return f"{value!r}::float8"


def _scaled_down(x: str) -> str:
    return f"(CASE WHEN abs({x}) < {_float(_NEGLIGIBLE)} THEN 0 ELSE {x} * {_float(_DOWN)} END)"


def _scaled_up(x: str) -> str:
    """``x`` × 2^64, ±Inf when that is beyond float64 (NaN stays NaN)."""
    return (
        f"(CASE WHEN abs({x}) < {_float(_HUGE)} THEN {x} * {_float(_UP)} "
        f"ELSE {x} * 'Infinity'::float8 END)"
    )


def float_sum(column: str) -> str:
    """SQL for the sum of ``column`` (float8) as in IEEE 754: ±Inf when the total is beyond
    float64's range, NaN when it adds +Inf and -Inf, never an error.

    Values below 2^960 are added as plain ``sum()`` does (bit for bit the same when there are
    no others, the usual case); the others are added scaled, then the two parts together.
    """
    plain = f"sum({column}) FILTER (WHERE abs({column}) < {_float(_HUGE)})"
    huge = f"sum({column} * {_float(_DOWN)}) FILTER (WHERE NOT abs({column}) < {_float(_HUGE)})"
    total = f"({_scaled_down(f'coalesce({plain}, 0)')} + {huge})"
    return (
        f"(CASE WHEN {huge} IS NULL THEN {plain} WHEN {huge} = 0 THEN coalesce({plain}, 0) "
        f"ELSE {_scaled_up(total)} END)"
    )


def float_difference(a: str, b: str) -> str:
    """SQL for ``a - b`` (float8) as in IEEE 754, never an error."""
    near_max = _float(2.0**1022)
    return (
        f"(CASE WHEN abs({a}) < {near_max} AND abs({b}) < {near_max} THEN {a} - {b} "
        f"ELSE {_scaled_up(f'({_scaled_down(a)} - {_scaled_down(b)})')} END)"
    )


def float_quotient(numerator: str, denominator: str) -> str:
    """SQL for ``numerator / denominator`` (float8) as in IEEE 754, never an error, for a
    denominator of at least 2^-20: a count, or seconds of at least a microsecond."""
    n, d = numerator, f"({denominator})::float8"
    # Whether n / d underflows to zero, asked where nothing does.
    vanishes = f"abs(({n} * {_float(2.0**1000)}) / {d}) <= {_float(2.0**-75)}"
    return (
        f"(CASE WHEN abs({n}) < {_float(_TINY)} THEN "
        f"CASE WHEN {vanishes} THEN {n} * 0 ELSE {n} / {d} END "
        f"WHEN abs({n}) < {_float(2.0**1000)} THEN {n} / {d} "
        f"ELSE {_scaled_up(f'(({n} * {_float(_DOWN)}) / {d})')} END)"
    )


# A counter's increase over a window (its last value less its first, never negative) and the
# seconds between those two samples.
_INCREASE = (
    "greatest("
    + float_difference(
        "(array_agg(value ORDER BY ts DESC))[1]", "(array_agg(value ORDER BY ts))[1]"
    )
    + ", 0)"
)
_SPAN_SECONDS = "nullif(extract(epoch FROM max(ts) - min(ts)), 0)"

# Aggregations over a window, as SQL over one series' rows (columns ts, value).
WINDOW_AGGREGATES = {
    "last": "(array_agg(value ORDER BY ts DESC))[1]",
    "avg": float_quotient(float_sum("value"), "count(*)"),
    "min": "min(value)",
    "max": "max(value)",
    "sum": float_sum("value"),
    "count": "count(*)::float8",
    "p95": "percentile_cont(0.95) WITHIN GROUP (ORDER BY value)",
    # Per-second increase of a counter between the first and last sample of the window.
    "rate": f"CASE WHEN count(*) > 1 THEN {float_quotient(_INCREASE, _SPAN_SECONDS)} END",
}


class SeriesLimitExceeded(Exception):
    """Storing these samples would give an instance more series than the per-instance limit."""

    def __init__(self, new_series: int, limit: int):
        self.new_series, self.limit = new_series, limit
        super().__init__(f"{new_series} new series would exceed the limit of {limit} per instance")


@dataclass(frozen=True)
class SeriesKey:
    """What identifies a series within one instance."""

    name: str
    labels: dict
    unit: str = ""

    @property
    def labels_key(self) -> bytes:
        return labels_key(self.labels)


def labels_key(labels: dict) -> bytes:
    """Canonical form of a label set (sorted keys), for comparing label sets in Python."""
    if not labels:
        return b"{}"
    return orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)


# --- partitions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeTable:
    """A table range-partitioned on a time column, by day or by month.

    Partitions are named ``<table>_pYYYYMMDD`` (daily) or ``<table>_pYYYYMM`` (monthly), which is
    what retention reads their range from.
    """

    name: str
    column: str
    monthly: bool = False

    def period_start(self, day: date) -> date:
        return day.replace(day=1) if self.monthly else day

    def next_period(self, start: date) -> date:
        if not self.monthly:
            return start + timedelta(days=1)
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)

    def partition_name(self, day: date) -> str:
        start = self.period_start(day)
        return f"{self.name}_p{start:%Y%m}" if self.monthly else f"{self.name}_p{start:%Y%m%d}"

    def partition_start(self, partition: str) -> date | None:
        """The first day a partition of this table holds, read from its name."""
        digits = partition.removeprefix(f"{self.name}_p")
        fmt = "%Y%m" if self.monthly else "%Y%m%d"
        if digits == partition or len(digits) != (6 if self.monthly else 8):
            return None
        try:
            return datetime.strptime(digits, fmt).date()
        except ValueError:
            return None


@dataclass(frozen=True)
class RollupLevel:
    """A rollup: per series and ``width``-wide bucket, min, max, sum, count and last, computed
    from the samples (``source`` None) or from a finer rollup."""

    name: str
    table: TimeTable
    width: timedelta
    source: "RollupLevel | None" = None


SAMPLES = TimeTable(SAMPLES_TABLE, "ts")
# Compacted days of samples, a row per series and day (instances/compaction.py). SQL readers read
# samples through samples_between() / all_samples_between() (migration 0010), which give the raw
# and the compacted ones alike; the PromQL reads decode blocks in numpy (block_arrays).
BLOCKS = TimeTable("sample_blocks", "day")
ROLLUP_1M = RollupLevel("1m", TimeTable("samples_1m", "bucket"), MINUTE)
ROLLUP_5M = RollupLevel(
    "5m", TimeTable("samples_5m", "bucket", monthly=True), 5 * MINUTE, ROLLUP_1M
)
ROLLUP_1H = RollupLevel(
    "1h", TimeTable("samples_1h", "bucket", monthly=True), timedelta(hours=1), ROLLUP_5M
)
# Finest first: each is computed from the one before.
ROLLUP_LEVELS = (ROLLUP_1M, ROLLUP_5M, ROLLUP_1H)
TIME_TABLES = (SAMPLES, *(level.table for level in ROLLUP_LEVELS))


def partition_name(day: date, table: TimeTable = SAMPLES) -> str:
    return table.partition_name(day)


def ensure_partitions(days: Iterable[date], table: TimeTable = SAMPLES) -> list[str]:
    """Create the partitions of ``table`` holding ``days`` that do not exist yet; return the new
    names."""
    created = []
    with transaction.atomic(), connection.cursor() as cursor:
        # One creator at a time: concurrent CREATE ... IF NOT EXISTS can still collide.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('vigil.samples.partitions'))")
        for start in sorted({table.period_start(day) for day in days}):
            name = table.partition_name(start)
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
            if cursor.fetchone()[0]:
                continue
            cursor.execute(
                f"CREATE TABLE {name} PARTITION OF {table.name} FOR VALUES "
                f"FROM ('{start.isoformat()}') TO ('{table.next_period(start).isoformat()}')"
            )
            created.append(name)
    if created:
        logger.info("created partitions %s", ", ".join(created))
    return created


def ensure_partitions_ahead(now: datetime | None = None) -> list[str]:
    """Make sure the partitions of every time table exist from today to
    ``PARTITIONS_AHEAD_DAYS`` ahead."""
    today = (now or datetime.now(UTC)).date()
    days = [today + timedelta(days=offset) for offset in range(settings.PARTITIONS_AHEAD_DAYS + 1)]
    return [name for table in TIME_TABLES for name in ensure_partitions(days, table)]


def list_partitions(table: TimeTable = SAMPLES) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            [table.name],
        )
        return [row[0] for row in cursor.fetchall()]


@contextmanager
def session_lock(key: str) -> Iterator[bool]:
    """Take the session advisory lock ``key`` (SQL for a bigint) if free, so one such task runs
    at a time; yields whether it was taken. A dead worker's lock goes with its connection."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_lock({key})")
        locked = cursor.fetchone()[0]
    try:
        yield locked
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT pg_advisory_unlock({key})")


def stored_days() -> list[date]:
    """The days holding samples, raw or compacted (those with a partition of either), in order."""
    days = {
        day
        for table in (SAMPLES, BLOCKS)
        for day in map(table.partition_start, list_partitions(table))
        if day is not None
    }
    return sorted(days)


def expired_partitions(table: TimeTable, keep_days: int, now: datetime | None = None) -> list[str]:
    """Partitions of ``table`` holding nothing newer than ``keep_days`` ago."""
    cutoff = (now or datetime.now(UTC)).date() - timedelta(days=keep_days)
    expired = []
    for name in list_partitions(table):
        start = table.partition_start(name)
        if start is not None and table.next_period(start) <= cutoff:
            expired.append(name)
    return expired


def drop_partition(table: TimeTable, partition: str) -> None:
    """Detach and drop one partition without blocking writers and readers of ``table``.

    DETACH ... CONCURRENTLY takes only a SHARE UPDATE EXCLUSIVE lock on the parent (a plain
    DETACH or DROP needs ACCESS EXCLUSIVE, queueing every ingest behind the slowest reader). It
    cannot run in a transaction; one interrupted half-way is finished with FINALIZE.
    """
    detach_partition(table, partition)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {partition}")
    logger.info("dropped partition %s of %s", partition, table.name)


def detach_partition(table: TimeTable, partition: str) -> None:
    """Detach one partition of ``table`` (if attached) with DETACH ... CONCURRENTLY, as
    ``drop_partition`` does; the table itself stays."""
    if connection.in_atomic_block:
        raise RuntimeError("detaching a partition must run outside a transaction")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.inhdetachpending FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass AND c.relname = %s",
            [table.name, partition],
        )
        row = cursor.fetchone()
        if row is not None:
            mode = "FINALIZE" if row[0] else "CONCURRENTLY"
            cursor.execute(f"ALTER TABLE {table.name} DETACH PARTITION {partition} {mode}")


# --- series ---------------------------------------------------------------------------------


def resolve_series(instance_id, keys: Sequence[SeriesKey]) -> dict[tuple[str, bytes], int]:
    """Series ids for ``keys`` of one instance, creating the missing ones.

    Returns ``{(name, labels_key): series_id}``. Raises SeriesLimitExceeded (creating nothing)
    when the new series would take the instance past ``SERIES_LIMIT_PER_INSTANCE``.
    """
    wanted = {(key.name, key.labels_key): key for key in keys}
    cached = cached_series_ids(instance_id, wanted)
    if cached is not None:
        return cached
    found = _existing_series(instance_id, wanted)
    _remember_series_ids(instance_id, found)
    missing = [key for ident, key in wanted.items() if ident not in found]
    if not missing:
        return found
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {SERIES_TABLE} WHERE instance_id = %s", [instance_id])
        existing_count = cursor.fetchone()[0]
        limit = settings.SERIES_LIMIT_PER_INSTANCE
        if existing_count + len(missing) > limit:
            raise SeriesLimitExceeded(len(missing), limit)
        cursor.execute(
            f"INSERT INTO {SERIES_TABLE} (instance_id, name, labels, unit, created) "
            "SELECT %s, n, l::jsonb, u, now() FROM unnest(%s::text[], %s::text[], %s::text[]) "
            "AS t(n, l, u) ON CONFLICT (instance_id, name, labels) DO NOTHING",
            [
                instance_id,
                [key.name for key in missing],
                [key.labels_key.decode() for key in missing],
                [key.unit for key in missing],
            ],
        )
    created = _existing_series(instance_id, {(k.name, k.labels_key): k for k in missing})
    _remember_series_ids(instance_id, created)
    found.update(created)
    return found


# Series ids by instance, then (name, labels key): a series id never changes and is never reused
# (an instance deleted and registered again gets a new uuid), so this per-process cache spares
# ingest its lookups. Ids enter it only once the transaction that saw them commits: a series
# created by a batch that rolled back must not be remembered.
_SERIES_IDS: dict[object, dict[tuple[str, bytes], int]] = {}
SERIES_CACHE_INSTANCES = 50_000


def cached_series_ids(
    instance_id, idents: Iterable[tuple[str, bytes]]
) -> dict[tuple[str, bytes], int] | None:
    """``resolve_series``' answer for series this process has already resolved: their ids by
    ``(name, labels key)``; None if any of ``idents`` is not in the cache."""
    cached = _SERIES_IDS.get(instance_id)
    if cached is None:
        return None
    try:
        return {ident: cached[ident] for ident in idents}
    except KeyError:
        return None


def _remember_series_ids(instance_id, ids: dict[tuple[str, bytes], int]) -> None:
    def remember() -> None:
        if len(_SERIES_IDS) >= SERIES_CACHE_INSTANCES:
            _SERIES_IDS.clear()
        _SERIES_IDS.setdefault(instance_id, {}).update(ids)

    if ids:
        transaction.on_commit(remember)


def _existing_series(instance_id, wanted: dict) -> dict[tuple[str, bytes], int]:
    if not wanted:
        return {}
    names = sorted({name for name, _ in wanted})
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, name, labels FROM {SERIES_TABLE} "
            "WHERE instance_id = %s AND name = ANY(%s)",
            [instance_id, names],
        )
        rows = cursor.fetchall()
    found = {}
    for series_id, name, labels in rows:
        ident = (name, labels_key(_as_dict(labels)))
        if ident in wanted:
            found[ident] = series_id
    return found


def _as_dict(labels) -> dict:
    return orjson.loads(labels) if isinstance(labels, str | bytes) else labels


# --- writes ---------------------------------------------------------------------------------


def write_samples(rows: Sequence[tuple[int, datetime, float]]) -> int:
    """Store ``(series_id, ts, value)`` rows; a (series, ts) already stored is kept, not doubled.

    Runs inside the caller's transaction (so a batch commits or fails whole). Returns how many
    rows were new. Missing daily partitions are created on demand.
    """
    rows = _not_compacted_yet(rows)
    if not rows:
        return 0
    try:
        written = _write_rows(rows)
    except DatabaseError as error:
        if _sqlstate(error) != CHECK_VIOLATION:
            raise
        _raise_if_connection_lost(error)
        # "no partition of relation samples found for row": make the days, then write again.
        ensure_partitions(ts.astimezone(UTC).date() for _, ts, _ in rows)
        written = _write_rows(rows)
    note_newest(rows)
    _note_late_rows(rows)
    return written


def _not_compacted_yet(
    rows: Sequence[tuple[int, datetime, float]],
) -> Sequence[tuple[int, datetime, float]]:
    """``rows`` less those a compacted day already holds (a replayed late batch): the raw table's
    primary key does not see those. Only rows older than the compaction grace window can be in
    a compacted day, so a live batch costs nothing here."""
    cutoff = datetime.now(UTC) - timedelta(hours=settings.COMPACTION_GRACE_HOURS)
    late = [(series_id, ts) for series_id, ts, _ in rows if ts < cutoff]
    if not late:
        return rows
    stamps = [ts for _, ts in late]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.series_id, c.ts FROM block_samples_between(%s, %s, %s) c "
            "JOIN unnest(%s::bigint[], %s::timestamptz[]) AS l(series_id, ts) "
            "USING (series_id, ts)",
            [
                sorted({series_id for series_id, _ in late}),
                min(stamps),
                max(stamps) + MICROSECOND,
                [series_id for series_id, _ in late],
                stamps,
            ],
        )
        stored = set(cursor.fetchall())
    if not stored:
        return rows
    return [row for row in rows if (row[0], row[1]) not in stored]


def execute_bound(sql: str, params: Sequence | dict) -> psycopg.Cursor:
    """Run ``sql`` on Django's connection, in its transaction, with its parameters bound by the
    server: for the statements every ingest batch runs, the parameters go in binary instead of
    being spelled out as literals in Python. Errors are Django's, as from its own cursors."""
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = psycopg.Cursor(connection.connection)
        cursor.execute(sql, params)
    return cursor


def note_newest(rows: Sequence[tuple[int, datetime, float]]) -> None:
    """Move each series' ``last_ts``/``last_value`` to its newest sample of ``rows`` if that is
    newer than the one kept (a late or replayed sample never replaces a newer or equal one)."""
    execute_bound(_NEWEST_UPDATE.format("%s", "%s", "%s"), _newest(rows)).close()


_NEWEST_UPDATE = (
    f"UPDATE {SERIES_TABLE} s SET last_ts = n.ts, last_value = n.value "
    "FROM unnest({}::bigint[], {}::timestamptz[], {}::float8[]) AS n(id, ts, value) "
    "WHERE s.id = n.id AND (s.last_ts IS NULL OR n.ts > s.last_ts)"
)


def _newest(
    rows: Sequence[tuple[int, datetime, float]],
) -> tuple[list[int], list[datetime], list[float]]:
    """The series ids of ``rows``, each with its newest sample's time and value."""
    newest: dict[int, tuple[datetime, float]] = {}
    for series_id, ts, value in rows:
        kept = newest.get(series_id)
        if kept is None or ts > kept[0]:
            newest[series_id] = (ts, value)
    # In series id order, so concurrent batches of one instance lock its rows in the same order.
    ids = sorted(newest)
    return ids, [newest[i][0] for i in ids], [newest[i][1] for i in ids]


@dataclass(frozen=True, eq=False)
class RowArrays:
    """``(series_id, ts, value)`` rows to write, as three arrays of one length: series id, time
    (microseconds since the epoch) and value."""

    series_ids: np.ndarray
    micros: np.ndarray
    values: np.ndarray

    @classmethod
    def of_rows(cls, rows: Sequence[tuple[int, datetime, float]]) -> "RowArrays":
        """``(series_id, ts, value)`` rows as arrays. A batch holds few distinct timestamps (a
        scrape stamps all its samples alike), so each is converted once."""
        micros: dict[datetime, int] = {}
        for _, ts, _ in rows:
            if ts not in micros:
                micros[ts] = (ts - EPOCH) // MICROSECOND
        return cls(
            np.array([row[0] for row in rows], dtype=np.int64),
            np.array([micros[row[1]] for row in rows], dtype=np.int64),
            np.array([row[2] for row in rows], dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.series_ids)


# --- the usual ingest batch in one exchange -------------------------------------------------
#
# A batch written under Django's transaction management costs seven round trips to PostgreSQL
# (the pool's check, BEGIN, the instance's contact, the COPY's two, the newest values, COMMIT);
# on a busy machine each is a wake-up of the web process and of its backend, which cost more
# than the statements. ``copy_after`` sends the same statements as one query string, which
# PostgreSQL runs as one transaction (the simple query protocol runs on after a COPY): the
# first statement's row comes back with the COPY's go-ahead, and the samples are sent only if
# the caller accepts it.


def text_literal(text: str) -> str:
    """``text`` as an SQL string literal, quoted by libpq for Django's connection."""
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return pq.Escaping(connection.connection.pgconn).escape_literal(text.encode()).decode()


def time_literal(moment: datetime) -> str:
    """An aware ``moment`` as an SQL timestamptz literal."""
    return f"'{moment.isoformat()}'::timestamptz"


def _newest_literal(rows: RowArrays) -> str:
    """``note_newest``'s statement with its arrays spelled out: numbers and ISO times, which
    need no quoting inside an array literal (a float's repr, nan and inf included, reads back
    as the same float)."""
    # The last of each series' rows by time: its newest (of equal times, a duplicate, which
    # the COPY refuses anyway). In series id order, as ``_newest``.
    by_series = np.lexsort((rows.micros, rows.series_ids))
    ids = rows.series_ids[by_series]
    last = np.ones(len(ids), dtype=bool)
    last[:-1] = ids[1:] != ids[:-1]
    newest = by_series[last]
    return _NEWEST_UPDATE.format(
        _array_literal(map(str, rows.series_ids[newest].tolist())),
        _array_literal(
            (EPOCH + timedelta(microseconds=us)).isoformat() for us in rows.micros[newest].tolist()
        ),
        _array_literal(map(repr, rows.values[newest].tolist())),
    )


def _array_literal(items: Iterable[str]) -> str:
    return "'{" + ",".join(items) + "}'"


def copy_after(first: str, rows: RowArrays, accept: Callable[[tuple | None], bool]) -> bool:
    """One transaction in one exchange with PostgreSQL: ``first`` (a statement returning at
    most one row, its values spelled out by ``text_literal`` and ``time_literal``), then, if
    ``accept(its row or None)``, a COPY of ``rows`` into samples and their series' newest
    values. Returns whether it was accepted (else nothing of it is kept). ``rows`` must be the
    usual batch's: none before ``usual_since()``, of series that exist. A COPY that meets a
    stored sample or a day with no partition raises CopyConflict (as ``unguarded_copies``),
    with nothing kept either."""
    newest = _newest_literal(rows)
    copy = f"COPY {SAMPLES_TABLE} (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
    query = f"{first}; {copy}; {newest}".encode()
    with connection.wrap_database_errors:
        try:
            return _copy_exchange(connection.connection, query, rows, accept)
        except psycopg.Error as error:
            if error.sqlstate in (UNIQUE_VIOLATION, CHECK_VIOLATION):
                raise CopyConflict from error
            raise


# COPY data goes to libpq in pieces of this size at most, as psycopg's own COPY splits it: a
# larger one can stall libpq's non-blocking send.
_COPY_CHUNK = 128 * 1024


def _copy_exchange(
    pg: psycopg.Connection,
    query: bytes,
    rows: RowArrays,
    accept: Callable[[tuple | None], bool],
) -> bool:
    """``copy_after``'s exchange, on psycopg's generators: its ``copy()`` takes a lone COPY."""
    pgconn = pg.pgconn
    pgconn.send_query(query)
    results = pg.wait(generators.execute(pgconn))
    copying = results[-1].status == pq.ExecStatus.COPY_IN
    accepted = False
    try:
        if copying and accept(_first_row(pg, results[0])):
            data = memoryview(_binary_copy_data(rows))
            for start in range(0, len(data), _COPY_CHUNK):
                chunk = data[start : start + _COPY_CHUNK]
                pg.wait(generators.copy_to(pgconn, chunk, flush=False))
            accepted = True
    finally:
        if copying:
            # Not accepted (or failed here): CopyFail, which PostgreSQL answers with an error
            # ending the COPY and the transaction.
            while pgconn.put_copy_end(None if accepted else b"not accepted") == 0:
                pg.wait(generators.send(pgconn))
            pg.wait(generators.send(pgconn))
            results += pg.wait(generators.fetch_many(pgconn))
    if copying and not accepted:
        return False
    for result in results:
        if result.status == pq.ExecStatus.FATAL_ERROR:
            raise psycopg.errors.error_from_result(result, encoding=pg.info.encoding)
    return accepted


def _first_row(pg: psycopg.Connection, result: pq.abc.PGresult) -> tuple | None:
    if result.status != pq.ExecStatus.TUPLES_OK or not result.ntuples:
        return None
    loader = psycopg.adapt.Transformer(pg)
    loader.set_pgresult(result)
    return loader.load_row(0, tuple)


class CopyConflict(Exception):
    """An unguarded COPY met a stored sample or a day with no partition yet: its transaction is
    lost, so the batch is to be written again, its COPY guarded."""


# Set within ``unguarded_copies``.
_COPY_UNGUARDED: ContextVar[bool] = ContextVar("copy_unguarded", default=False)


@contextmanager
def unguarded_copies() -> Iterator[None]:
    """Within: a COPY of samples runs without a savepoint of its own (a subtransaction and two
    round trips fewer a batch), and one that meets a stored sample or a missing partition
    raises CopyConflict, which loses the whole transaction. For a caller that then writes its
    batch again outside this context, where those are handled in place (the usual batch, new
    samples on days that exist, meets neither)."""
    token = _COPY_UNGUARDED.set(True)
    try:
        yield
    finally:
        _COPY_UNGUARDED.reset(token)


def copies_unguarded() -> bool:
    """Whether this runs within ``unguarded_copies``."""
    return _COPY_UNGUARDED.get()


def _write_rows(rows: Sequence[tuple[int, datetime, float]]) -> int:
    if _COPY_UNGUARDED.get():
        try:
            _copy_rows(SAMPLES_TABLE, rows)
        except DatabaseError as error:
            if _sqlstate(error) in (UNIQUE_VIOLATION, CHECK_VIOLATION):
                raise CopyConflict from error
            raise
        return len(rows)
    try:
        with transaction.atomic():
            _copy_rows(SAMPLES_TABLE, rows)
        return len(rows)
    except DatabaseError as error:
        if _sqlstate(error) != UNIQUE_VIOLATION:
            raise
        _raise_if_connection_lost(error)
        # A replayed batch, or one overlapping stored samples: keep the first copy of each.
        return _insert_new_rows(rows)


def usual_since() -> datetime:
    """Samples from this moment on are neither late for the rollups (``_note_late_rows``) nor
    possibly in a compacted day (``_not_compacted_yet``) by the time a batch taking them is
    committed: a batch of only such samples may be written by ``copy_after``."""
    window = min(
        timedelta(seconds=settings.ROLLUP_GRACE_SECONDS),
        timedelta(hours=settings.COMPACTION_GRACE_HOURS),
    )
    # A minute's margin for the wait between the instance's row lock and the commit.
    return datetime.now(UTC) - window + USUAL_BATCH_MARGIN


def _note_late_rows(rows: Sequence[tuple[int, datetime, float]]) -> None:
    """Queue the minutes of samples older than the rollup grace window for recomputation: the
    rollup refresh reads only the window, so it learns of these minutes from ``rollup_late``."""
    cutoff = datetime.now(UTC) - timedelta(seconds=settings.ROLLUP_GRACE_SECONDS)
    queue_late_minutes({(sid, floor_time(ts, MINUTE)) for sid, ts, _ in rows if ts < cutoff})


def queue_late_minutes(minutes: Iterable[tuple[int, datetime]]) -> None:
    """Queue ``(series_id, minute)`` pairs in ``rollup_late``: the next rollup refresh
    recomputes those minutes, and the coarser buckets holding them."""
    minutes = list(minutes)
    if not minutes:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO rollup_late (series_id, bucket) "
            "SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]) ON CONFLICT DO NOTHING",
            [[series_id for series_id, _ in minutes], [minute for _, minute in minutes]],
        )


def _raise_if_connection_lost(error: DatabaseError) -> None:
    """Before going on after ``error``: if the savepoint around it could not be rolled back,
    the connection is gone and this transaction can do nothing more, so the storage is
    unavailable (OperationalError, answered 503), whatever ``error`` itself said."""
    if connection.needs_rollback:
        raise OperationalError(f"connection lost after: {error}") from error


def _sqlstate(error: Exception) -> str | None:
    """The SQLSTATE of a psycopg error, also when Django's cursor wrapped it."""
    return getattr(error, "sqlstate", None) or getattr(error.__cause__, "sqlstate", None)


@contextmanager
def _binary_copy(statement: str, params: Sequence | None = None) -> Iterator[psycopg.Copy]:
    """psycopg's COPY on Django's connection. Django wraps the errors of queries, not of
    psycopg's own COPY: wrapped here too, a server gone mid-COPY is an OperationalError like
    anywhere else (the API answers 503)."""
    with (
        connection.wrap_database_errors,
        connection.cursor() as cursor,
        cursor.cursor.copy(statement, params) as copy,
    ):
        yield copy


def _copy_rows(table: str, rows: Sequence[tuple[int, datetime, float]]) -> None:
    with _binary_copy(f"COPY {table} (series_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(_binary_copy_data(RowArrays.of_rows(rows)))


# A row of ``(series_id, ts, value)`` in COPY's binary format: the field count, then each field
# after its length; a timestamptz is microseconds since 2000-01-01.
_COPY_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("id_length", ">i4"),
        ("series_id", ">i8"),
        ("ts_length", ">i4"),
        ("ts", ">i8"),
        ("value_length", ">i4"),
        ("value", ">f8"),
    ]
)
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)


def _binary_copy_data(rows: RowArrays) -> bytes:
    """``rows`` as one binary COPY body, built in numpy: psycopg's ``write_row`` per row
    cost more than the COPY in PostgreSQL."""
    data = np.empty(len(rows), dtype=_COPY_ROW)
    data["fields"] = 3
    data["id_length"] = data["ts_length"] = data["value_length"] = 8
    data["series_id"] = rows.series_ids
    data["ts"] = rows.micros - _PG_EPOCH_US
    data["value"] = rows.values
    return b"".join((_COPY_SIGNATURE, data.tobytes(), _COPY_TRAILER))


def _insert_new_rows(rows: Sequence[tuple[int, datetime, float]]) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS samples_staging "
            "(series_id bigint, ts timestamptz, value float8) ON COMMIT DELETE ROWS"
        )
        cursor.execute("TRUNCATE samples_staging")
        _copy_rows("samples_staging", rows)
        cursor.execute(
            f"INSERT INTO {SAMPLES_TABLE} (series_id, ts, value) "
            "SELECT series_id, ts, value FROM samples_staging "
            "ON CONFLICT (series_id, ts) DO NOTHING"
        )
        return cursor.rowcount


# --- reads ----------------------------------------------------------------------------------


def epoch_us(column: str) -> str:
    """SQL for ``column`` (a timestamptz) as integer microseconds since the epoch.

    Reads returning hundreds of times use it: Django's timestamptz loader parses each in Python,
    which costs more than the query itself.
    """
    return f"(extract(epoch FROM {column}) * 1000000)::int8"


def from_epoch_us(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


class Bucket(NamedTuple):
    """One time bucket of a chart (a tuple: charts build hundreds per series)."""

    ts: datetime
    min: float
    max: float
    avg: float
    last: float
    count: int


def series_points(
    series_id: int, start: datetime, end: datetime, buckets: int, resolution: str = "auto"
) -> list[Bucket]:
    """Points of one series between ``start`` and ``end`` in at most ``buckets`` time buckets."""
    return points_of_series([series_id], start, end, buckets, resolution)[series_id]


class LatestValue(NamedTuple):
    """The newest sample of one series (a tuple: a dashboard reads hundreds at once)."""

    series_id: int
    instance_id: object
    name: str
    labels: dict
    unit: str
    ts: datetime
    value: float


def latest_values(
    instance_ids: Sequence | None = None,
    names: Sequence[str] | None = None,
    since: datetime | None = None,
) -> list[LatestValue]:
    """The newest sample of each series (optionally of some instances / metric names, and only
    if it is not older than ``since``), as the write path keeps it on the series rows."""
    where, params = _series_filter(instance_ids, names)
    time_bound = "AND s.last_ts >= %s" if since else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.id, s.instance_id, s.name, s.labels, s.unit, {epoch_us('s.last_ts')}, "
            f"s.last_value FROM {SERIES_TABLE} s "
            f"WHERE s.last_ts IS NOT NULL {time_bound} AND {where} "
            "ORDER BY s.instance_id, s.name, s.id",
            ([since] if since else []) + params,
        )
        return [
            LatestValue(sid, iid, name, _as_dict(labels), unit, from_epoch_us(micros), value)
            for sid, iid, name, labels, unit, micros, value in cursor.fetchall()
        ]


def window_aggregates(
    series_ids: Sequence[int], start: datetime, end: datetime, aggregation: str
) -> dict[int, float | None]:
    """``aggregation`` (a key of WINDOW_AGGREGATES) of each series over ``[start, end)``."""
    expression = WINDOW_AGGREGATES[aggregation]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.id, a.value FROM unnest(%s::bigint[]) AS s(id) CROSS JOIN LATERAL ("
            f"  SELECT {expression} AS value FROM samples_between(ARRAY[s.id], %s, %s)) a",
            [list(series_ids), start, end],
        )
        return dict(cursor.fetchall())


@dataclass(frozen=True)
class Sample:
    series_id: int
    instance_id: object
    name: str
    labels: dict
    unit: str
    ts: datetime
    value: float

    @property
    def metric_id(self) -> str:
        """The seed API's metric id: ``{series_id}-{epoch ms}``, microseconds as a fraction."""
        ms, micros = divmod((self.ts - EPOCH) // timedelta(microseconds=1), 1000)
        return f"{self.series_id}-{ms}" + (f".{micros:03d}" if micros else "")

    def to_api(self) -> dict:
        """The seed API's metric object (PRODUCT.md 5.2)."""
        return {
            "id": self.metric_id,
            "instanceId": str(self.instance_id),
            "metricName": self.name,
            "metricValue": self.value,
            "unit": self.unit,
            "timestamp": epoch_ms(self.ts),
            "tags": self.labels,
        }


def recent_samples(
    instance_ids: Sequence | None = None,
    names: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 100,
) -> list[Sample]:
    """The newest ``limit`` samples across the matching series, newest first.

    Without ``end``, only the ``limit`` matching series with the newest last sample are read:
    each of them holds a sample at least as new as any sample of the others, so the answer is
    the same, and a request without filters reads the samples of ``limit`` series, not of every
    series there is.
    """
    where, params = _series_filter(instance_ids, names)
    series, series_params = SERIES_TABLE, []
    if end is None:
        series = (
            f"(SELECT * FROM {SERIES_TABLE} s WHERE {where} AND s.last_ts IS NOT NULL "
            "ORDER BY s.last_ts DESC LIMIT %s)"
        )
        series_params, where, params = [*params, limit], "TRUE", []
    bounds = [start or "-infinity", end or "infinity"]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.id, s.instance_id, s.name, s.labels, s.unit, l.ts, l.value "
            f"FROM {series} s CROSS JOIN LATERAL ({_NEWEST_SAMPLES_SQL}) l "
            f"WHERE {where} ORDER BY l.ts DESC, s.id LIMIT %s",
            series_params + [*bounds, limit, *bounds, limit, limit] + params + [limit],
        )
        return [
            Sample(sid, iid, name, _as_dict(labels), unit, ts, value)
            for sid, iid, name, labels, unit, ts, value in cursor.fetchall()
        ]


# The newest %s (limit) samples of series ``s.id`` in [%s, %s) (the bounds given twice, then the
# limit twice more). Compacted days hold older samples than the raw ones but for late ones, so
# blocks are decoded only when the raw samples fall short of the limit or a block holds samples
# newer than the oldest raw one kept.
_NEWEST_SAMPLES_SQL = (
    "WITH raw AS (SELECT ts, value FROM samples WHERE series_id = s.id AND ts >= %s AND ts < %s "
    "ORDER BY ts DESC LIMIT %s) "
    "SELECT ts, value FROM raw UNION ALL "
    "SELECT ts, value FROM block_samples_between(ARRAY[s.id], %s, %s) "
    "WHERE ts > coalesce((SELECT min(ts) FROM raw HAVING count(*) >= %s), '-infinity') "
    "ORDER BY ts DESC LIMIT %s"
)


METRIC_ID = re.compile(r"(\d{1,18})-(\d{1,15})(?:\.(\d{3}))?")


def parse_metric_id(text: str) -> tuple[int, datetime] | None:
    """``(series_id, ts)`` of a metric id made by ``Sample.metric_id``, or None if malformed."""
    match = METRIC_ID.fullmatch(text)
    if match is None:
        return None
    series_id, ms, micros = match.groups()
    try:
        ts = EPOCH + timedelta(milliseconds=int(ms), microseconds=int(micros or 0))
    except OverflowError:
        return None
    return int(series_id), ts


def sample_at(series_id: int, ts: datetime) -> Sample | None:
    """The one sample of ``series_id`` at ``ts``, if stored."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.id, s.instance_id, s.name, s.labels, s.unit, x.ts, x.value "
            f"FROM samples_between(ARRAY[%s::bigint], %s, %s) x "
            f"JOIN {SERIES_TABLE} s ON s.id = x.series_id",
            [series_id, ts, ts + MICROSECOND],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    sid, iid, name, labels, unit, sample_ts, value = row
    return Sample(sid, iid, name, _as_dict(labels), unit, sample_ts, value)


@dataclass(frozen=True)
class MetricAggregate:
    instance_id: object
    name: str
    count: int
    min: float
    max: float
    avg: float
    latest: float

    def to_api(self) -> dict:
        return {
            "instanceId": str(self.instance_id),
            "metricName": self.name,
            "count": self.count,
            "min": self.min,
            "max": self.max,
            "avg": self.avg,
            "latest": self.latest,
        }


def metric_aggregates(
    start: datetime,
    end: datetime,
    instance_ids: Sequence | None = None,
    names: Sequence[str] | None = None,
) -> list[MetricAggregate]:
    """Count, min, max, avg and newest value of each (instance, metric name) over ``[start, end)``.

    All label sets of a metric name are taken together.
    """
    where, params = _series_filter(instance_ids, names)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.instance_id, s.name, count(*), min(x.value), max(x.value), "
            f"{float_quotient(float_sum('x.value'), 'count(*)')}, "
            "(array_agg(x.value ORDER BY x.ts DESC))[1] "
            f"FROM {SERIES_TABLE} s JOIN all_samples_between(%s, %s) x ON x.series_id = s.id "
            f"WHERE {where} GROUP BY s.instance_id, s.name ORDER BY s.instance_id, s.name",
            [start, end] + params,
        )
        return [MetricAggregate(*row) for row in cursor.fetchall()]


def delete_samples_of_instance(instance_id) -> int:
    """Delete every sample and rollup of the instance's series (they have no foreign key to
    cascade); returns how many samples went."""
    _SERIES_IDS.pop(instance_id, None)
    with connection.cursor() as cursor:
        rollups = [level.table.name for level in ROLLUP_LEVELS]
        for table in (*rollups, "rollup_late", STALENESS_TABLE, BLOCKS.name, SAMPLES_TABLE):
            cursor.execute(
                f"DELETE FROM {table} WHERE series_id IN "
                f"(SELECT id FROM {SERIES_TABLE} WHERE instance_id = %s)",
                [instance_id],
            )
        return cursor.rowcount


def count_samples(series_ids: Sequence[int] | None = None) -> int:
    """How many samples are stored (for some series, or in all), raw and compacted."""
    which, params = "", []
    if series_ids is not None:
        which, params = "WHERE series_id = ANY(%s)", [list(series_ids)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT count(*) FROM {SAMPLES_TABLE} {which}) "
            f"+ (SELECT coalesce(sum(count), 0) FROM {BLOCKS.name} {which})",
            params * 2,
        )
        return int(cursor.fetchone()[0])


def _series_filter(instance_ids, names) -> tuple[str, list]:
    clauses, params = ["TRUE"], []
    if instance_ids is not None:
        clauses.append("s.instance_id = ANY(%s)")
        params.append(list(instance_ids))
    if names is not None:
        clauses.append("s.name = ANY(%s)")
        params.append(list(names))
    return " AND ".join(clauses), params


# --- dashboard reads ------------------------------------------------------------------------


def _stride(start: datetime, end: datetime, buckets: int) -> timedelta:
    return max((end - start) / max(1, buckets), timedelta(seconds=1))


RESOLUTIONS = ("auto", "raw", *(level.name for level in ROLLUP_LEVELS))
# A bucket's aggregates over samples (ts, value) and over rollup rows. "last" is the value at the
# newest time, taken as the max of (epoch, value) pairs: a plain aggregate, so PostgreSQL can
# group in a hash instead of sorting every row.
SAMPLE_AGGREGATES = (
    f"min(value), max(value), {float_sum('value')}, count(*), "
    "(max(ARRAY[date_part('epoch', ts), value]))[2]"
)
ROLLUP_AGGREGATES = (
    f"min(min), max(max), {float_sum('sum')}, sum(count), "
    "(max(ARRAY[date_part('epoch', bucket), last]))[2]"
)


def pick_resolution(start: datetime, end: datetime, buckets: int) -> str:
    """The coarsest resolution whose buckets are no wider than the chart's: ``raw`` or a rollup's
    name."""
    stride = _stride(start, end, buckets)
    fitting = [level.name for level in ROLLUP_LEVELS if stride >= level.width]
    return fitting[-1] if fitting else "raw"


def floor_time(ts: datetime, width: timedelta) -> datetime:
    """The start of the ``width``-wide bucket (counted from the epoch) holding ``ts``."""
    return EPOCH + ((ts - EPOCH) // width) * width


def rollup_watermark() -> datetime | None:
    """How far the rollups have read the samples (None: never refreshed)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT upto FROM rollup_watermark WHERE resolution = 'rollups'")
        row = cursor.fetchone()
    return row[0] if row else None


def points_of_series(
    series_ids: Sequence[int],
    start: datetime,
    end: datetime,
    buckets: int,
    resolution: str = "auto",
) -> dict[int, list[Bucket]]:
    """Points of many series in one query: ``{series_id: [Bucket, ...]}``, about ``buckets``
    each.

    ``resolution`` ``auto`` reads the coarsest rollup that still gives that many points (see
    ``pick_resolution``); ``raw`` or a rollup's name forces one. A rollup chart's buckets are a
    whole number of rollup buckets (the nearest to the asked width), starting at the rollup
    bucket holding ``start``; the part after the rollups' watermark is read from the samples.
    """
    if resolution == "auto":
        resolution = pick_resolution(start, end, buckets)
    stride = _stride(start, end, buckets)
    ids = list(series_ids)
    if resolution == "raw":
        sql = (
            f"SELECT series_id, {epoch_us('date_bin(%s, ts, %s)')} AS b, {SAMPLE_AGGREGATES} "
            "FROM samples_between(%s, %s, %s) GROUP BY series_id, b ORDER BY series_id, b"
        )
        params = [stride, start, ids, start, end]
    else:
        level = next(level for level in ROLLUP_LEVELS if level.name == resolution)
        stride = max(1, round(stride / level.width)) * level.width
        origin = floor_time(start, level.width)
        # Rollup buckets before the one holding the watermark are whole; the rest is read from
        # the samples. A scalar subquery, so the plan still prunes partitions (at run time).
        cutoff = (
            "greatest(%s::timestamptz, least(%s::timestamptz, coalesce(date_bin(%s, ("
            "SELECT upto FROM rollup_watermark WHERE resolution = 'rollups'), 'epoch'), "
            "'-infinity')))"
        )
        sql = (
            f"SELECT series_id, {epoch_us('date_bin(%s, bucket, %s)')} AS b, "
            f"{ROLLUP_AGGREGATES} FROM ("
            "  SELECT series_id, bucket, min, max, sum, count, last"
            f"  FROM {level.table.name} WHERE series_id = ANY(%s) AND bucket >= %s"
            f"  AND bucket < {cutoff}"
            "  UNION ALL"
            "  SELECT series_id, ts, value, value, value, 1, value"
            f"  FROM samples_between(%s, {cutoff}, %s)"
            ") parts GROUP BY series_id, b ORDER BY series_id, b"
        )
        bounds = [origin, end, level.width]
        params = [stride, origin, ids, origin, *bounds, ids, *bounds, end]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        points: dict[int, list[Bucket]] = {series_id: [] for series_id in ids}
        for series_id, micros, low, high, total, count, last in cursor.fetchall():
            ts = from_epoch_us(micros)
            points[series_id].append(Bucket(ts, low, high, total / count, last, count))
        return points


def metric_trends(
    names: Sequence[str],
    start: datetime,
    end: datetime,
    buckets: int,
    instance_ids: Sequence | None = None,
) -> dict[tuple[object, str], list[tuple[datetime, float]]]:
    """Average of each (instance, metric name) per time bucket, all label sets together.

    Returns ``{(instance_id, name): [(bucket_start, avg), ...]}`` in time order: the overview's
    sparklines for every instance in one query.
    """
    where, params = _series_filter(instance_ids, names)
    # One row per (instance, name) with its buckets as arrays: 1,000 sparklines come back as
    # 1,000 rows, not 40,000, and the buckets group in a hash, not an on-disk sort.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT instance_id, name,"
            " array_agg(extract(epoch FROM bucket)::float8 ORDER BY bucket),"
            " array_agg(value ORDER BY bucket) FROM ("
            "  SELECT s.instance_id, s.name, date_bin(%s, x.ts, %s) AS bucket,"
            f"  {float_quotient(float_sum('x.value'), 'count(*)')} AS value"
            f"  FROM {SERIES_TABLE} s JOIN all_samples_between(%s, %s) x ON x.series_id = s.id"
            f"  WHERE {where}"
            "  GROUP BY s.instance_id, s.name, bucket"
            ") buckets GROUP BY instance_id, name",
            [_stride(start, end, buckets), start, start, end] + params,
        )
        return {
            (instance_id, name): [
                (datetime.fromtimestamp(epoch, UTC), value)
                for epoch, value in zip(epochs, values, strict=True)
            ]
            for instance_id, name, epochs, values in cursor.fetchall()
        }


def samples_per_second(
    window: timedelta = timedelta(minutes=1), now: datetime | None = None
) -> float:
    """Samples stamped within the last ``window``, per second: the overview's ingest rate.

    Read from the raw samples only: the last minutes are never compacted."""
    now = now or datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {SAMPLES_TABLE} WHERE ts >= %s AND ts < %s",
            [now - window, now],
        )
        return cursor.fetchone()[0] / window.total_seconds()


# --- alert rule evaluation ------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesValue:
    instance_id: object
    series_id: int
    labels: dict
    value: float | None


# Label matchers as SQL over a series' labels; a missing label compares as "" (as in
# Prometheus), and regexes must match the whole value.
_MATCHER_SQL = {
    "=": "coalesce(s.labels->>%s, '') = %s",
    "!=": "coalesce(s.labels->>%s, '') <> %s",
    "=~": "coalesce(s.labels->>%s, '') ~ ('^(?:' || %s || ')$')",
    "!~": "coalesce(s.labels->>%s, '') !~ ('^(?:' || %s || ')$')",
}


def _named_series_filter(
    name: str, matchers: Sequence[dict], instance_ids: Sequence | None
) -> tuple[list[str], list]:
    clauses, params = ["s.name = %s"], [name]
    if instance_ids is not None:
        clauses.append("s.instance_id = ANY(%s)")
        params.append(list(instance_ids))
    for matcher in matchers:
        clauses.append(_MATCHER_SQL[matcher["op"]])
        params.extend([matcher["label"], matcher["value"]])
    return clauses, params


def window_values(
    name: str,
    matchers: Sequence[dict],
    instance_ids: Sequence | None,
    start: datetime,
    end: datetime,
    aggregation: str,
) -> list[SeriesValue]:
    """``aggregation`` over ``(start, end]`` of every series named ``name`` whose labels
    satisfy ``matchers`` (``{"label", "op", "value"}``, op one of = != =~ !~), of the given
    instances (None: all), in one query.

    A matching series without samples in the window still gets a row, with the aggregation of
    nothing (None, or 0 for count): that is how rule evaluation tells "no data".
    """
    expression = WINDOW_AGGREGATES[aggregation]
    clauses, params = _named_series_filter(name, matchers, instance_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.instance_id, s.id, s.labels, a.value FROM {SERIES_TABLE} s "
            f"CROSS JOIN LATERAL (SELECT {expression} AS value "
            "  FROM samples_between(ARRAY[s.id], %s, %s) WHERE ts > %s) a "
            f"WHERE {' AND '.join(clauses)} ORDER BY s.instance_id, s.id",
            [start, end + MICROSECOND, start, *params],
        )
        return [
            SeriesValue(instance_id, series_id, _as_dict(labels), value)
            for instance_id, series_id, labels, value in cursor.fetchall()
        ]


# --- federation -----------------------------------------------------------------------------

INSTANCE_TABLE = "instances_instance"
# Columns a matcher may name besides labels: the metric name and the instance's agent id.
_MATCHER_COLUMNS = {"__name__": "s.name", "instance": "i.agent_id"}
_MATCHER_OPS = {
    "=": "{} = %s",
    "!=": "{} <> %s",
    "=~": "{} ~ ('^(?:' || %s || ')$')",
    "!~": "{} !~ ('^(?:' || %s || ')$')",
}


_REGEX_SPECIAL = frozenset("\\.+*?()|[]{}^$")


def _selector_sql(matchers: Sequence[dict], params: list) -> str:
    """SQL that holds for a series (``s``, joined to its instance ``i``) satisfying every one
    of ``matchers``; their values are appended to ``params``."""
    clauses = []
    for matcher in matchers:
        column = _MATCHER_COLUMNS.get(matcher["label"])
        if column is None:
            column = "coalesce(s.labels->>%s, '')"
            params.append(matcher["label"])
        literals = _literal_alternatives(matcher["value"]) if "~" in matcher["op"] else None
        if literals is not None:
            # A regex of literal alternatives (a dashboard variable's "All" is one branch per
            # instance) matches just those strings: compared as a list, as Prometheus's own
            # matcher does, it costs no regex of hundreds of branches run on every series.
            negation = "NOT " if matcher["op"] == "!~" else ""
            clauses.append(f"{negation}({column} = ANY(%s))")
            params.append(literals)
            continue
        clauses.append(_MATCHER_OPS[matcher["op"]].format(column))
        params.append(matcher["value"])
    return "(" + (" AND ".join(clauses) or "TRUE") + ")"


def _literal_alternatives(pattern: str) -> list[str] | None:
    """The strings a regex made only of literal alternatives (``a|b\\.c``, special characters
    escaped) matches whole, or None for any other regex."""
    alternatives, current, escaped = [], [], False
    for character in pattern:
        if escaped:
            if character not in _REGEX_SPECIAL:
                return None  # \d, \w, \n, ...: a class or an escape, not the character
            current.append(character)
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == "|":
            alternatives.append("".join(current))
            current = []
        elif character in _REGEX_SPECIAL:
            return None
        else:
            current.append(character)
    if escaped:
        return None
    alternatives.append("".join(current))
    return alternatives


@dataclass(frozen=True)
class AgentValue:
    agent_id: str
    name: str
    labels: dict
    ts: datetime
    value: float


def latest_matching(selectors: Sequence[Sequence[dict]], since: datetime) -> list[AgentValue]:
    """The newest sample since ``since`` of every series matching any of ``selectors`` (as the
    write path keeps it on the series rows, like ``latest_values``).

    A selector is a list of matchers (``{"label", "op", "value"}``, op one of = != =~ !~) that
    must all hold; ``__name__`` is the metric name, ``instance`` the instance's agent id, and a
    missing label compares as "" (as in Prometheus). One query, by metric name then agent id.
    """
    params = [since]
    alternatives = [_selector_sql(matchers, params) for matchers in selectors]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT i.agent_id, s.name, s.labels, s.last_ts, s.last_value FROM {SERIES_TABLE} s "
            f"JOIN {INSTANCE_TABLE} i ON i.id = s.instance_id WHERE s.last_ts >= %s "
            f"AND ({' OR '.join(alternatives) or 'FALSE'}) ORDER BY s.name, i.agent_id, s.id",
            params,
        )
        return [
            AgentValue(agent_id, name, _as_dict(labels), ts, value)
            for agent_id, name, labels, ts, value in cursor.fetchall()
        ]


# --- PromQL reads ---------------------------------------------------------------------------

# timestamptz on the wire: microseconds since 2000-01-01.
_PG_EPOCH_US = 946_684_800_000_000
_COPY_HEADER_BYTES = 19
# A one-dimensional array in binary COPY: ndim, has-nulls, element type, length, lower bound,
# then each element as its length and its 8 bytes.
_ARRAY_HEADER = struct.Struct(">iiiii")
_TS_ELEMENT = np.dtype([("length", ">i4"), ("value", ">i8")])
_FLOAT_ELEMENT = np.dtype([("length", ">i4"), ("value", ">f8")])


def _matching_sql(selectors: Sequence[Sequence[dict]], since: datetime | None, params: list) -> str:
    """SQL for "matches any of ``selectors`` (all series if none) and has a sample not older
    than ``since``"; values are appended to ``params``."""
    where = " OR ".join(_selector_sql(matchers, params) for matchers in selectors) or "TRUE"
    if since is None:
        return f"({where})"
    params.append(since)
    return f"({where}) AND s.last_ts >= %s"


def write_staleness_markers(instance_id, markers: Sequence[tuple[SeriesKey, datetime]]) -> int:
    """Record that these series of ``instance_id`` ended at these times; a marker for a series
    never stored is dropped (it ends nothing). Returns how many were new."""
    wanted = {(key.name, key.labels_key): key for key, _ in markers}
    ids = _existing_series(instance_id, wanted)
    rows = [
        (ids[(key.name, key.labels_key)], ts)
        for key, ts in markers
        if (key.name, key.labels_key) in ids
    ]
    if not rows:
        return 0
    series, stamps = zip(*rows, strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {STALENESS_TABLE} (series_id, ts) "
            "SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]) ON CONFLICT DO NOTHING",
            [list(series), list(stamps)],
        )
        return cursor.rowcount


def delete_staleness_markers_before(cutoff: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {STALENESS_TABLE} WHERE ts < %s", [cutoff])
        return cursor.rowcount


class LabelledSeries(NamedTuple):
    """A series as PromQL sees it: its stored labels plus ``__name__`` and ``instance``."""

    series_id: int
    labels: dict


def match_series(
    selectors: Sequence[Sequence[dict]],
    since: datetime | None = None,
    limit: int | None = None,
) -> list[LabelledSeries]:
    """Every series matching any of ``selectors`` (lists of matchers, as ``latest_matching``
    takes them) whose newest sample is not older than ``since``, by id."""
    params: list = []
    where = _matching_sql(selectors, since, params)
    limit_sql = f"LIMIT {int(limit)}" if limit is not None else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.id, s.name, i.agent_id, s.labels FROM {SERIES_TABLE} s "
            f"JOIN {INSTANCE_TABLE} i ON i.id = s.instance_id WHERE {where} ORDER BY s.id "
            f"{limit_sql}",
            params,
        )
        return [
            LabelledSeries(sid, {**_as_dict(labels), "__name__": name, "instance": agent_id})
            for sid, name, agent_id, labels in cursor.fetchall()
        ]


class SampleArrays(NamedTuple):
    """Samples of many series as three arrays, by series then time (ts in milliseconds)."""

    series_id: np.ndarray
    ts_ms: np.ndarray
    value: np.ndarray


class TooManySamples(Exception):
    pass


_NO_SAMPLES = SampleArrays(
    np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
)


def sample_arrays(
    series_ids: Sequence[int], start_ms: int, end_ms: int, limit: int
) -> SampleArrays:
    """The samples of ``series_ids`` with ``start_ms <= ts <= end_ms``, in one binary COPY read
    straight into arrays; TooManySamples past ``limit`` (read no further, so memory stays
    bounded whatever the range). Staleness markers come as NaN values: samples are finite."""
    ids = list(series_ids)
    if not ids:
        return _NO_SAMPLES
    start = EPOCH + timedelta(milliseconds=start_ms)
    end = EPOCH + timedelta(milliseconds=end_ms)
    compacted = block_arrays(ids, np.array([[start_ms, end_ms]]), limit)
    limit -= len(compacted.ts_ms)
    ids_, (stamps, values) = _series_arrays(
        f"SELECT series_id, ts, value FROM {SAMPLES_TABLE} "
        "WHERE series_id = ANY(%s) AND ts >= %s AND ts <= %s "
        f"UNION ALL SELECT series_id, ts, 'NaN'::float8 FROM {STALENESS_TABLE} "
        "WHERE series_id = ANY(%s) AND ts >= %s AND ts <= %s",
        [ids, start, end, ids, start, end],
        ("ts", "value"),
        limit,
    )
    return _merged(SampleArrays(ids_, _ms_of(stamps), values), compacted)


def sample_arrays_in_spans(
    series_ids: Sequence[int], spans_ms: np.ndarray, limit: int
) -> SampleArrays:
    """The samples of ``series_ids`` inside any of ``spans_ms`` (rows of closed ``[first, last]``
    intervals in ms, disjoint), as ``sample_arrays`` reads them but without staleness markers:
    for the edges of windows whose middle is read from rollups."""
    if not len(series_ids) or not len(spans_ms):
        return _NO_SAMPLES
    compacted = block_arrays(series_ids, spans_ms, limit)
    limit -= len(compacted.ts_ms)
    ids_, (stamps, values) = _series_arrays(
        # A lateral subquery per span, kept apart by OFFSET 0: as a plain join the planner
        # reads every sample of the series and filters them by span.
        "SELECT s.series_id, s.ts, s.value FROM unnest(%s::timestamptz[], %s::timestamptz[]) "
        "AS span(first, last) CROSS JOIN LATERAL (SELECT series_id, ts, value "
        f"FROM {SAMPLES_TABLE} WHERE series_id = ANY(%s) AND ts >= span.first "
        "AND ts <= span.last OFFSET 0) AS s",
        [
            [EPOCH + timedelta(milliseconds=int(first)) for first in spans_ms[:, 0]],
            [EPOCH + timedelta(milliseconds=int(last)) for last in spans_ms[:, 1]],
            list(series_ids),
        ],
        ("ts", "value"),
        limit,
    )
    return _merged(SampleArrays(ids_, _ms_of(stamps), values), compacted)


def _merged(raw: SampleArrays, compacted: SampleArrays) -> SampleArrays:
    """Raw and compacted samples together, by series then time."""
    if not len(compacted.ts_ms):
        return raw
    ids, stamps, values = (np.concatenate(pair) for pair in zip(raw, compacted, strict=True))
    order = np.lexsort((stamps, ids))
    return SampleArrays(ids[order], stamps[order], values[order])


def block_arrays(series_ids: Sequence[int], spans_ms: np.ndarray, limit: int) -> SampleArrays:
    """The compacted samples of ``series_ids`` inside any of ``spans_ms`` (rows of closed
    ``[first, last]`` intervals in ms, disjoint), decoded in numpy; TooManySamples past
    ``limit``.

    A block is read if it overlaps the spans' days, and of it only the hours from the first to
    the last the spans reach (its hour index, migration 0011); the blocks lying wholly inside
    the spans are counted as they are read, and the read stops past ``limit`` of them, so memory
    stays bounded (to that and the edge blocks) whatever the range.
    """
    spans_us = np.asarray(spans_ms, dtype=np.int64).reshape(-1, 2) * 1000
    if not len(series_ids) or not len(spans_us):
        return _NO_SAMPLES
    spans_us = spans_us[np.argsort(spans_us[:, 0])]
    day_us = 86_400_000_000
    days = sorted(
        {day for first, last in spans_us for day in range(first // day_us, last // day_us + 1)}
    )
    first, last = (from_epoch_us(int(us)) for us in (spans_us[0, 0], spans_us[-1, 1]))
    with _binary_copy(
        "COPY (SELECT series_id, day, base, ts_deltas_us[low:high], sample_values[low:high] "
        "FROM (SELECT *, coalesce(hour_starts[first_hour + 1], 1) AS low, "
        "  CASE WHEN hour_starts IS NULL OR last_hour = 23 THEN count "
        "  ELSE hour_starts[last_hour + 2] - 1 END AS high, "
        "  coalesce(hour_bases_us[first_hour + 1], 0) AS base FROM ("
        "    SELECT *, sum(CASE WHEN first_ts >= %s AND last_ts <= %s THEN count ELSE 0 END) "
        "    OVER (ORDER BY series_id, day) AS inside, "
        "    CASE WHEN first_ts >= %s AND last_ts <= %s THEN count ELSE 0 END AS own, "
        "    greatest(0, floor(extract(epoch FROM %s - day) / 3600))::int AS first_hour, "
        "    least(23, floor(extract(epoch FROM %s - day) / 3600))::int AS last_hour "
        f"    FROM {BLOCKS.name} WHERE series_id = ANY(%s) AND day = ANY(%s) "
        "    AND last_ts >= %s AND first_ts <= %s) AS b"
        ") AS sliced WHERE inside - own <= %s AND low <= high ORDER BY series_id, day) "
        "TO STDOUT (FORMAT BINARY)",
        [
            *(first, last) * 3,
            list(series_ids),
            [EPOCH + timedelta(days=day) for day in days],
            first,
            last,
            limit,
        ],
    ) as copy:
        data = b"".join(bytes(chunk) for chunk in copy)
    blocks: list[tuple[int, int, int]] = []
    deltas: list[np.ndarray] = []
    values: list[np.ndarray] = []
    position = _COPY_HEADER_BYTES
    while struct.unpack_from(">h", data, position)[0] != -1:
        # Fields: the series id, the day and the base (length 8 each), then the two arrays.
        series_id, day, base = struct.unpack_from(">q4xq4xq", data, position + 6)
        position += 38
        for column, element in ((deltas, _TS_ELEMENT), (values, _FLOAT_ELEMENT)):
            (length,) = struct.unpack_from(">i", data, position)
            count = _ARRAY_HEADER.unpack_from(data, position + 4)[3]
            column.append(
                np.frombuffer(data, element, count, position + 4 + _ARRAY_HEADER.size)["value"]
            )
            position += 4 + length
        blocks.append((series_id, day + _PG_EPOCH_US + base, count))
    if not blocks:
        return _NO_SAMPLES
    ids, starts, counts = (np.array(column, dtype=np.int64) for column in zip(*blocks, strict=True))
    # Each block's running sum of deltas, from its base (the day's start, or the sample before
    # its first hour read): one cumulative sum over all, less what the blocks before summed to.
    running = np.cumsum(np.concatenate(deltas).astype(np.int64))
    ends = np.cumsum(counts)
    before = np.concatenate(([0], running[ends[:-1] - 1]))
    stamps_us = running + np.repeat(starts - before, counts)
    which = np.searchsorted(spans_us[:, 0], stamps_us, side="right") - 1
    inside = (which >= 0) & (stamps_us <= spans_us[np.maximum(which, 0), 1])
    if np.count_nonzero(inside) > limit:
        raise TooManySamples(limit)
    return SampleArrays(
        np.repeat(ids, counts)[inside],
        stamps_us[inside] // 1000,
        np.concatenate(values).astype(np.float64)[inside],
    )


class RollupArrays(NamedTuple):
    """Rollup buckets of many series, by series then bucket start (ms): each bucket's sum,
    count, min and max."""

    series_id: np.ndarray
    bucket_ms: np.ndarray
    sum: np.ndarray
    count: np.ndarray
    min: np.ndarray
    max: np.ndarray


def rollup_arrays(
    series_ids: Sequence[int], level: RollupLevel, start_ms: int, end_ms: int, limit: int
) -> RollupArrays:
    """The ``level`` buckets of ``series_ids`` starting in ``[start_ms, end_ms)``, read as
    ``sample_arrays`` reads samples. Only buckets ending by ``settled_rollups_ms`` hold all
    their samples, and not those of ``series_with_late_minutes``."""
    if not len(series_ids):
        return RollupArrays(_NO_SAMPLES.series_id, _NO_SAMPLES.ts_ms, *[_NO_SAMPLES.value] * 4)
    start = EPOCH + timedelta(milliseconds=start_ms)
    end = EPOCH + timedelta(milliseconds=end_ms)
    ids_, (buckets, *figures) = _series_arrays(
        "SELECT series_id, bucket, sum, count::float8, min, max "
        f"FROM {level.table.name} WHERE series_id = ANY(%s) AND bucket >= %s AND bucket < %s",
        [list(series_ids), start, end],
        ("bucket", "sum", "count", "min", "max"),
        limit,
    )
    return RollupArrays(ids_, _ms_of(buckets), *figures)


def settled_rollups_ms() -> int | None:
    """Where the settled rollups end (ms): every sample before it was rolled up, but those of
    queued late minutes; a bucket holds all its samples if it ends by then. Samples up to the
    grace window before the watermark may still arrive and be read by the next refresh. None
    when the rollups were never refreshed."""
    watermark = rollup_watermark()
    if watermark is None:
        return None
    settled = watermark - timedelta(seconds=settings.ROLLUP_GRACE_SECONDS)
    return (settled - EPOCH) // timedelta(milliseconds=1)


def series_with_late_minutes(series_ids: Sequence[int], start_ms: int, end_ms: int) -> set[int]:
    """Those of ``series_ids`` with late minutes in ``[start_ms, end_ms)`` still queued for the
    rollups: their buckets there may miss samples."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT series_id FROM rollup_late WHERE series_id = ANY(%s) "
            "AND bucket >= %s AND bucket < %s",
            [
                list(series_ids),
                EPOCH + timedelta(milliseconds=start_ms),
                EPOCH + timedelta(milliseconds=end_ms),
            ],
        )
        return {row[0] for row in cursor.fetchall()}


def _ms_of(stamps: np.ndarray) -> np.ndarray:
    return (stamps + _PG_EPOCH_US) // 1000


def _series_arrays(
    rows_sql: str, params: list, columns: Sequence[str], limit: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Run ``rows_sql`` (selecting ``series_id``, then ``columns``: a timestamptz first, then
    float8s) as one binary COPY with a row per series holding each column as an array, and
    parse them straight into arrays: each row's series id repeated, and each column
    concatenated (timestamps as microseconds since PostgreSQL's epoch), by series then by the
    first column. TooManySamples past ``limit`` rows."""
    elements = [_TS_ELEMENT] + [_FLOAT_ELEMENT] * (len(columns) - 1)
    aggregates = ", ".join(f"array_agg({column})" for column in columns)
    # One row per series with its rows as arrays: COPY sends a message per row, and a message
    # per sample cost more in Python than the query in PostgreSQL. The LIMIT inside bounds what
    # the server gathers; it needs no order, as more than ``limit`` rows is refused whichever
    # they are. The rows are put in order here, not by the server: a sort of every row (past
    # work_mem at a fleet's hour) and array_agg sorting each series again were most of the
    # query, and the rows of a series arrive in time order as they were written.
    with _binary_copy(
        f"COPY (SELECT series_id, {aggregates} FROM ({rows_sql} "
        f"LIMIT {int(limit) + 1}) AS picked (series_id, {', '.join(columns)}) "
        "GROUP BY series_id) TO STDOUT (FORMAT BINARY)",
        params,
    ) as copy:
        data = b"".join(bytes(chunk) for chunk in copy)
    series: list[tuple[int, int]] = []
    parsed: list[list[np.ndarray]] = [[] for _ in columns]
    position = _COPY_HEADER_BYTES
    while struct.unpack_from(">h", data, position)[0] != -1:
        # Fields: the series id (length 8), then the arrays, each after its length.
        (series_id,) = struct.unpack_from(">q", data, position + 6)
        position += 14
        for column, element in zip(parsed, elements, strict=True):
            (length,) = struct.unpack_from(">i", data, position)
            count = _ARRAY_HEADER.unpack_from(data, position + 4)[3]
            column.append(
                np.frombuffer(data, element, count, position + 4 + _ARRAY_HEADER.size)["value"]
            )
            position += 4 + length
        series.append((series_id, count))
    if sum(count for _, count in series) > limit:
        raise TooManySamples(limit)
    by_id = sorted(range(len(series)), key=lambda index: series[index][0])
    ids = np.repeat(
        np.array([series[index][0] for index in by_id], dtype=np.int64),
        [series[index][1] for index in by_id],
    )
    native = [np.int64] + [np.float64] * (len(columns) - 1)
    arrays = [
        np.concatenate([column[index] for index in by_id]).astype(dtype)
        if column
        else np.empty(0, dtype)
        for column, dtype in zip(parsed, native, strict=True)
    ]
    return ids, _in_series_order(ids, arrays)


def _in_series_order(ids: np.ndarray, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """``arrays`` (grouped by series as ``ids`` says) with each series' rows ordered by the
    first array; a stable sort, done only if a series' rows came out of order (a late sample
    stored after newer ones, a staleness marker read after the samples)."""
    first = arrays[0]
    if not ((first[1:] < first[:-1]) & (ids[1:] == ids[:-1])).any():
        return arrays
    order = np.lexsort((first, ids))
    return [array[order] for array in arrays]


def label_names(selectors: Sequence[Sequence[dict]], since: datetime | None) -> list[str]:
    """The label names (with ``__name__`` and ``instance``) of the matching series."""
    params: list = []
    where = _matching_sql(selectors, since, params)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT jsonb_object_keys(s.labels) FROM {SERIES_TABLE} s "
            f"JOIN {INSTANCE_TABLE} i ON i.id = s.instance_id WHERE {where}",
            params,
        )
        names = {name for (name,) in cursor.fetchall()}
    return sorted(names | {"__name__", "instance"})


def label_values(
    label: str, selectors: Sequence[Sequence[dict]], since: datetime | None
) -> list[str]:
    """The distinct non-empty values of ``label`` over the matching series."""
    column = _MATCHER_COLUMNS.get(label, "s.labels->>%s")
    params: list = [] if label in _MATCHER_COLUMNS else [label]
    where = _matching_sql(selectors, since, params)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT {column} AS value FROM {SERIES_TABLE} s "
            f"JOIN {INSTANCE_TABLE} i ON i.id = s.instance_id WHERE {where} ORDER BY value",
            params,
        )
        return [value for (value,) in cursor.fetchall() if value]


def metric_units(name: str | None = None) -> list[tuple[str, str]]:
    """(metric name, unit) of every metric (or of ``name``), by name."""
    where, params = ("WHERE name = %s", [name]) if name else ("", [])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT name, max(unit) FROM {SERIES_TABLE} {where} GROUP BY name ORDER BY name",
            params,
        )
        return cursor.fetchall()


# --- the series inventory, for an engine that keeps the samples elsewhere --------------------


class SeriesRow(NamedTuple):
    series_id: int
    instance_id: object
    agent_id: str
    name: str
    labels: dict
    unit: str

    @property
    def promql_labels(self) -> dict:
        """The labels PromQL sees: the stored ones plus ``__name__`` and ``instance``."""
        return {**self.labels, "__name__": self.name, "instance": self.agent_id}


_SERIES_ROW_SQL = (
    "SELECT s.id, s.instance_id, i.agent_id, s.name, s.labels, s.unit FROM "
    f"{SERIES_TABLE} s JOIN {INSTANCE_TABLE} i ON i.id = s.instance_id"
)


def _series_rows(where: str, params: list) -> list[SeriesRow]:
    with connection.cursor() as cursor:
        cursor.execute(f"{_SERIES_ROW_SQL} WHERE {where} ORDER BY s.instance_id, s.id", params)
        return [
            SeriesRow(sid, iid, agent_id, name, _as_dict(labels), unit)
            for sid, iid, agent_id, name, labels, unit in cursor.fetchall()
        ]


def series_by_id(series_ids: Sequence[int]) -> list[SeriesRow]:
    return _series_rows("s.id = ANY(%s)", [list(series_ids)])


def series_of(instance_ids: Sequence | None, names: Sequence[str] | None) -> list[SeriesRow]:
    """The series of some instances / metric names (None: all)."""
    where, params = _series_filter(instance_ids, names)
    return _series_rows(where, params)


def series_named(
    name: str, matchers: Sequence[dict], instance_ids: Sequence | None
) -> list[SeriesRow]:
    """The series ``window_values`` reads: named ``name``, of ``instance_ids`` (None: all),
    whose labels satisfy ``matchers``."""
    clauses, params = _named_series_filter(name, matchers, instance_ids)
    return _series_rows(" AND ".join(clauses), params)


# --- copying the samples to another engine ---------------------------------------------------

COPY_PROGRESS_TABLE = "samples_copy_progress"


def series_ids_after(last_series_id: int, count: int) -> list[int]:
    """The next ``count`` series ids after ``last_series_id``, in order."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {SERIES_TABLE} WHERE id > %s ORDER BY id LIMIT %s",
            [last_series_id, count],
        )
        return [series_id for (series_id,) in cursor.fetchall()]


def sample_time_bounds() -> tuple[int, int] | None:
    """The oldest and newest sample times (ms), or None when there are no samples."""
    with connection.cursor() as cursor:
        bounds = f"{epoch_us('min(first)')} / 1000, {epoch_us('max(last)')} / 1000"
        cursor.execute(
            f"SELECT {bounds} FROM (SELECT min(ts) AS first, max(ts) AS last FROM {SAMPLES_TABLE} "
            f"UNION ALL SELECT min(first_ts), max(last_ts) FROM {BLOCKS.name}) AS parts"
        )
        first, last = cursor.fetchone()
    return None if first is None else (first, last)


def copy_progress(target: str) -> tuple[int, int]:
    """(last series id copied, samples copied) to ``target``; (0, 0) before the first run."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT last_series_id, copied FROM {COPY_PROGRESS_TABLE} WHERE target = %s", [target]
        )
        row = cursor.fetchone()
    return row if row else (0, 0)


def save_copy_progress(target: str, last_series_id: int, copied: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {COPY_PROGRESS_TABLE} (target, last_series_id, copied) "
            "VALUES (%s, %s, %s) ON CONFLICT (target) DO UPDATE SET "
            "last_series_id = EXCLUDED.last_series_id, copied = EXCLUDED.copied, updated = now()",
            [target, last_series_id, copied],
        )


def forget_copy_progress(target: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {COPY_PROGRESS_TABLE} WHERE target = %s", [target])
