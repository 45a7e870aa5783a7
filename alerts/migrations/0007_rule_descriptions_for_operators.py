"""The shipped rules' descriptions, rewritten for an operator: what each watches and why its
thresholds are where they are. A description an Admin has edited is left as it is."""

from django.db import migrations

# name: (as 0003 shipped it, as an operator reads it)
DESCRIPTIONS = {
    "High CPU usage": (
        "CPU usage (%) averaged over a minute. Seed 002: warn > 80 %, crit > 90 %.",
        "How busy the CPUs are (%), averaged over a minute. Warning above 80 % and critical "
        "above 90 % once it lasts 2 minutes: a host that busy answers slowly and has no room "
        "left for a spike, while a short burst alone never fires.",
    ),
    "High memory usage": (
        "Memory usage (%) averaged over a minute. Seed 002: warn > 85 %, crit > 95 %.",
        "Memory in use (%), averaged over a minute. Warning above 85 % and critical above 95 % "
        "once it lasts 2 minutes: near the top the system starts swapping and then killing "
        "processes.",
    ),
    "High disk usage": (
        "The fullest mount's disk usage (%). Seed 002: warn > 85 %, crit > 95 %.",
        "How full the fullest mount is (%). Warning above 85 %, while there is still time to "
        "clean up or grow the disk; critical above 95 %, where databases and logs soon fail "
        "to write.",
    ),
    "HighResponseTime": (
        "High API response time: rate(api_response_time_seconds_sum[5m]) > 1 for 5m (seed 000).",
        "Time the API spends answering, per second of wall-clock time (the rate of "
        "api_response_time_seconds_sum over 5 minutes). A warning when it stays above 1 for 5 "
        "minutes: requests are piling up faster than they are answered.",
    ),
    "LowSuccessRate": (
        "API success rate below 95 %: rate of api_requests_total{status=success} over the "
        "rate of all api_requests_total, 5m, for 5m (seed 000).",
        "The share of API requests that succeed (api_requests_total with status=success over "
        "all of them, over 5 minutes). Critical when it stays below 95 % for 5 minutes: one "
        "request in twenty failing is an outage users notice.",
    ),
    "HighErrorRate": (
        "More than 10 errors in 5 minutes (seed 001): the summed per-second rate of "
        'http_requests_total{status=~"5.."} over 5m above 10/300.',
        "Server errors: HTTP 5xx answers in http_requests_total, summed over the host's "
        "series. A warning at once when there are more than 10 in 5 minutes: a stray error "
        "happens, a steady stream means something is broken.",
    ),
    "High API p95 latency": (
        "API p95 latency (seconds) over 5m: warn > 500 ms (seeds 001, 004), crit > 1000 ms "
        "(seed 002).",
        "How long the slowest one in twenty API requests takes (the 95th percentile of "
        "http_request_duration_seconds over 5 minutes). Warning above 500 ms and critical "
        "above 1 s once it lasts 2 minutes: that is the wait users notice and complain about.",
    ),
}


def rewrite(apps, schema_editor, old: int, new: int) -> None:
    AlertRule = apps.get_model("alerts", "AlertRule")
    for name, texts in DESCRIPTIONS.items():
        AlertRule.objects.filter(name=name, description=texts[old]).update(description=texts[new])


def for_operators(apps, schema_editor):
    rewrite(apps, schema_editor, old=0, new=1)


def as_shipped(apps, schema_editor):
    rewrite(apps, schema_editor, old=1, new=0)


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0006_alert_peak_severity"),
    ]

    operations = [migrations.RunPython(for_operators, as_shipped)]
