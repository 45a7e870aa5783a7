"""Vigil's host metrics from node_exporter's, so its hosts feed the default rules and pages.

When node_exporter metrics arrive (remote write, scrape or any ingest), these samples are
derived and stored with them, stamped with their inputs' timestamp:

==========================================  ==================================================
``cpu_usage`` (%)                           100 × (1 − average over CPUs of the per-second
                                            increase of ``node_cpu_seconds_total{mode="idle"}``
                                            since that series' previous stored sample)
``memory_usage`` (%)                        100 × (1 − ``node_memory_MemAvailable_bytes`` /
                                            ``node_memory_MemTotal_bytes``)
``disk_usage{mount}`` (%)                   100 × (1 − ``node_filesystem_avail_bytes`` /
                                            ``node_filesystem_size_bytes``) per mountpoint,
                                            pseudo file systems left out
``load_average{period="1m"|"5m"|"15m"}``    ``node_load1``, ``node_load5``, ``node_load15``
==========================================  ==================================================

A batch may hold only part of a scrape (Prometheus splits its remote writes): an input missing
from the batch is taken from the newest stored sample of the last few minutes. A metric the
batch already carries (say, from Vigil's own agent) is never derived.
"""

from collections.abc import Iterable, Sequence
from datetime import timedelta

from ingestion.parsers import ParsedSample
from instances import store

CPU_SECONDS = "node_cpu_seconds_total"
MEM_AVAILABLE = "node_memory_MemAvailable_bytes"
MEM_TOTAL = "node_memory_MemTotal_bytes"
FS_AVAILABLE = "node_filesystem_avail_bytes"
FS_SIZE = "node_filesystem_size_bytes"
LOADS = {"node_load1": "1m", "node_load5": "5m", "node_load15": "15m"}
INPUTS = {CPU_SECONDS, MEM_AVAILABLE, MEM_TOTAL, FS_AVAILABLE, FS_SIZE, *LOADS}
# Stored inputs older than this are not paired with new ones.
LOOKBACK = timedelta(minutes=5)
PSEUDO_FILE_SYSTEMS = {
    "tmpfs", "devtmpfs", "ramfs", "overlay", "squashfs", "proc", "sysfs", "cgroup", "cgroup2",
    "nsfs", "autofs", "fuse.lxcfs", "devpts", "mqueue", "tracefs", "debugfs", "securityfs",
}  # fmt: skip


def may_derive_from(names: Iterable[str]) -> bool:
    """Whether samples of these metric names may give host metrics."""
    return not INPUTS.isdisjoint(names)


def host_samples(instance_id, samples: Sequence[ParsedSample]) -> list[ParsedSample]:
    """Vigil's host metrics derived from the node_exporter samples among ``samples``."""
    inputs = [sample for sample in samples if sample.name in INPUTS]
    if not inputs:
        return []
    present = {sample.name for sample in samples}
    since = min(sample.ts for sample in inputs) - LOOKBACK
    stored = store.latest_values([instance_id], sorted(INPUTS), since=since)
    derived = []
    if "load_average" not in present:
        derived += _load(inputs)
    if "memory_usage" not in present:
        derived += _memory(inputs, stored)
    if "disk_usage" not in present:
        derived += _disk(inputs, stored)
    if "cpu_usage" not in present:
        derived += _cpu(inputs, stored)
    return derived


def _percent(name: str, value: float, ts, labels: dict | None = None) -> ParsedSample:
    return ParsedSample(name, min(max(value, 0.0), 100.0), ts, labels or {}, "percent")


def _load(inputs) -> list[ParsedSample]:
    return [
        ParsedSample("load_average", s.value, s.ts, {"period": LOADS[s.name]}, "")
        for s in inputs
        if s.name in LOADS
    ]


def _memory(inputs, stored) -> list[ParsedSample]:
    given = {s.name: s for s in inputs if s.name in (MEM_AVAILABLE, MEM_TOTAL)}
    if not given:
        return []
    values = {v.name: v.value for v in stored if v.name in (MEM_AVAILABLE, MEM_TOTAL)}
    values.update({name: s.value for name, s in given.items()})
    if not values.get(MEM_TOTAL) or MEM_AVAILABLE not in values:
        return []
    ts = max(s.ts for s in given.values())
    return [_percent("memory_usage", 100 * (1 - values[MEM_AVAILABLE] / values[MEM_TOTAL]), ts)]


def _disk(inputs, stored) -> list[ParsedSample]:
    def mounts(items):
        return {
            (item.name, item.labels.get("mountpoint")): item
            for item in items
            if item.name in (FS_AVAILABLE, FS_SIZE)
            and item.labels.get("mountpoint")
            and item.labels.get("fstype") not in PSEUDO_FILE_SYSTEMS
        }

    given = mounts(inputs)
    values = {key: item.value for key, item in mounts(stored).items()}
    values.update({key: item.value for key, item in given.items()})
    derived = {}
    for (_, mount), sample in given.items():
        size, available = values.get((FS_SIZE, mount)), values.get((FS_AVAILABLE, mount))
        if size and available is not None:
            usage = 100 * (1 - available / size)
            derived[mount] = _percent("disk_usage", usage, sample.ts, {"mount": mount})
    return list(derived.values())


def _cpu(inputs, stored) -> list[ParsedSample]:
    def idle(items):
        return {
            item.labels.get("cpu"): item
            for item in items
            if item.name == CPU_SECONDS and item.labels.get("mode") == "idle"
        }

    previous = idle(stored)
    rates, stamps = [], []
    for cpu, sample in idle(inputs).items():
        before = previous.get(cpu)
        if before is None or before.ts >= sample.ts or before.value > sample.value:
            continue  # first sample, a replay, or a counter reset: no rate yet
        seconds = (sample.ts - before.ts).total_seconds()
        rates.append((sample.value - before.value) / seconds)
        stamps.append(sample.ts)
    if not rates:
        return []
    return [_percent("cpu_usage", 100 * (1 - sum(rates) / len(rates)), max(stamps))]
