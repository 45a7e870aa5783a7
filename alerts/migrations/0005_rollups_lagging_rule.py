"""A shipped default rule: the rollups lag more than five minutes behind now.

Each rollup refresh (every minute) records the lag as ``vigil_rollup_lag_seconds`` on the
instance that stands for Vigil itself (``Instance.vigil``): the rule fires when it grows, or
when it stops coming (no refresh runs any more), through the one alert path.
"""

from datetime import timedelta

from django.db import migrations

ROLLUPS_LAGGING = {
    "name": "RollupsLagging",
    "metric": "vigil_rollup_lag_seconds",
    "aggregation": "last",
    "window": timedelta(minutes=5),
    "comparator": ">",
    "warning_threshold": 300.0,
    "critical_threshold": 1800.0,
    "for_duration": timedelta(minutes=1),
    "no_data": "alert",
    "scope": "type",
    "scope_value": "vigil",
    "description": "The rollups (1m, 5m, 1h) are more than 5 minutes behind now (critical past "
    "30 minutes), or no refresh has recorded its lag for 5 minutes: charts over long ranges "
    "read more raw samples, and rollups of samples older than the raw retention would be lost. "
    "See vigil_rollup_refresh_failures_total on /metrics and the worker's log.",
}


def add_rule(apps, schema_editor):
    apps.get_model("alerts", "AlertRule").objects.get_or_create(
        name=ROLLUPS_LAGGING["name"], defaults=ROLLUPS_LAGGING
    )


def remove_rule(apps, schema_editor):
    apps.get_model("alerts", "AlertRule").objects.filter(name=ROLLUPS_LAGGING["name"]).delete()


class Migration(migrations.Migration):
    dependencies = [("alerts", "0004_target_down_rule")]

    operations = [migrations.RunPython(add_rule, remove_rule)]
