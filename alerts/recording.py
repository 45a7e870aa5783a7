"""Recording rules: each evaluation run stores what their expressions return as samples."""

import logging
import math
from collections import defaultdict
from datetime import datetime

from django.db import transaction

from alerts.models import RecordingRule
from instances import store
from instances.models import Instance
from instances.samples import samples_engine
from query.engine import evaluate
from query.values import QueryError, Scalar, Vector, without_name

logger = logging.getLogger(__name__)


def record(now: datetime) -> int:
    """Evaluate every enabled recording rule at ``now`` and store its series; returns how many
    samples were stored. A rule that fails is logged and the others go on."""
    at_ms = int(now.timestamp() * 1000)
    stored = 0
    for rule in RecordingRule.objects.filter(enabled=True):
        try:
            result = evaluate(rule.expr, at_ms, at_ms, 1)
            stored += _store(rule, result, now)
        except (QueryError, store.SeriesLimitExceeded) as error:
            logger.error("recording rule %s failed: %s", rule.record, error)
    return stored


def _store(rule: RecordingRule, result, now: datetime) -> int:
    if isinstance(result, Scalar):
        found = [({}, float(result.values[0]))]
    elif isinstance(result, Vector):
        found = [
            (without_name(labels), float(values[0]))
            for labels, values, present in zip(
                result.labels, result.values, result.present, strict=True
            )
            if present[0]
        ]
    else:
        raise QueryError(f"recording rule {rule.record} must give a vector or a scalar")
    # As in remote write, the instance label names the instance; series without one are
    # Vigil's own. Vigil stores finite values only.
    by_instance, known = defaultdict(list), {}
    for labels, value in found:
        if not math.isfinite(value):
            continue
        labels = {**labels, **rule.labels}
        agent_id = labels.pop("instance", "")
        instance = Instance.named_by_label(agent_id, known)
        by_instance[instance.pk].append((store.SeriesKey(rule.record, labels), value))
    written = 0
    with transaction.atomic():
        for instance_id, samples in by_instance.items():
            ids = store.resolve_series(instance_id, [key for key, _ in samples])
            rows = [(ids[(key.name, key.labels_key)], now, value) for key, value in samples]
            written += samples_engine().write_samples(rows)
    return written
