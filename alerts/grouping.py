"""Routing alerts through the route tree into groups, and notifying each group as
Alertmanager does (PRODUCT.md section 7; the models are Route, AlertGroup, AlertGroupMember).

An alert that fires, worsens or resolves is *received*: it joins the group of each route it
ends on (one per value of the route's ``group_by`` labels), and the group is due at once if
it may notify now, else when it may. *Flushing* a due group sends, to each channel, one notice
listing the group's alerts for that channel, when the channel has something to hear:

- a firing alert the group has not told of yet (or told of at a lower severity);
- an alert that resolved after the group told it fired (to the channels that were told);
- nothing new, but ``repeat_interval`` has passed since the group's last notice.

A new group waits ``group_wait`` before its first notice, and notices of changes come at
least ``group_interval`` apart. Acknowledged, silenced and inhibited alerts are not in the
firing set: they neither notify nor hold a repeat; an alert muted before it was ever told is
new to the group once the mute ends. An alert that joins a group after it was told elsewhere
(before routes existed, or by the group of a route since deleted) keeps what it was told: it
does not page again, and the channels told hear of it under the incident key they were told it
by (that incident goes on until the last alert it told of resolves).

The shipped root route groups by every label with no waiting (each alert its own group,
notified at once, repeated after ALERT_REPEAT_INTERVAL_SECONDS): notices then are one alert
each, in the same words as before routes existed.

Each notice has a dispatch id derived from the group, the channel and the moment of the
flush, and the flush moves the group's state forward in the same transaction that queues the
notice, so a flush or a delivery task that runs twice delivers once. Times are passed in
(``now``): evaluation's clock, or the test's.
"""

import hashlib
import json
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q

from alerts import notifications, tasks
from alerts.models import (
    GROUP_BY_ALL,
    Alert,
    AlertGroup,
    AlertGroupMember,
    Notification,
    NotificationChannel,
    Route,
    Silence,
    labels_match,
)
from instances.formats import iso8601

DISPATCH_NAMESPACE = uuid.UUID("3c1f6a52-9d0e-4b8a-8f47-6e2a9b5d0c13")

# How long an alert told of as it opened is left to the notify task queued for it before the
# evaluation's tail places it itself (its task was lost with the broker).
PLACING_GRACE = timedelta(minutes=2)

# Alerts placed in their groups at once (each batch a fixed number of statements).
PLACING_BATCH = 1000

# What the root route means by an empty setting (its children take their parent's).
ROOT_DEFAULTS = {
    "group_by": [GROUP_BY_ALL],
    "group_wait": timedelta(0),
    "group_interval": timedelta(0),
}


def root_route() -> Route:
    """The root route, shipped by a migration; made again if it is gone (a database emptied
    without migrating, as tests do)."""
    root = Route.objects.filter(parent__isnull=True).first()
    if root is None:
        root, _ = Route.objects.get_or_create(parent=None, name="root", defaults=ROOT_DEFAULTS)
    return root


class RouteTree:
    """Every route, read once, with what each inherits."""

    def __init__(self):
        root = root_route()
        self.routes = {route.pk: route for route in Route.objects.prefetch_related("channels")}
        self.root = self.routes[root.pk]
        self.children: dict[int, list[Route]] = {}
        for route in self.routes.values():
            if route.parent_id is not None:
                self.children.setdefault(route.parent_id, []).append(route)
        for siblings in self.children.values():
            siblings.sort(key=lambda route: (route.position, route.name))
        self._rule_channels: dict[int, list[NotificationChannel]] = {}

    def walk(self) -> list[tuple[Route, int]]:
        """Every route with its depth, depth first in matching order (a parent before its
        children)."""
        walked = []

        def visit(route: Route, depth: int) -> None:
            walked.append((route, depth))
            for child in self.children.get(route.pk, []):
                visit(child, depth + 1)

        visit(self.root, 0)
        return walked

    def matching(self, labels: dict) -> list[Route]:
        """The routes an alert with ``labels`` ends on (Alertmanager's matching)."""

        def walk(route: Route) -> list[Route]:
            matched = []
            for child in self.children.get(route.pk, []):
                if labels_match(labels, child.matchers):
                    matched += walk(child)
                    if not child.continue_matching:
                        break
            return matched or [route]

        return walk(self.root)

    def setting(self, route: Route, field: str):
        """``field`` of ``route``, or of its nearest ancestor that sets it."""
        while route is not None:
            value = getattr(route, field)
            if value is not None:
                return value
            route = self.routes.get(route.parent_id)
        if field == "repeat_interval":
            return timedelta(seconds=settings.ALERT_REPEAT_INTERVAL_SECONDS)
        return ROOT_DEFAULTS[field]

    def route_channels(self, route: Route) -> list[NotificationChannel] | None:
        """The channels ``route`` names, or its nearest ancestor's; None: every channel."""
        while route is not None:
            named = list(route.channels.all())
            if named:
                return named
            route = self.routes.get(route.parent_id)
        return None

    def channels_for(self, route: Route, alert: Alert) -> list[NotificationChannel]:
        """The enabled channels ``route`` tells of ``alert``, by the alert's severity. A rule
        that names channels overrides the route's: its choice predates routes, and a rule's
        author who picked channels meant them."""
        chosen = None
        if alert.rule_id is not None:
            if alert.rule_id not in self._rule_channels:
                self._rule_channels[alert.rule_id] = list(alert.rule.channels.all())
            chosen = self._rule_channels[alert.rule_id] or None
        if chosen is None:
            chosen = self.route_channels(route)
        if chosen is None:
            chosen = list(NotificationChannel.objects.filter(enabled=True))
        return [c for c in chosen if c.enabled and c.routes(alert.severity)]

    def group_of(self, route: Route, alert: Alert) -> tuple[str, dict]:
        """The key and labels of ``alert``'s group under ``route``."""
        labels = alert.match_labels()
        group_by = self.setting(route, "group_by")
        if GROUP_BY_ALL in group_by:
            # Every label: the alert's own identity, which its fingerprint is.
            identity = f"fingerprint:{alert.fingerprint}"
        else:
            labels = {name: str(labels.get(name, "")) for name in group_by}
            identity = json.dumps(sorted(labels.items()))
        return hashlib.sha256(identity.encode()).hexdigest(), labels


def grouping_route_ids() -> list[int]:
    """The routes that gather alerts into groups: all but those grouping by every label, whose
    groups hold an alert each."""
    tree = RouteTree()
    return [
        route.pk for route, _ in tree.walk() if GROUP_BY_ALL not in tree.setting(route, "group_by")
    ]


def receive(alert: Alert, kind: str, now: datetime, tree: RouteTree | None = None) -> list:
    """``alert`` fired, worsened or resolved: see place."""
    return place([alert], kind, now, tree)


def place(
    alerts: list[Alert], kind: str, now: datetime, tree: RouteTree | None = None
) -> list[AlertGroup]:
    """``alerts`` fired, worsened or resolved (``kind`` firing or resolved; "" when they are
    only being placed): put each in its groups and make them due when they may notify.
    Returns the groups.

    The outcome is that of receiving the alerts one after another, in their order, but in a
    fixed number of statements however many alerts there are: each alert's routes and group
    keys are worked out in Python, the groups and members missing are inserted from arrays,
    and what changed is written back from arrays (one by one, an alert took about eleven
    statements: 110,000 for a storm of 10,000).
    """
    tree = tree or RouteTree()
    alerts = list({alert.pk: alert for alert in alerts}.values())
    if not alerts:
        return []
    placements = {
        alert.pk: [
            (route, *tree.group_of(route, alert)) for route in tree.matching(alert.match_labels())
        ]
        for alert in alerts
    }
    groups = _insert_groups(
        [placed for alert in alerts for placed in placements[alert.pk]], now, tree
    )
    created = _insert_members(
        [
            (groups[route.pk, key].pk, alert.pk)
            for alert in alerts
            for route, key, _ in placements[alert.pk]
        ]
    )
    members = {
        (member.group_id, member.alert_id): member
        for member in AlertGroupMember.objects.filter(alert__in=[alert.pk for alert in alerts])
    }
    groups_by_pk = {group.pk: group for group in groups.values()}
    elsewhere = {group_id for group_id, _ in members} - set(groups_by_pk)
    if kind == Notification.Kind.RESOLVED and elsewhere:
        groups_by_pk.update(AlertGroup.objects.in_bulk(elsewhere))
    told = _told_channels([alert_id for _, alert_id in created])
    # An alert still in a group that told it is that group's to tell: one it joins now (its
    # worsening moved it to another route) takes nothing over, or its resolution is told twice.
    in_other_groups = {
        alert_id for group_id, alert_id in members if (group_id, alert_id) not in created
    }

    carried, told_groups, asked, scheduled, received = {}, {}, [], {}, {}
    for alert in alerts:
        here = []
        for route, key, _ in placements[alert.pk]:
            group = groups[route.pk, key]
            member = members[group.pk, alert.pk]
            if (
                (group.pk, alert.pk) in created
                and told.get(alert.pk)
                and alert.pk not in in_other_groups
            ):
                # Told of before it was in this group (before routes existed, or by the group
                # of a route since deleted): it keeps what it was told, so it does not page
                # again, and the channels told hear that it resolved, under the incident key
                # they were told it by. Unless its lifecycle asks for a notice now (it
                # worsened): that is news here too.
                channels, keys = told[alert.pk]
                own = _own_incident_key(group, route, tree, alert)
                member.notified_severity, member.told_channels = alert.severity, channels
                member.told_keys = {pk: key for pk, key in keys.items() if key != own}
                if kind != Notification.Kind.FIRING:
                    member.told_at = alert.last_notified_at
                carried[member.pk] = member
                if group.last_notified_at is None:
                    group.last_notified_at = alert.last_notified_at
                    told_groups[group.pk] = group
            is_asked = alert.last_notified_at is None or alert.last_notified_at != member.told_at
            if kind == Notification.Kind.FIRING and alert.is_open and is_asked:
                member.firing_asked = True
                asked.append(member.pk)
            here.append(group)
        if kind == Notification.Kind.RESOLVED:
            # The groups that told it hear that it resolved, also where an edit of the routes
            # since would place it elsewhere now.
            placed = {group.pk for group in here}
            here += [
                groups_by_pk[group_id]
                for group_id, alert_id in members
                if alert_id == alert.pk and group_id not in placed
            ]
        for group in here:
            if _reschedule(group, tree):
                scheduled[group.pk] = group
            received[group.pk] = group

    _update_rows(
        AlertGroupMember,
        {
            "notified_severity": "text",
            "told_channels": "jsonb",
            "told_keys": "jsonb",
            "told_at": "timestamptz",
        },
        [
            (
                member.pk,
                member.notified_severity,
                json.dumps(member.told_channels),
                json.dumps(member.told_keys),
                member.told_at,
            )
            for member in carried.values()
        ],
    )
    if asked:
        AlertGroupMember.objects.filter(pk__in=asked).update(firing_asked=True)
    _update_rows(
        AlertGroup,
        {"last_notified_at": "timestamptz"},
        [(group.pk, group.last_notified_at) for group in told_groups.values()],
    )
    _save_schedules(scheduled.values())
    return list(received.values())


def _insert_groups(placements: list[tuple], now: datetime, tree: RouteTree) -> dict:
    """The groups of ``placements`` (route, key, labels), those missing made (due once their
    route's group_wait has passed); by (route pk, key)."""
    new = {}
    for route, key, labels in placements:
        new.setdefault((route.pk, key), (route, labels))
    # In (route, key) order, as every placing inserts them: two placing overlapping alerts at
    # once then wait for each other's groups in turn instead of deadlocking.
    rows = [
        (route.pk, key, json.dumps(labels), now, now + tree.setting(route, "group_wait"))
        for (_, key), (route, labels) in sorted(new.items(), key=lambda item: item[0])
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {AlertGroup._meta.db_table} "
            "(route_id, key, labels, created_at, next_flush_at) SELECT * FROM unnest("
            "%s::bigint[], %s::text[], %s::jsonb[], %s::timestamptz[], %s::timestamptz[]) "
            "ON CONFLICT (route_id, key) DO NOTHING",
            [list(column) for column in zip(*rows, strict=True)],
        )
    found = AlertGroup.objects.filter(
        route_id__in={route_id for route_id, _ in new}, key__in={key for _, key in new}
    )
    return {
        (group.route_id, group.key): group for group in found if (group.route_id, group.key) in new
    }


def _insert_members(pairs: list[tuple]) -> set:
    """Make the members (group pk, alert pk) missing; returns the pairs made."""
    # In (group, alert) order, as for groups: concurrent placings lock them in the same order.
    pairs = sorted(pairs)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {AlertGroupMember._meta.db_table} "
            "(group_id, alert_id, notified_severity, firing_asked, told_channels, told_keys) "
            "SELECT v.*, '', false, '[]', '{}' FROM unnest(%s::bigint[], %s::uuid[]) AS v "
            "ON CONFLICT (group_id, alert_id) DO NOTHING RETURNING group_id, alert_id",
            [[group_id for group_id, _ in pairs], [alert_id for _, alert_id in pairs]],
        )
        return set(cursor.fetchall())


def _told_channels(alert_ids: list) -> dict:
    """The channels each of ``alert_ids`` was told fired through, by its own notices or by
    group notices that listed it, and the incident key each channel was last told it under
    (by channel pk as text; none for a notice sent before keys were kept): by alert pk, only
    those told, ``(channels, keys)``."""
    channels, keys = {}, {}
    if alert_ids:
        wanted = set(alert_ids)
        for alert_id, listed_id, channel_id, key in (
            Notification.objects.filter(
                Q(alert__in=alert_ids) | Q(listed_alerts__in=alert_ids),
                status=Notification.Status.SENT,
                kind__in=[Notification.Kind.FIRING, Notification.Kind.REPEAT],
            )
            .order_by("created_at")
            .values_list("alert_id", "listed_alerts", "channel_id", "incident_key")
        ):
            for each in {alert_id, listed_id} & wanted:
                channels.setdefault(each, set()).add(channel_id)
                if key:
                    keys.setdefault(each, {})[str(channel_id)] = key
    return {alert_id: (sorted(told), keys.get(alert_id, {})) for alert_id, told in channels.items()}


def _own_incident_key(group: AlertGroup, route: Route, tree: RouteTree, alert: Alert) -> str:
    """The incident key ``group`` tells ``alert`` under: the alert's own fingerprint where
    each alert is its own group, else the group's."""
    if GROUP_BY_ALL in tree.setting(route, "group_by"):
        return alert.fingerprint
    return notifications.group_incident_key(
        group.labels, group.route_id if group.keyed_by_route else None
    )


def _update_rows(model, columns: dict, rows: list[tuple]) -> None:
    """Write ``columns`` (name: SQL type) of ``model``'s rows, each ``(pk, *values)``, in one
    statement from arrays, given in pk order so that concurrent placings lock rows in one order."""
    if not rows:
        return
    rows = sorted(rows, key=lambda row: row[0])
    table = model._meta.db_table
    arrays = ", ".join(f"%s::{kind}[]" for kind in ["bigint", *columns.values()])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {', '.join(f'{name} = v.{name}' for name in columns)} "
            f"FROM unnest({arrays}) AS v(id, {', '.join(columns)}) WHERE {table}.id = v.id",
            [list(column) for column in zip(*rows, strict=True)],
        )


def _reschedule(group: AlertGroup, tree: RouteTree) -> bool:
    """Make ``group`` due as soon as it may notify of a change (a time past is due now);
    whether that moved it (unsaved)."""
    route = tree.routes.get(group.route_id) or group.route
    if group.last_notified_at is None:
        allowed = group.created_at + tree.setting(route, "group_wait")
    else:
        allowed = group.last_notified_at + tree.setting(route, "group_interval")
    if group.next_flush_at is None or allowed < group.next_flush_at:
        group.next_flush_at = allowed
        return True
    return False


def _save_schedules(groups) -> None:
    _update_rows(
        AlertGroup,
        {"next_flush_at": "timestamptz"},
        [(group.pk, group.next_flush_at) for group in groups],
    )


def flush_due(silences: list[Silence], now: datetime) -> int:
    """Place open alerts that are in no group yet (opened muted, or before routes existed),
    wake groups whose alerts may notify again, and flush every due group. Returns how many
    notices were queued."""
    tree = RouteTree()
    # Alerts a run has just opened are placed by their notify tasks, in the worker: placing a
    # storm of them here, one by one, took the evaluation run a minute for 10,000 alerts.
    homeless = Alert.objects.filter(
        Q(last_notified_at__isnull=True) | Q(last_notified_at__lt=now - PLACING_GRACE),
        resolved_at__isnull=True,
        group_memberships__isnull=True,
    )
    homeless = list(homeless.select_related("instance", "rule"))
    for start in range(0, len(homeless), PLACING_BATCH):
        with transaction.atomic():
            place(homeless[start : start + PLACING_BATCH], "", now, tree)
    # An alert muted before it was ever told (silenced, inhibited, acknowledged) is news to
    # its group once the mute ends.
    waking = AlertGroup.objects.filter(
        next_flush_at__isnull=True,
        members__notified_severity="",
        members__alert__resolved_at__isnull=True,
        members__alert__status=Alert.Status.ACTIVE,
        members__alert__inhibited=False,
        members__alert__silenced=False,
    ).distinct()
    _save_schedules([group for group in waking if _reschedule(group, tree)])
    # Repeats: groups not told for their route's repeat_interval that hold an alert that may
    # notify (their flush tells whether one still does).
    notifiable = AlertGroupMember.objects.filter(
        alert__resolved_at__isnull=True,
        alert__status=Alert.Status.ACTIVE,
        alert__inhibited=False,
        alert__silenced=False,
    ).values("group_id")
    repeating = Q()
    for route in tree.routes.values():
        cutoff = now - tree.setting(route, "repeat_interval")
        repeating |= Q(route=route, last_notified_at__lte=cutoff)
    queued = 0
    with transaction.atomic():
        due = AlertGroup.objects.select_for_update(skip_locked=True).filter(
            Q(next_flush_at__lte=now) | repeating & Q(pk__in=notifiable)
        )
        for group in due.select_related("route"):
            queued += flush(group, silences, now, tree)
    return queued


def flush_groups(groups: list[AlertGroup], now: datetime) -> int:
    """Flush those of ``groups`` that are due now (a change they may tell at once)."""
    tree = RouteTree()
    silences = list(Silence.objects.active(now))
    queued = 0
    with transaction.atomic():
        due = AlertGroup.objects.select_for_update(skip_locked=True).filter(
            pk__in=[group.pk for group in groups], next_flush_at__lte=now
        )
        for group in due.select_related("route"):
            queued += flush(group, silences, now, tree)
    return queued


def flush(group: AlertGroup, silences: list[Silence], now: datetime, tree: RouteTree) -> int:
    """Notify what ``group`` has to tell now (its row locked by the caller) and set when it is
    next due. Returns how many notices were queued."""
    route = tree.routes.get(group.route_id, group.route)
    members = list(group.members.select_related("alert__instance", "alert__rule"))
    firing, resolved, unheard = [], [], []
    for member in members:
        alert = member.alert
        if not alert.is_open:
            (resolved if member.notified_severity else unheard).append(member)
        elif (
            alert.status == Alert.Status.ACTIVE
            and not alert.inhibited
            and not any(silence.covers(alert) for silence in silences)
        ):
            firing.append(member)
        elif member.firing_asked:
            # Muted when its notice was due: the notice is dropped, as a muted alert's always
            # was; it is new to the group when the mute ends.
            member.firing_asked = False
            member.save(update_fields=["firing_asked"])
    fresh = [member for member in firing if _is_news(member)]
    repeat_due = bool(firing) and (
        group.last_notified_at is not None
        and now >= group.last_notified_at + tree.setting(route, "repeat_interval")
    )

    notices = _notices(group, route, tree, firing, fresh, resolved, repeat_due, now)
    if fresh or resolved or repeat_due:
        for member in firing:
            member.notified_severity, member.firing_asked = member.alert.severity, False
            member.told_at = now
            member.told_channels = sorted(
                {*member.told_channels, *(c.pk for c in tree.channels_for(route, member.alert))}
            )
            member.save(
                update_fields=["notified_severity", "firing_asked", "told_at", "told_channels"]
            )
        Alert.objects.filter(pk__in=[member.alert_id for member in firing]).update(
            last_notified_at=now
        )
        group.last_notified_at = now
    for dispatch_id, channel_id, alert_id, kind, notice in notices:
        tasks.dispatch_notice(dispatch_id, channel_id, alert_id, kind, notice)
    AlertGroupMember.objects.filter(pk__in=[member.pk for member in resolved + unheard]).delete()
    if len(resolved) + len(unheard) == len(members):
        group.delete()
    else:
        group.next_flush_at = None
        group.save(update_fields=["last_notified_at", "next_flush_at"])
    return len(notices)


def _is_news(member: AlertGroupMember) -> bool:
    """A firing alert the group has not told of, whose lifecycle asked for a firing notice
    again (it worsened), or told of at a lower severity."""
    if not member.notified_severity or member.firing_asked:
        return True
    rank = Alert.SEVERITY_RANK
    return rank[member.alert.severity] > rank.get(member.notified_severity, -1)


def _notices(group, route, tree, firing, fresh, resolved, repeat_due, now) -> list[tuple]:
    """``(dispatch_id, channel_id, alert_id, kind, notice)`` for each channel with something
    to hear: its firing alerts (if one is news, or a repeat is due) and its resolved ones. An
    alert another group told a channel of under that group's incident key is told there under
    it still, in a notice of its own."""
    heard: dict[tuple, tuple[NotificationChannel, list, list]] = {}

    def hear(channel: NotificationChannel, member: AlertGroupMember, resolved: bool) -> None:
        key = member.told_keys.get(str(channel.pk), "")
        heard.setdefault((channel.pk, key), (channel, [], []))[2 if resolved else 1].append(member)

    for member in firing:
        for channel in tree.channels_for(route, member.alert):
            hear(channel, member, resolved=False)
    told = {member.pk: set(member.told_channels) for member in resolved}
    if resolved:
        for channel in NotificationChannel.objects.filter(
            pk__in=set().union(*told.values()), enabled=True
        ):
            for member in resolved:
                if channel.pk in told[member.pk]:
                    hear(channel, member, resolved=True)
    notices = []
    fresh_pks = {member.pk for member in fresh}
    for (_, key), (channel, its_firing, its_resolved) in heard.items():
        news = [member for member in its_firing if member.pk in fresh_pks]
        if not (news or its_resolved or (repeat_due and its_firing)):
            continue
        going_on = []
        if key and not its_firing:
            # The other group's incident stays open while another alert it told of fires
            # (in a group of its own now): what its group would have said, still firing.
            going_on = _firing_under(key, channel, group)
        if news:
            # Firing, not "still firing", for an alert never told: asked for, never notified,
            # or never told by any group (placed late, its notify task lost with the broker).
            first = any(
                m.firing_asked or not m.notified_severity or m.alert.last_notified_at is None
                for m in news
            )
            kind = Notification.Kind.FIRING if first else Notification.Kind.REPEAT
        elif its_firing or going_on:
            kind = Notification.Kind.REPEAT
        else:
            kind = Notification.Kind.RESOLVED
        alerts = [member.alert for member in its_firing + its_resolved]
        one_alert = not key and len(alerts) == 1 and GROUP_BY_ALL in tree.setting(route, "group_by")
        flushed = f"{group.pk}/{channel.pk}/{iso8601(now)}" + (f"/{key}" if key else "")
        dispatch_id = uuid.uuid5(DISPATCH_NAMESPACE, flushed)
        notice = {
            "group": group.pk,
            "labels": group.labels,
            "firing": [str(member.alert_id) for member in its_firing] + going_on,
            "resolved": [str(member.alert_id) for member in its_resolved],
        }
        if group.keyed_by_route:
            notice["route"] = group.route_id
        if key:
            notice["key"] = key
        alert_id = str(alerts[0].pk) if one_alert else None
        notices.append((str(dispatch_id), channel.pk, alert_id, kind, notice))
    return notices


def _firing_under(key: str, channel: NotificationChannel, group: AlertGroup) -> list[str]:
    """The open alerts of groups other than ``group`` that ``channel`` was told of under the
    incident key ``key`` of another group (their ids)."""
    alert_ids = (
        AlertGroupMember.objects.filter(
            told_keys__contains={str(channel.pk): key}, alert__resolved_at__isnull=True
        )
        .exclude(group=group)
        .values_list("alert_id", flat=True)
    )
    return sorted({str(alert_id) for alert_id in alert_ids})
