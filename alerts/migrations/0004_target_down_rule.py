"""A shipped default rule: a scrape target that does not answer (``up`` 0) is critical.

``up`` is recorded per target by Vigil's scraper and arrives the same way from a Prometheus that
remote-writes to Vigil, so either way a failing target makes its instance unhealthy through the
one path that derives instance status (alert evaluation).
"""

from datetime import timedelta

from django.db import migrations

TARGET_DOWN = {
    "name": "TargetDown",
    "metric": "up",
    "aggregation": "last",
    "window": timedelta(minutes=5),
    "comparator": "<",
    "critical_threshold": 1.0,
    "for_duration": timedelta(minutes=1),
    "description": "A scrape target failed its last scrape (up == 0) for a minute: the exporter "
    "or its host is down or unreachable.",
}


def add_rule(apps, schema_editor):
    apps.get_model("alerts", "AlertRule").objects.get_or_create(
        name=TARGET_DOWN["name"], defaults=TARGET_DOWN
    )


def remove_rule(apps, schema_editor):
    apps.get_model("alerts", "AlertRule").objects.filter(name=TARGET_DOWN["name"]).delete()


class Migration(migrations.Migration):
    dependencies = [("alerts", "0003_default_rules")]

    operations = [migrations.RunPython(add_rule, remove_rule)]
