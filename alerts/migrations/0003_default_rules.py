"""The shipped default rules (PRODUCT.md section 7, from the seeds), and the new episode
fields of alerts that existed before rules did."""

from datetime import timedelta

from django.db import migrations
from django.db.models import F

MINUTE = timedelta(minutes=1)

DEFAULT_RULES = [
    # seeds/002 "Alerting Thresholds": warning / critical, each for 2 minutes.
    {
        "name": "High CPU usage",
        "metric": "cpu_usage",
        "aggregation": "avg",
        "window": MINUTE,
        "comparator": ">",
        "warning_threshold": 80.0,
        "critical_threshold": 90.0,
        "for_duration": 2 * MINUTE,
        "description": "CPU usage (%) averaged over a minute. Seed 002: warn > 80 %, crit > 90 %.",
    },
    {
        "name": "High memory usage",
        "metric": "memory_usage",
        "aggregation": "avg",
        "window": MINUTE,
        "comparator": ">",
        "warning_threshold": 85.0,
        "critical_threshold": 95.0,
        "for_duration": 2 * MINUTE,
        "description": "Memory usage (%) averaged over a minute. Seed 002: warn > 85 %, "
        "crit > 95 %.",
    },
    {
        "name": "High disk usage",
        "metric": "disk_usage",
        "aggregation": "last",
        "window": 5 * MINUTE,
        "comparator": ">",
        "warning_threshold": 85.0,
        "critical_threshold": 95.0,
        "for_duration": 2 * MINUTE,
        "description": "The fullest mount's disk usage (%). Seed 002: warn > 85 %, crit > 95 %.",
    },
    # seeds/000 prometheus/alerts.yml.
    {
        "name": "HighResponseTime",
        "metric": "api_response_time_seconds_sum",
        "aggregation": "rate",
        "window": 5 * MINUTE,
        "comparator": ">",
        "warning_threshold": 1.0,
        "for_duration": 5 * MINUTE,
        "description": "High API response time: rate(api_response_time_seconds_sum[5m]) > 1 "
        "for 5m (seed 000).",
    },
    {
        "name": "LowSuccessRate",
        "metric": "api_requests_total",
        "label_matchers": [{"label": "status", "op": "=", "value": "success"}],
        "denominator_matchers": [],
        "reduce": "sum",
        "aggregation": "rate",
        "window": 5 * MINUTE,
        "comparator": "<",
        "critical_threshold": 0.95,
        "for_duration": 5 * MINUTE,
        "description": "API success rate below 95 %: rate of api_requests_total{status=success} "
        "over the rate of all api_requests_total, 5m, for 5m (seed 000).",
    },
    # seeds/001 Sentry alerts: more than 10 errors in 5 minutes (counted as server errors,
    # seeds/004's http_requests_total{status=~"5.."}); a rate, so 10 per 300 s.
    {
        "name": "HighErrorRate",
        "metric": "http_requests_total",
        "label_matchers": [{"label": "status", "op": "=~", "value": "5.."}],
        "reduce": "sum",
        "aggregation": "rate",
        "window": 5 * MINUTE,
        "comparator": ">",
        "warning_threshold": 10 / 300,
        "for_duration": timedelta(0),
        "description": "More than 10 errors in 5 minutes (seed 001): the summed per-second rate "
        'of http_requests_total{status=~"5.."} over 5m above 10/300.',
    },
    # seeds/001 latency targets (API p95 alert > 500 ms) and seeds/002 (p95 > 500 ms warn,
    # > 1000 ms crit), over seeds/004's http_request_duration_seconds.
    {
        "name": "High API p95 latency",
        "metric": "http_request_duration_seconds",
        "aggregation": "p95",
        "window": 5 * MINUTE,
        "comparator": ">",
        "warning_threshold": 0.5,
        "critical_threshold": 1.0,
        "for_duration": 2 * MINUTE,
        "description": "API p95 latency (seconds) over 5m: warn > 500 ms (seeds 001, 004), "
        "crit > 1000 ms (seed 002).",
    },
]


def add_default_rules(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    for rule in DEFAULT_RULES:
        AlertRule.objects.get_or_create(name=rule["name"], defaults=rule)


def remove_default_rules(apps, schema_editor):
    apps.get_model("alerts", "AlertRule").objects.filter(
        name__in=[rule["name"] for rule in DEFAULT_RULES]
    ).delete()


def backfill_episodes(apps, schema_editor):
    # Alerts raised before notifications existed are not notified now, all at once.
    apps.get_model("alerts", "Alert").objects.update(
        fired_at=F("created_at"), last_notified_at=F("created_at")
    )


class Migration(migrations.Migration):
    dependencies = [("alerts", "0002_rules_silences_channels_notifications")]

    operations = [
        migrations.RunPython(add_default_rules, remove_default_rules),
        migrations.RunPython(backfill_episodes, migrations.RunPython.noop),
    ]
