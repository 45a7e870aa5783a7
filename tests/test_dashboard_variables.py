"""Template variables: their choices from label_values and custom lists, the selections the URL
carries, and their interpolation into PromQL (regex-escaped inside =~, string-escaped elsewhere,
plus $__interval, $__rate_interval and $__range)."""

import pytest
from django.http import QueryDict

from dashboard import variables
from dashboard.variables import Variable
from instances.models import Instance
from tests.test_dashboard_pages import add_samples

MINUTE_MS = 60_000


def picked(name, *values, options=None, multi=True, include_all=False) -> Variable:
    return Variable(name, list(options or values), list(values), multi, include_all)


def test_a_reference_outside_a_regex_is_written_as_a_string_body():
    host = picked("host", 'we"ird\\host')
    promql = variables.interpolate('up{instance="$host"}', [host], MINUTE_MS, 60 * MINUTE_MS)
    assert promql == 'up{instance="we\\"ird\\\\host"}'


def test_values_inside_a_regex_matcher_are_regex_escaped_and_joined():
    hosts = picked("host", "10.0.0.1:9100", "web(1)")
    promql = variables.interpolate('up{instance=~"${host}"}', [hosts], MINUTE_MS, MINUTE_MS)
    # \. in the regex is \\. in the PromQL string that holds it.
    assert promql == 'up{instance=~"10\\\\.0\\\\.0\\\\.1:9100|web\\\\(1\\\\)"}'


def test_all_stands_for_every_option():
    hosts = Variable("host", ["a", "b", "c"], [variables.ALL], True, True)
    promql = variables.interpolate('up{instance!~"$host"}', [hosts], MINUTE_MS, MINUTE_MS)
    assert promql == 'up{instance!~"a|b|c"}'


def test_the_builtin_intervals_follow_the_step_and_the_range():
    promql = variables.interpolate(
        "rate(x[$__rate_interval]) + rate(x[$__interval]) + increase(x[${__range}]) + $nope",
        [],
        5 * MINUTE_MS,
        6 * 60 * MINUTE_MS,
    )
    # A rate window is the step plus one 30 s sample interval.
    assert promql == "rate(x[5m30s]) + rate(x[5m]) + increase(x[6h]) + $nope"


@pytest.mark.django_db
def test_label_values_choices_come_from_the_stored_series():
    web, db = (Instance.objects.create(agent_id=name, name=name) for name in ("web-1", "db-1"))
    add_samples(web, "cpu_usage", [10.0, 20.0])
    add_samples(db, "cpu_usage", [30.0])
    add_samples(db, "disk_usage", [50.0], labels={"mount": "/data"})
    definitions = [
        {"name": "host", "kind": "query", "query": "label_values(cpu_usage, instance)"},
        {"name": "mount", "kind": "query", "query": "label_values(mount)"},
        {"name": "mode", "kind": "custom", "options": ["user", "system"], "include_all": True},
    ]

    chosen = variables.resolve(definitions, QueryDict("var-host=web-1&var-host=db-1"), None)

    host, mount, mode = chosen
    assert host.options == ["db-1", "web-1"] and host.selected == ["web-1"]  # single: the first
    assert mount.options == ["/data"] and mount.selected == ["/data"]
    assert mode.selected == [variables.ALL] and mode.values() == ["user", "system"]
    assert variables.url_query(chosen) == [
        ("var-host", "web-1"),
        ("var-mount", "/data"),
        ("var-mode", variables.ALL),
    ]


@pytest.mark.django_db
def test_an_unknown_value_in_the_url_is_dropped():
    definitions = [{"name": "mode", "kind": "custom", "options": ["user", "system"], "multi": True}]
    (mode,) = variables.resolve(definitions, QueryDict("var-mode=system&var-mode=evil"), None)
    assert mode.selected == ["system"]
