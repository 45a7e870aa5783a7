import importlib

from django.db import migrations
from django.db.models import Count, Q

# 0021's frozen copy: the keys found here must be those the notices went under.
group_incident_key = importlib.import_module(
    "alerts.migrations.0021_incident_keys"
).group_incident_key

# ``group_by`` naming every label (each alert its own group), as the root route does unset.
GROUP_BY_ALL = "..."


def groups_each_alert_alone(route) -> bool:
    """Whether ``route`` (its own group_by, else its nearest ancestor's) groups by every label."""
    while route is not None:
        if route.group_by is not None:
            return GROUP_BY_ALL in route.group_by
        route = route.parent
    return True


def key_of_group(labels: dict, route_id: int, keyed_by_route: bool) -> str:
    """The incident key of a group's notices (one that told before keys named routes keeps
    the key of its labels alone)."""
    return group_incident_key(labels, route_id if keyed_by_route else None)


def fill_told_keys(apps, schema_editor):
    """Members placed before 0021 that were told of firing get the keys placing gives a member
    told elsewhere now: by channel told, the key the channel was last told the alert under,
    where it is not the member's own group's key. A notice whose key cannot be known (a group's
    notice of several alerts, its group since deleted) names none, as placing does with a
    notice sent before keys were kept: the member keeps its group's key there."""
    AlertGroupMember = apps.get_model("alerts", "AlertGroupMember")
    Notification = apps.get_model("alerts", "Notification")
    # An alert in other groups as well is theirs to tell there: placing takes nothing over
    # for it, so neither does this.
    members = list(
        AlertGroupMember.objects.filter(told_keys={})
        .exclude(told_channels=[])
        .annotate(memberships=Count("alert__group_memberships"))
        .filter(memberships=1)
        .select_related("alert", "group__route")
    )
    if not members:
        return
    alert_ids = {member.alert_id for member in members}
    last_keys = {}
    notices = Notification.objects.filter(
        Q(alert__in=alert_ids) | Q(listed_alerts__in=alert_ids),
        status="sent",
        kind__in=["firing", "repeat"],
    ).order_by("created_at", "id")
    rows = notices.values_list(
        "alert_id",
        "listed_alerts",
        "channel_id",
        "incident_key",
        "alert__fingerprint",
        "group__labels",
        "group__route_id",
        "group__keyed_by_route",
    )
    for alert_id, listed_id, channel_id, kept, fingerprint, labels, route_id, by_route in rows:
        # As 0021 derives it: an alert's own notice goes under its fingerprint, a group's
        # under the group's key; a group since deleted leaves it unknown.
        key = kept or fingerprint
        if not key and labels is not None:
            key = key_of_group(labels, route_id, by_route)
        if key:
            for each in {alert_id, listed_id} & alert_ids:
                last_keys.setdefault(each, {})[channel_id] = key
    filled = []
    for member in members:
        group = member.group
        if groups_each_alert_alone(group.route):
            own = member.alert.fingerprint
        else:
            own = key_of_group(group.labels, group.route_id, group.keyed_by_route)
        keys = last_keys.get(member.alert_id, {})
        member.told_keys = {
            str(channel): key
            for channel, key in keys.items()
            if key != own and channel in member.told_channels
        }
        if member.told_keys:
            filled.append(member)
    AlertGroupMember.objects.bulk_update(filled, ["told_keys"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0021_incident_keys"),
    ]

    operations = [
        migrations.RunPython(fill_told_keys, migrations.RunPython.noop),
    ]
