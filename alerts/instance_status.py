"""The one writer of an instance's status (PRODUCT.md sections 4 and 7).

An instance's status is derived, never set: ``unknown`` while it is silent (no data for 3 agent
intervals), else from its worst open alert (critical → ``unhealthy``, error or warning →
``warning``, none → ``healthy``). Ingest, the dead man's switch, each evaluation run and the REST
PUT all call ``derive_statuses``; what an agent says of itself through the REST PUT is kept
apart, as ``Instance.reported_status``. The instance standing for Vigil has no agent to be
silent: its alerts alone say.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, Exists, OuterRef, Q, Value, When
from django.utils import timezone

from alerts.models import Alert
from instances import store
from instances.events import publish_instance_updated
from instances.models import VIGIL_AGENT_ID, Instance


def derived_status(now: datetime) -> Case:
    """The status each instance should have at ``now``, as an SQL expression."""
    cutoff = now - timedelta(seconds=3 * settings.AGENT_INTERVAL_SECONDS)
    open_alerts = Alert.objects.filter(instance=OuterRef("pk"), resolved_at__isnull=True)
    silent = (Q(last_seen__isnull=True) | Q(last_seen__lt=cutoff)) & ~Q(agent_id=VIGIL_AGENT_ID)
    return Case(
        When(silent, then=Value(Instance.Status.UNKNOWN)),
        When(
            Exists(open_alerts.filter(severity=Alert.Severity.CRITICAL)),
            then=Value(Instance.Status.UNHEALTHY),
        ),
        When(
            Exists(open_alerts.filter(severity__in=[Alert.Severity.ERROR, Alert.Severity.WARNING])),
            then=Value(Instance.Status.WARNING),
        ),
        default=Value(Instance.Status.HEALTHY),
    )


def derive_statuses(
    now: datetime | None = None, instance_ids: Iterable | None = None, announce: bool = True
) -> int:
    """Bring the statuses of ``instance_ids`` (None: every instance) in step with their
    freshness and open alerts; returns how many changed. Open dashboards hear of each change
    once committed, unless the caller announces the instance itself (``announce`` False)."""
    status = derived_status(now or timezone.now())
    instances = Instance.objects.all()
    if instance_ids is not None:
        instances = instances.filter(pk__in=list(instance_ids))
    changed = list(instances.exclude(status=status).values_list("pk", flat=True))
    if changed:
        Instance.objects.filter(pk__in=changed).update(status=status)
        for instance_id in changed if announce else ():
            transaction.on_commit(partial(publish_instance_updated, instance_id, 0))
    return len(changed)


# derived_status for an instance that has just reported, so is not silent: its worst open
# alert alone says. Written out once: building derived_status's expression costs the ORM about
# a millisecond of CPU, a tenth of what an ingest batch costs in all.
_INSTANCES, _ALERTS = Instance._meta.db_table, Alert._meta.db_table
_INSTANCE_FIELDS = [field.attname for field in Instance._meta.concrete_fields]
_INSTANCE_COLUMNS = [field.column for field in Instance._meta.concrete_fields]
# What the ORM does to a column's value as it loads a row (the metadata's JSON decoding).
_INSTANCE_CONVERTERS = [
    (index, field.from_db_value)
    for index, field in enumerate(Instance._meta.concrete_fields)
    if hasattr(field, "from_db_value")
]
_OPEN_ALERT = f"SELECT 1 FROM {_ALERTS} WHERE instance_id = {_INSTANCES}.id AND resolved_at IS NULL"
_RECORD_CONTACT = f"""
    UPDATE {_INSTANCES} SET last_seen = %(now)s, status = CASE
        WHEN EXISTS ({_OPEN_ALERT} AND severity = '{Alert.Severity.CRITICAL}')
            THEN '{Instance.Status.UNHEALTHY}'
        WHEN EXISTS ({_OPEN_ALERT}
                     AND severity IN ('{Alert.Severity.ERROR}', '{Alert.Severity.WARNING}'))
            THEN '{Instance.Status.WARNING}'
        ELSE '{Instance.Status.HEALTHY}' END
    WHERE agent_id = %(agent_id)s RETURNING {", ".join(_INSTANCE_COLUMNS)}
"""


def record_contact(agent_id: str, **fields) -> Instance:
    """The instance of an ingest batch: ``Instance.register`` with its contact recorded now and
    its status derived, not announced (the batch announces its instance once committed).

    For an instance already registered, the usual case, one statement finds it, moves its
    ``last_seen`` and derives its status; given fields that differ are saved after it."""
    now = timezone.now()
    with store.execute_bound(_RECORD_CONTACT, {"now": now, "agent_id": agent_id}) as cursor:
        row = cursor.fetchone()
    if row is not None:
        found = instance_of_contact(row)
        found.update(**fields)
        return found
    instance = Instance.register(agent_id, last_seen=now, **fields)
    derive_statuses(now, instance_ids=[instance.pk], announce=False)
    instance.refresh_from_db(fields=["status"])
    return instance


def contact_statement(agent_id: str) -> str:
    """``record_contact``'s statement for an instance already registered, spelled out, to be
    the first of ``store.copy_after``: its row, if any, gives ``instance_of_contact``."""
    return _RECORD_CONTACT % {
        "now": store.time_literal(timezone.now()),
        "agent_id": store.text_literal(agent_id),
    }


def instance_of_contact(row: tuple) -> Instance:
    """The instance of a row ``record_contact``'s statement returned."""
    values = list(row)
    for index, convert in _INSTANCE_CONVERTERS:
        values[index] = convert(values[index], None, connection)
    return Instance.from_db(connection.alias, _INSTANCE_FIELDS, values)
