"""The one path every ingest format stores samples through."""

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TypeVar

import numpy as np
from django.db import connection, transaction

from alerts.instance_status import contact_statement, instance_of_contact, record_contact
from ingestion import node_exporter
from ingestion.errors import ApiError
from ingestion.metrics import INGEST_BATCHES, INGEST_SAMPLES
from ingestion.parsers import (
    ParsedBatch,
    ParsedMetric,
    ParsedSample,
    SampleColumns,
    series_idents,
)
from instances import store
from instances.events import publish_instance_updated
from instances.models import Instance
from instances.samples import POSTGRES, samples_engine


@dataclass(frozen=True)
class StoredBatch:
    instance: Instance
    accepted: int
    new: int
    # Samples written: those accepted and the host metrics derived from them.
    samples: int
    # (name, labels key) → series id, for every series of the batch.
    series_ids: dict[tuple[str, bytes], int]


Stored = TypeVar("Stored")


def _written_once(write: Callable[[], Stored]) -> Stored:
    """``write()``, a transaction of its own, with its COPYs unguarded; written again, guarded,
    in the rare case that loses it (a replayed or late batch). Within a caller's transaction,
    ``write()`` as it is: a lost transaction there would be the caller's. (What runs on its
    commit runs unguarded too: publishing the batch, which writes no samples.)"""
    if connection.in_atomic_block:
        return write()
    try:
        with store.unguarded_copies():
            return write()
    except store.CopyConflict:
        return write()


def store_batch(
    instance_fields: dict,
    samples: Sequence[ParsedSample],
    staleness_markers: list[ParsedSample] = (),
) -> StoredBatch:
    """Register the instance and store its samples, all or nothing.

    Samples already stored (same series and timestamp) are kept as they were, so a replayed batch
    is harmless. Listeners hear of the batch once it is committed. node_exporter metrics also
    give Vigil's host metrics (``ingestion/node_exporter.py``), stored alongside.
    """
    stored = _written_once(partial(_store_batch, instance_fields, samples, staleness_markers))
    _count([stored])
    return stored


def _store_batch(
    instance_fields: dict,
    samples: Sequence[ParsedSample],
    staleness_markers: list[ParsedSample],
) -> StoredBatch:
    if not staleness_markers and _may_be_usual(samples):
        stored = _store_usual_batch(instance_fields, samples)
        if stored is not None:
            return stored
    agent_id = instance_fields["agent_id"]
    described = {key: value for key, value in instance_fields.items() if key != "agent_id"}
    with transaction.atomic():
        instance = record_contact(agent_id, **described)
        accepted = len(samples)
        samples = [*samples, *node_exporter.host_samples(instance.pk, samples)]
        idents = series_idents(samples)
        keys = {}
        for ident, sample in zip(idents, samples, strict=True):
            if ident not in keys:
                keys[ident] = store.SeriesKey(sample.name, sample.labels, sample.unit)
        try:
            series_ids = store.resolve_series(instance.pk, list(keys.values()))
        except store.SeriesLimitExceeded as error:
            raise ApiError(400, str(error), reason="series_limit") from None
        new = samples_engine().write_samples(_rows(samples, idents, series_ids))
        if staleness_markers:
            samples_engine().write_staleness_markers(
                instance.pk,
                [(store.SeriesKey(s.name, s.labels, s.unit), s.ts) for s in staleness_markers],
            )
        transaction.on_commit(partial(publish_instance_updated, instance.pk, len(samples)))
    _remember_instance(agent_id, instance.pk, described)
    return StoredBatch(instance, accepted, new, len(samples), series_ids)


def _may_be_usual(samples: Sequence[ParsedSample]) -> bool:
    """Whether a batch may be the usual one ``_store_usual_batch`` writes: a transaction of its
    own whose COPY goes unguarded (``_written_once``' first attempt), samples kept in
    PostgreSQL."""
    return (
        bool(samples)
        and store.copies_unguarded()
        and not connection.in_atomic_block
        and connection.get_autocommit()
        and samples_engine().name == POSTGRES
    )


def _store_usual_batch(
    instance_fields: dict, samples: Sequence[ParsedSample]
) -> StoredBatch | None:
    """The usual batch (of an instance this process has stored a batch of before, describing
    itself as it did, of series this process has resolved, none of its samples late) in one
    exchange with PostgreSQL (``store.copy_after``) instead of seven: what ``_store_batch``
    writes, in one transaction. None, nothing written, for any other batch."""
    agent_id = instance_fields["agent_id"]
    described = {key: value for key, value in instance_fields.items() if key != "agent_id"}
    instance_id, described_before = _INSTANCES.get(agent_id, (None, None))
    if instance_id is None or described != described_before:
        return None
    samples = SampleColumns.of(samples)
    earliest = samples.earliest
    if earliest < store.usual_since():
        return None
    accepted = len(samples)
    if node_exporter.may_derive_from(series.name for series in samples.series):
        derived = node_exporter.host_samples(instance_id, samples)
        if derived:
            samples = SampleColumns.of([*samples, *derived])
    series_ids = store.cached_series_ids(instance_id, [series.ident for series in samples.series])
    if series_ids is None:
        return None
    found = []

    def as_before(row: tuple | None) -> bool:
        instance = None if row is None else instance_of_contact(row)
        found.append(instance)
        return (
            instance is not None
            and instance.pk == instance_id
            and not instance.changed_by(**described)
            # Still on time now that the instance's row is locked (the statement may have waited).
            and earliest >= store.usual_since()
        )

    ids_of_series = np.array([series_ids[series.ident] for series in samples.series], np.int64)
    rows = store.RowArrays(ids_of_series[samples.positions], samples.micros, samples.values)
    if not store.copy_after(contact_statement(agent_id), rows, as_before):
        return None
    publish_instance_updated(instance_id, len(samples))
    return StoredBatch(found[0], accepted, len(rows), len(samples), series_ids)


# The instance id and the description each agent's last batch in this process had: a guess
# that spares ``_store_usual_batch`` a round trip (checked against the instance its statement
# finds), and keeps an agent whose description moves to the path that saves it.
_INSTANCES: dict[str, tuple[object, dict]] = {}


def _remember_instance(agent_id: str, instance_id, described: dict) -> None:
    if len(_INSTANCES) >= store.SERIES_CACHE_INSTANCES:
        _INSTANCES.clear()
    _INSTANCES[agent_id] = (instance_id, described)


def _rows(
    samples: list[ParsedSample], idents: list[tuple[str, bytes]], series_ids: dict
) -> list[tuple[int, datetime, float]]:
    return [(series_ids[ident], s.ts, s.value) for ident, s in zip(idents, samples, strict=True)]


def _count(stored: list[StoredBatch]) -> None:
    """Count batches once stored (not each attempt of ``_written_once``)."""
    INGEST_BATCHES.inc(len(stored))
    INGEST_SAMPLES.inc(sum(batch.samples for batch in stored))


def store_batches(batches: list[ParsedBatch]) -> list[StoredBatch]:
    """Store batches of several instances (one remote write request), all or nothing."""
    stored = _written_once(partial(_store_batches, batches))
    _count(stored)
    return stored


def _store_batches(batches: list[ParsedBatch]) -> list[StoredBatch]:
    with transaction.atomic():
        return [
            _store_batch(batch.instance, batch.samples, batch.staleness_markers)
            for batch in batches
        ]


def store_metrics(metrics: list[ParsedMetric]) -> list[store.Sample]:
    """Store seed-API metrics, which may name several instances, all or nothing.

    A metric's instance is named by uuid or agent id; an agent id never seen before registers
    its instance. Returns the stored samples in the order given.
    """
    with transaction.atomic():
        agent_ids = {
            ref: Instance.agent_id_named_by(ref)
            for ref in {metric.instance_ref for metric in metrics}
        }
        samples_of = defaultdict(list)
        for metric in metrics:
            samples_of[agent_ids[metric.instance_ref]].append(metric.sample)
        stored = {
            agent_id: store_batch({"agent_id": agent_id}, samples)
            for agent_id, samples in samples_of.items()
        }
    return [_stored_sample(stored[agent_ids[m.instance_ref]], m.sample) for m in metrics]


def _stored_sample(batch: StoredBatch, sample: ParsedSample) -> store.Sample:
    series_id = batch.series_ids[sample.series_ident]
    return store.Sample(
        series_id,
        batch.instance.pk,
        sample.name,
        sample.labels,
        sample.unit,
        sample.ts,
        sample.value,
    )
