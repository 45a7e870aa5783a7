"""The one path every ingest format stores samples through."""

from dataclasses import dataclass
from functools import partial

from django.db import transaction

from ingestion.errors import ApiError
from ingestion.metrics import INGEST_BATCHES, INGEST_SAMPLES
from ingestion.parsers import ParsedSample
from instances import store
from instances.events import publish_instance_updated
from instances.models import Instance


@dataclass(frozen=True)
class StoredBatch:
    instance: Instance
    accepted: int
    new: int


def store_batch(instance_fields: dict, samples: list[ParsedSample]) -> StoredBatch:
    """Register the instance and store its samples, all or nothing.

    Samples already stored (same series and timestamp) are kept as they were, so a replayed batch
    is harmless. Listeners hear of the batch once it is committed.
    """
    agent_id = instance_fields["agent_id"]
    described = {key: value for key, value in instance_fields.items() if key != "agent_id"}
    with transaction.atomic():
        instance = Instance.register(agent_id, **described)
        keys = {(s.name, store.labels_key(s.labels)): store.SeriesKey(s.name, s.labels, s.unit)
                for s in samples}  # fmt: skip
        try:
            series_ids = store.resolve_series(instance.pk, list(keys.values()))
        except store.SeriesLimitExceeded as error:
            raise ApiError(400, str(error), reason="series_limit") from None
        rows = [(series_ids[(s.name, store.labels_key(s.labels))], s.ts, s.value) for s in samples]
        new = store.write_samples(rows)
        instance.mark_seen()
        transaction.on_commit(partial(publish_instance_updated, instance.pk, len(samples)))
    INGEST_BATCHES.inc()
    INGEST_SAMPLES.inc(len(samples))
    return StoredBatch(instance=instance, accepted=len(samples), new=new)
