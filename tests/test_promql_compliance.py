"""Vigil's PromQL against real Prometheus on the same data, on each samples engine.

Debian's Prometheus scrapes node_exporter and itself and remote-writes every sample to a live
Vigil, whose samples PostgreSQL keeps or a VictoriaMetrics (Debian package) on loopback. Each query below then runs as an instant query and as a range query against both, at
times before the newest sample Vigil holds (so both hold the same data): label sets must be
equal and values equal within 1e-9 relative (NaN equals NaN). One test runs them all, since the
data takes a minute to gather; it reports every mismatch at once.
"""

import re
import subprocess
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime

import numpy as np
import pytest

from instances import compaction, store
from instances.models import Series
from tests.prometheus_services import (
    PROMETHEUS,
    needs_node_exporter,
    needs_prometheus,
)
from tests.promql_compare import (
    ATAN2_DROPS_NAME,
    KEEPS_METRIC_NAME,
    NAN_LEFT_OUT,
    NO_EXTRAPOLATION,
    SAMPLE_BEFORE_WINDOW,
    differences,
    feeding_vigil,
    get_json,
    results,
    same_value,
    settled_end_ms,
    unix,
)

pytestmark = [needs_prometheus, needs_node_exporter, pytest.mark.django_db(transaction=True)]

# How much history both hold before the queries run: enough for [1m] windows and subqueries.
GATHER_SECONDS = 80
RANGE_SECONDS, STEP_SECONDS = 60, 7
# Queries whose right answer here is nothing (every other query must return something).
EMPTY_BY_DESIGN = {"absent(up)", "absent_over_time(up[30s])", 'up{job=~""}'}

CPU = "node_cpu_seconds_total"
HTTP = "prometheus_http_requests_total"
BUCKETS = "prometheus_http_request_duration_seconds_bucket"

# Each group of the language, by what it exercises. "{at}" becomes a Unix time inside the data.
QUERIES = [
    # selectors, offset, @, range vectors and subqueries
    "up",
    'up{job="node"}',
    'up{job!="node"}',
    'up{job=~"no.*"}',
    'up{job!~"no.*"}',
    f'{CPU}{{mode="idle"}}',
    f'{CPU}{{mode=~"user|system", cpu="0"}}',
    '{__name__=~"node_load(1|5)"}',
    # regexes of literal alternatives (a dashboard variable's values) compare as lists
    'up{job=~"node|prometheus"}',
    'up{job!~"node|"}',
    'up{job=~""}',
    '{__name__=~"node_load1|node_load5|node\\\\.load15"}',
    "node_load1 offset 20s",
    "node_load1 @ {at}",
    "up @ start()",
    "up @ end()",
    "rate(node_context_switches_total[30s] offset 10s)",
    "max_over_time(node_load1[1m:10s])",
    "avg_over_time(rate(node_context_switches_total[20s])[40s:5s])",
    "min_over_time(go_goroutines[30s:4s] offset 10s)",
    # rates and changes
    f"rate({CPU}[30s])",
    f"irate({CPU}[30s])",
    f"increase({CPU}[1m])",
    "delta(go_memstats_alloc_bytes[30s])",
    "idelta(go_memstats_alloc_bytes[30s])",
    "deriv(go_memstats_alloc_bytes[1m])",
    "predict_linear(go_memstats_alloc_bytes[1m], 120)",
    "resets(go_memstats_alloc_bytes[1m])",
    "changes(go_goroutines[1m])",
    f"rate({HTTP}[1m])",
    # *_over_time
    "avg_over_time(go_goroutines[1m])",
    "min_over_time(go_goroutines[1m])",
    "max_over_time(go_goroutines[1m])",
    "sum_over_time(scrape_samples_scraped[1m])",
    "count_over_time(up[1m])",
    "last_over_time(node_load1[1m])",
    "quantile_over_time(0.75, go_goroutines[1m])",
    "stddev_over_time(go_memstats_alloc_bytes[1m])",
    "stdvar_over_time(go_memstats_alloc_bytes[1m])",
    "present_over_time(up[30s])",
    "absent_over_time(up[30s])",
    'absent_over_time(nonexistent_metric{job="x"}[30s])',
    # math
    "abs(-node_load1)",
    "ceil(node_load1)",
    "floor(node_load1)",
    "round(node_load1)",
    "round(node_load1, 0.1)",
    "exp(node_load1)",
    "ln(node_memory_MemTotal_bytes)",
    "log2(node_memory_MemTotal_bytes)",
    "log10(node_memory_MemTotal_bytes)",
    "sqrt(node_memory_MemTotal_bytes)",
    "clamp(node_load1, 0.1, 0.5)",
    "clamp_min(node_load1, 0.3)",
    "clamp_max(node_load1, 0.3)",
    "sgn(node_load1 - 0.5)",
    # histograms, labels, absent, scalar/vector/time
    f"histogram_quantile(0.9, rate({BUCKETS}[1m]))",
    f"histogram_quantile(0.5, sum by (le) (rate({BUCKETS}[1m])))",
    f"histogram_quantile(0.99, sum by (le, handler) (rate({BUCKETS}[1m])))",
    'label_replace(up, "host", "$1", "instance", "(.*):.*")',
    'label_replace(up, "job", "", "job", ".*")',
    'label_join(up, "both", "/", "job", "instance")',
    "absent(up)",
    'absent(nonexistent_metric{job="x", mode="y"})',
    "scalar(count(up))",
    "vector(1)",
    "time()",
    "timestamp(up)",
    "sort(node_load1)",
    "sort_desc(up)",
    "day_of_week()",
    "hour(timestamp(up))",
    "minute(timestamp(up))",
    "month()",
    "year()",
    "days_in_month()",
    # aggregations
    "sum(up)",
    f"sum by (mode) (rate({CPU}[30s]))",
    f"sum without (cpu) (rate({CPU}[30s]))",
    f"avg by (mode) ({CPU})",
    f"min by (cpu) ({CPU})",
    f"max without (mode) ({CPU})",
    "count(up)",
    f"count by (mode) ({CPU})",
    f"group by (mode) ({CPU})",
    f"stddev by (mode) ({CPU})",
    f"stdvar({CPU})",
    f'topk(3, {CPU}{{mode="idle"}} or {CPU}{{mode="user"}})',
    f"bottomk(2, sum by (mode) ({CPU}))",
    f"quantile(0.5, {CPU})",
    f"quantile by (mode) (0.9, rate({CPU}[30s]))",
    'count_values("value", up)',
    'count_values("load", node_load1)',
    "topk(scalar(count(up)), go_goroutines)",
    "max_over_time(rate(node_context_switches_total[20s])[40s:5s] @ {at})",
    'count_values by (job) ("goroutines", go_goroutines)',
    # binary operators, matching and precedence
    "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes * 100",
    "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
    "node_load1 + node_load5",
    "node_load1 - on(instance, job) node_load5",
    "node_load1 * ignoring(job) node_load5",
    "node_load15 % 0.3",
    "2 ^ node_load1",
    "node_load1 atan2 node_load5",
    "up == 1",
    "up != bool 0",
    f"{CPU} > 1",
    f"{CPU} > bool 1",
    "1 < bool node_load1",
    f'{CPU} > on(cpu) group_left {CPU}{{mode="user"}} / 1e6',
    f'{CPU}{{mode="idle"}} - on(cpu) group_left {CPU}{{mode="user"}}',
    f"sum by (cpu) ({CPU}) / on(cpu) group_right {CPU}",
    f"{CPU} / on(instance, job) group_left(version) node_exporter_build_info",
    f'{CPU}{{mode="idle"}} and {CPU}{{cpu="0"}}',
    f'{CPU}{{mode="idle"}} or {CPU}{{mode="user"}}',
    f'{CPU} unless {CPU}{{mode="idle"}}',
    "up and on(job) go_goroutines > 5",
    "up or vector(2)",
    "-node_load1 ^ 2",
    "2 * 3 + 4 / 2 - 1",
    "(node_load1 + 1) * 2 > bool 1.5 * 2",
    "scalar(node_load1) * up",
]


# A query here may differ on VictoriaMetrics, for the named reason only.
VICTORIAMETRICS_DIFFERENCES = {
    "rate(node_context_switches_total[30s] offset 10s)": NO_EXTRAPOLATION,
    "avg_over_time(rate(node_context_switches_total[20s])[40s:5s])": NO_EXTRAPOLATION,
    f"rate({CPU}[30s])": NO_EXTRAPOLATION,
    f"increase({CPU}[1m])": NO_EXTRAPOLATION,
    "delta(go_memstats_alloc_bytes[30s])": NO_EXTRAPOLATION,
    f"rate({HTTP}[1m])": NO_EXTRAPOLATION,
    f"sum by (mode) (rate({CPU}[30s]))": NO_EXTRAPOLATION,
    f"sum without (cpu) (rate({CPU}[30s]))": NO_EXTRAPOLATION,
    f"quantile by (mode) (0.9, rate({CPU}[30s]))": NO_EXTRAPOLATION,
    f"histogram_quantile(0.5, sum by (le) (rate({BUCKETS}[1m])))": NO_EXTRAPOLATION,
    "max_over_time(rate(node_context_switches_total[20s])[40s:5s] @ {at})": NO_EXTRAPOLATION,
    "resets(go_memstats_alloc_bytes[1m])": SAMPLE_BEFORE_WINDOW,
    "changes(go_goroutines[1m])": SAMPLE_BEFORE_WINDOW,
    "max_over_time(node_load1[1m:10s])": KEEPS_METRIC_NAME,
    "min_over_time(go_goroutines[30s:4s] offset 10s)": KEEPS_METRIC_NAME,
    "predict_linear(go_memstats_alloc_bytes[1m], 120)": KEEPS_METRIC_NAME,
    "avg_over_time(go_goroutines[1m])": KEEPS_METRIC_NAME,
    "min_over_time(go_goroutines[1m])": KEEPS_METRIC_NAME,
    "max_over_time(go_goroutines[1m])": KEEPS_METRIC_NAME,
    "quantile_over_time(0.75, go_goroutines[1m])": KEEPS_METRIC_NAME,
    "ceil(node_load1)": KEEPS_METRIC_NAME,
    "floor(node_load1)": KEEPS_METRIC_NAME,
    "round(node_load1)": KEEPS_METRIC_NAME,
    "round(node_load1, 0.1)": KEEPS_METRIC_NAME,
    "clamp(node_load1, 0.1, 0.5)": KEEPS_METRIC_NAME,
    "clamp_min(node_load1, 0.3)": KEEPS_METRIC_NAME,
    "clamp_max(node_load1, 0.3)": KEEPS_METRIC_NAME,
    f"histogram_quantile(0.9, rate({BUCKETS}[1m]))": NAN_LEFT_OUT,
    f"histogram_quantile(0.99, sum by (le, handler) (rate({BUCKETS}[1m])))": NAN_LEFT_OUT,
    "node_load1 atan2 node_load5": ATAN2_DROPS_NAME,
}
# promtool's query on each engine: a rate on PostgreSQL, where Vigil extrapolates as Prometheus.
PROMTOOL_QUERIES = {
    "postgres": f"sum by (mode) (rate({CPU}[30s]))",
    "victoriametrics": f"sum by (mode) ({CPU})",
}


def compare(vigil_url, prometheus_url, token, query, end_ms) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    text = query.replace("{at}", unix(end_ms - 15_000))
    problems = []
    instant = urllib.parse.urlencode({"query": text, "time": unix(end_ms)})
    ranged = urllib.parse.urlencode({
        "query": text,
        "start": unix(end_ms - RANGE_SECONDS * 1000),
        "end": unix(end_ms),
        "step": STEP_SECONDS,
    })  # fmt: skip
    for kind, params in (("query", instant), ("query_range", ranged)):
        theirs = results(get_json(f"{prometheus_url}/api/v1/{kind}?{params}"))
        ours = results(get_json(f"{vigil_url}/prometheus/api/v1/{kind}?{params}", headers))
        if isinstance(theirs, tuple):
            problems.append(f"{kind} {text}: Prometheus refused it ({theirs[1]}): a bad test")
        elif not theirs and query not in EMPTY_BY_DESIGN:
            problems.append(f"{kind} {text}: Prometheus returned nothing (a useless query)")
        difference = differences(ours, theirs)
        if difference:
            problems.append(f"{kind} {text}: {difference}")
    return problems


@pytest.fixture
def prometheus_feeding_vigil(each_samples_engine, live_server, token, tmp_path):
    _, victoria = each_samples_engine
    with feeding_vigil(tmp_path, live_server.url, token, GATHER_SECONDS) as fed:
        if victoria is not None:
            victoria.flush()
        yield fed


def test_queries_and_promtool_give_prometheus_results(
    each_samples_engine, prometheus_feeding_vigil, live_server, token
):
    engine, _ = each_samples_engine
    prometheus_url, end_ms = prometheus_feeding_vigil
    assert len(QUERIES) >= 80
    assert set(VICTORIAMETRICS_DIFFERENCES) <= set(QUERIES)
    problems = []
    for query in QUERIES:
        if engine == "victoriametrics" and query in VICTORIAMETRICS_DIFFERENCES:
            continue
        problems += compare(live_server.url, prometheus_url, token, query, end_ms)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems)

    # promtool, Prometheus's own client, reads the same from both (the token as a password).
    vigil_url = live_server.url.replace("://", f"://promtool:{token}@") + "/prometheus"
    instant = {
        name: promtool_query(server, PROMTOOL_QUERIES[engine], "instant", end_ms)
        for name, server in (("vigil", vigil_url), ("prometheus", prometheus_url))
    }
    ranged = {name: promtool_query(server, PROMTOOL_QUERIES[engine], "range", end_ms)
              for name, server in (("vigil", vigil_url), ("prometheus", prometheus_url))}  # fmt: skip
    for printed in (instant, ranged):
        assert printed["vigil"], "promtool printed nothing"
        assert same_printout(printed["vigil"], printed["prometheus"]), printed


def test_queries_give_prometheus_results_with_part_of_the_window_compacted(
    live_server, token, tmp_path
):
    """The days so far compacted while Prometheus goes on writing: every window then reads
    compacted samples up to the compaction and raw ones after it (PostgreSQL engine)."""
    with feeding_vigil(tmp_path, live_server.url, token, GATHER_SECONDS) as (prometheus_url, _):
        today = datetime.now(UTC).date()
        folded = sum(
            compaction.compact_day(day)
            for day in map(store.SAMPLES.partition_start, store.list_partitions())
            if day <= today
        )
        assert folded > 1000
        time.sleep(RANGE_SECONDS / 2)
        end_ms = settled_end_ms()
        # The range queries' window holds compacted samples and raw ones.
        up = list(Series.objects.filter(name="up").values_list("id", flat=True))
        window = (end_ms - RANGE_SECONDS * 1000, end_ms)
        compacted = len(store.block_arrays(up, np.array([window]), 10**6).ts_ms)
        assert 0 < compacted < len(store.sample_arrays(up, *window, 10**6).ts_ms)
        problems = []
        for query in QUERIES:
            problems += compare(live_server.url, prometheus_url, token, query, end_ms)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems)


PRINTED_VALUE = re.compile(r"(\S+) @\[")


def same_printout(ours: list[str], theirs: list[str]) -> bool:
    """promtool's lines, equal but for values within the tolerance (sums may differ in the
    last bit with the order of addition)."""
    if len(ours) != len(theirs):
        return False
    for mine, other in zip(ours, theirs, strict=True):
        if PRINTED_VALUE.sub("@[", mine) != PRINTED_VALUE.sub("@[", other):
            return False
        values = [PRINTED_VALUE.search(line) for line in (mine, other)]
        if all(values) and not same_value(values[0].group(1), values[1].group(1)):
            return False
    return True


def promtool_query(server: str, query: str, kind: str, end_ms: int) -> list[str]:
    """promtool's output lines for ``query`` at (or up to) ``end_ms``, sorted."""
    promtool = PROMETHEUS.replace("prometheus", "promtool")
    if kind == "instant":
        args = ["instant", "--time", unix(end_ms)]
    else:
        args = ["range", "--start", unix(end_ms - 60_000), "--end", unix(end_ms), "--step", "10s"]
    done = subprocess.run(
        [promtool, "query", *args, server, query], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return sorted(done.stdout.splitlines(), key=lambda line: PRINTED_VALUE.sub("@[", line))
