"""The host agent (agent/): collection, the spool, delivery, retries and replay.

The server is a real HTTP receiver on 127.0.0.1 that answers what a test tells it to; an
unreachable server is a port nothing listens on. Nothing of the agent is mocked.
"""

import json
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

from agent.host_agent import (
    Agent,
    Client,
    Collector,
    Outcome,
    Spool,
    SpooledBatch,
    default_agent_id,
    describe_host,
)

ROOT = Path(__file__).resolve().parent.parent
METRICS = {
    "cpu_usage": "percent",
    "memory_usage": "percent",
    "memory_used_bytes": "bytes",
    "swap_usage": "percent",
    "disk_usage": "percent",
    "load_average": "",
    "network_bytes_total": "bytes",
    "uptime_seconds": "seconds",
}


def reported_metrics() -> set[str]:
    """What the collector reports on this host: no network counters where the only interface
    is loopback (a network namespace, a sandboxed CI machine)."""
    if set(psutil.net_io_counters(pernic=True)) <= {"lo"}:
        return set(METRICS) - {"network_bytes_total"}
    return set(METRICS)


class Receiver:
    """A stand-in Vigil server: records every request and answers from a script (then 202)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: list[tuple[int, dict, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": json.loads(body),
                        "at": time.monotonic(),
                    }
                )
                status, headers, answer = (
                    receiver.script.pop(0)
                    if receiver.script
                    else (202, {}, {"accepted": 1, "instance_id": str(uuid.uuid4())})
                )
                payload = json.dumps(answer).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, status: int, body: dict | None = None, **headers) -> None:
        self.script.append((status, headers, body or {"error": f"status {status}", "details": []}))

    @property
    def batches(self) -> list[dict]:
        """Requests that carried samples (registration sends none)."""
        return [r for r in self.requests if r["body"]["samples"]]


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def unreachable_url():
    """A port bound but not listening, held for the whole test: connections are refused, and
    no server started meanwhile (the receiver fixture) can be given the same port."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


@pytest.fixture
def agent_log(caplog):
    caplog.set_level(logging.INFO, logger="vigil.agent")
    return caplog


def make_agent(url: str, spool_path: Path, interval: float = 2.0, **retry) -> Agent:
    retry = {"retries": 2, "backoff": 0.01, **retry}
    return Agent(
        describe_host("test-host", "Test Host", "host", "lab"),
        Collector(),
        Client(url, "secret-token", timeout=2),
        Spool(spool_path),
        interval=interval,
        **retry,
    )


def environment_without_vigil(**extra: str) -> dict:
    """The environment of a monitored host: no Vigil checkout on the path, no agent token."""
    drop = {"PYTHONPATH", "VIGIL_AGENT_TOKEN", "VIGIL_AGENT_CONFIG"}
    return {key: value for key, value in os.environ.items() if key not in drop} | extra


def info_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]


def sample(ts: int, value: float = 1.0) -> dict:
    return {"name": "cpu_usage", "value": value, "unit": "percent", "ts": ts, "labels": {}}


def spooled_batch(number: int) -> SpooledBatch:
    return SpooledBatch(
        f"key-{number}", {"instance": {"agent_id": "a"}, "samples": [sample(number)]}
    )


# Collector


def test_collector_reports_every_metric_with_finite_values_units_and_one_timestamp():
    samples = Collector().collect()
    assert {s["name"] for s in samples} == reported_metrics()
    for s in samples:
        assert isinstance(s["value"], float) and math.isfinite(s["value"]), s
        assert s["unit"] == METRICS[s["name"]], s
    assert len({s["ts"] for s in samples}) == 1
    assert isinstance(samples[0]["ts"], int)
    assert abs(samples[0]["ts"] - time.time() * 1000) < 5000
    json.dumps(samples, allow_nan=False)


def test_collector_labels_each_series():
    samples = Collector().collect()
    labels = {}
    for s in samples:
        labels.setdefault(s["name"], []).append(s["labels"])
    for name in ("cpu_usage", "memory_usage", "memory_used_bytes", "swap_usage", "uptime_seconds"):
        assert labels[name] == [{}]
    assert sorted(lab["period"] for lab in labels["load_average"]) == ["15m", "1m", "5m"]
    interfaces = set(psutil.net_io_counters(pernic=True)) - {"lo"}
    assert sorted(
        (lab["interface"], lab["direction"]) for lab in labels.get("network_bytes_total", [])
    ) == (sorted((i, d) for i in interfaces for d in ("rx", "tx")))
    assert {"mount": "/"} in labels["disk_usage"]


def test_collector_reports_each_real_filesystem_once():
    mounts = [s["labels"]["mount"] for s in Collector().collect() if s["name"] == "disk_usage"]
    physical = {p.mountpoint for p in psutil.disk_partitions(all=False) if p.fstype != "squashfs"}
    assert set(mounts) <= physical | {"/"}
    assert all(os.path.isdir(mount) for mount in mounts)
    assert len({os.stat(mount).st_dev for mount in mounts}) == len(mounts)


def test_default_agent_id_is_stable_and_does_not_leak_the_machine_id():
    agent_id = default_agent_id()
    assert agent_id and agent_id == default_agent_id()
    machine_id = Path("/etc/machine-id")
    if machine_id.exists() and machine_id.read_text().strip():
        assert machine_id.read_text().strip() not in agent_id


def test_agent_module_imports_no_django():
    code = "import sys, agent.host_agent; sys.exit('django' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


# Spool


def test_spool_returns_batches_oldest_first_and_creates_its_directory(tmp_path):
    spool = Spool(tmp_path / "deep" / "dir" / "spool.jsonl")
    assert spool.pending() == [] and len(spool) == 0
    for number in range(3):
        spool.append(spooled_batch(number))
    assert spool.pending() == [spooled_batch(0), spooled_batch(1), spooled_batch(2)]
    assert len(spool) == 3
    lines = spool.path.read_text().splitlines()
    assert json.loads(lines[0]) == {"key": "key-0", "body": spooled_batch(0).body}


def test_spool_replace_swaps_the_file_atomically(tmp_path):
    spool = Spool(tmp_path / "spool.jsonl")
    for number in range(3):
        spool.append(spooled_batch(number))
    with spool.path.open() as reader_of_old_file:
        spool.replace([spooled_batch(2)])
        assert len(reader_of_old_file.read().splitlines()) == 3
    assert spool.pending() == [spooled_batch(2)]
    assert [p.name for p in tmp_path.iterdir()] == ["spool.jsonl"]


def test_spool_drops_the_oldest_batches_beyond_its_bound(tmp_path, agent_log):
    spool = Spool(tmp_path / "spool.jsonl", max_batches=3)
    for number in range(5):
        spool.append(spooled_batch(number))
    assert [b.key for b in spool.pending()] == ["key-2", "key-3", "key-4"]
    assert "spool is full" in agent_log.text


def test_spool_skips_a_line_torn_by_a_crash_and_appends_after_it(tmp_path, agent_log):
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append(spooled_batch(0))
    with spool.path.open("a") as file:
        file.write('{"key": "torn", "bo')
    spool.append(spooled_batch(1))
    assert spool.pending() == [spooled_batch(0), spooled_batch(1)]
    assert "line 2 is unreadable" in agent_log.text


# Delivery


def test_cycle_sends_one_batch_with_token_idempotency_key_and_instance(
    receiver, tmp_path, agent_log
):
    agent = make_agent(receiver.url, tmp_path / "spool.jsonl")
    assert agent.run_cycle() is Outcome.SENT
    [request] = receiver.requests
    assert request["path"] == "/api/v1/ingest"
    assert request["headers"]["Authorization"] == "Bearer secret-token"
    assert request["headers"]["Content-Type"] == "application/json"
    uuid.UUID(request["headers"]["Idempotency-Key"])
    assert request["body"]["instance"]["agent_id"] == "test-host"
    assert request["body"]["instance"]["metadata"]["agent_version"]
    assert {s["name"] for s in request["body"]["samples"]} == reported_metrics()
    assert info_lines(agent_log) == [f"cycle ok: sent {len(request['body']['samples'])} samples"]
    assert len(agent.spool) == 0


def test_registration_sends_the_instance_with_no_samples(receiver, tmp_path):
    make_agent(receiver.url, tmp_path / "spool.jsonl").register()
    [request] = receiver.requests
    assert request["body"]["samples"] == []
    assert request["body"]["instance"]["name"] == "Test Host"


def test_registration_carries_on_when_the_server_is_unreachable(unreachable_url, tmp_path):
    make_agent(unreachable_url, tmp_path / "spool.jsonl").register()


@pytest.mark.parametrize("status", [400, 413, 415])
def test_batch_the_server_rejects_is_dropped_not_retried_or_spooled(
    status, receiver, tmp_path, agent_log
):
    receiver.answer(status, {"error": "invalid batch", "details": [{"index": 0}]})
    agent = make_agent(receiver.url, tmp_path / "spool.jsonl")
    assert agent.run_cycle() is Outcome.DROPPED
    assert len(receiver.requests) == 1
    assert len(agent.spool) == 0
    assert "invalid batch" in agent_log.text
    assert len(info_lines(agent_log)) == 1


def test_503_is_retried_after_the_servers_retry_after(receiver, tmp_path):
    receiver.answer(503, **{"Retry-After": "1"})
    agent = make_agent(receiver.url, tmp_path / "spool.jsonl")
    assert agent.run_cycle() is Outcome.SENT
    first, retry = receiver.requests
    assert retry["at"] - first["at"] >= 1.0
    assert retry["headers"]["Idempotency-Key"] == first["headers"]["Idempotency-Key"]


def test_429_with_a_long_retry_after_spools_and_the_next_cycle_waits_too(
    receiver, tmp_path, agent_log
):
    receiver.answer(429, **{"Retry-After": "60"})
    agent = make_agent(receiver.url, tmp_path / "spool.jsonl")
    assert agent.run_cycle() is Outcome.SPOOLED
    assert agent.run_cycle() is Outcome.SPOOLED
    assert len(receiver.requests) == 1
    assert len(agent.spool) == 2
    assert info_lines(agent_log)[0].startswith("cycle: HTTP 429")


def test_server_errors_are_retried_with_backoff_then_spooled(receiver, tmp_path):
    for _ in range(3):
        receiver.answer(500)
    agent = make_agent(receiver.url, tmp_path / "spool.jsonl", retries=2)
    assert agent.run_cycle() is Outcome.SPOOLED
    assert len(receiver.requests) == 3
    assert len({r["headers"]["Idempotency-Key"] for r in receiver.requests}) == 1
    [spooled] = agent.spool.pending()
    assert spooled.key == receiver.requests[0]["headers"]["Idempotency-Key"]


def test_a_cycle_gives_up_retrying_within_its_interval(receiver, tmp_path):
    for _ in range(20):
        receiver.answer(503)
    agent = make_agent(receiver.url, tmp_path / "spool.jsonl", interval=1, retries=10, backoff=0.3)
    started = time.monotonic()
    assert agent.run_cycle() is Outcome.SPOOLED
    assert time.monotonic() - started < 1.2


def test_unreachable_server_spools_the_batch(unreachable_url, tmp_path, agent_log):
    agent = make_agent(unreachable_url, tmp_path / "spool.jsonl")
    assert agent.run_cycle() is Outcome.SPOOLED
    [spooled] = agent.spool.pending()
    assert {s["name"] for s in spooled.body["samples"]} == reported_metrics()
    [line] = info_lines(agent_log)
    assert line.startswith("cycle: server unreachable (") and line.endswith("(1 in spool)")


def test_refused_token_keeps_batches_in_the_spool_without_retrying(receiver, tmp_path, agent_log):
    receiver.answer(401, {"error": "invalid token", "details": []})
    agent = make_agent(receiver.url, tmp_path / "spool.jsonl")
    assert agent.run_cycle() is Outcome.SPOOLED
    assert len(receiver.requests) == 1
    assert len(agent.spool) == 1
    assert any(r.levelno == logging.ERROR and "token" in r.getMessage() for r in agent_log.records)


def test_spool_is_replayed_in_order_with_original_timestamps_and_keys_before_the_new_batch(
    unreachable_url, receiver, tmp_path, agent_log
):
    spool_path = tmp_path / "spool.jsonl"
    offline = make_agent(unreachable_url, spool_path)
    for _ in range(3):
        assert offline.run_cycle() is Outcome.SPOOLED
    spooled = Spool(spool_path).pending()
    agent_log.clear()

    assert make_agent(receiver.url, spool_path).run_cycle() is Outcome.SENT

    sent = receiver.requests
    assert [r["headers"]["Idempotency-Key"] for r in sent[:3]] == [b.key for b in spooled]
    assert [r["body"] for r in sent[:3]] == [b.body for b in spooled]
    assert sent[3]["headers"]["Idempotency-Key"] not in {b.key for b in spooled}
    assert sent[3]["body"]["samples"][0]["ts"] >= spooled[-1].body["samples"][0]["ts"]
    assert len(Spool(spool_path)) == 0
    [line] = info_lines(agent_log)
    assert line.endswith("(replayed 3 spooled batches)")


def test_replay_stops_at_a_transient_failure_and_the_new_batch_goes_last(receiver, tmp_path):
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append(spooled_batch(1))
    spool.append(spooled_batch(2))
    receiver.answer(202, {"accepted": 1, "instance_id": str(uuid.uuid4())})
    receiver.answer(503, **{"Retry-After": "60"})
    agent = make_agent(receiver.url, spool.path)
    assert agent.run_cycle() is Outcome.SPOOLED
    assert [r["headers"]["Idempotency-Key"] for r in receiver.requests] == ["key-1", "key-2"]
    remaining = spool.pending()
    assert len(remaining) == 2 and remaining[0].key == "key-2"
    assert remaining[1].body["instance"]["agent_id"] == "test-host"


def test_spooled_batch_the_server_rejects_is_dropped_and_replay_goes_on(receiver, tmp_path):
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append(spooled_batch(1))
    spool.append(spooled_batch(2))
    receiver.answer(400)
    agent = make_agent(receiver.url, spool.path)
    assert agent.run_cycle() is Outcome.SENT
    keys = [r["headers"]["Idempotency-Key"] for r in receiver.requests]
    assert keys[:2] == ["key-1", "key-2"] and len(keys) == 3
    assert len(spool) == 0


# The command


def run_agent(
    url: str, spool_path: Path, *args: str, token: str = "secret-token"
) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "agent", "--url", url, "--token", token]
    command += ["--spool", str(spool_path), "--agent-id", "cli-host", "--interval", "4", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_once_spools_offline_then_replays_when_the_server_is_back(
    unreachable_url, receiver, tmp_path
):
    spool_path = tmp_path / "spool" / "spool.jsonl"
    offline = run_agent(unreachable_url, spool_path, "--once")
    assert offline.returncode == 0, offline.stderr
    [line] = [line for line in offline.stderr.splitlines() if " INFO " in line]
    assert "spooled batch (1 in spool)" in line
    [spooled] = Spool(spool_path).pending()

    online = run_agent(receiver.url, spool_path, "--once")

    assert online.returncode == 0, online.stderr
    registration, replayed, new = receiver.requests
    assert registration["body"]["samples"] == []
    assert replayed["headers"]["Idempotency-Key"] == spooled.key
    assert replayed["body"] == spooled.body
    assert new["body"]["instance"]["agent_id"] == "cli-host"
    assert len(Spool(spool_path)) == 0


def test_help_says_how_to_install_and_run_it(tmp_path):
    shutil.copytree(ROOT / "agent", tmp_path / "agent")

    done = subprocess.run(
        [sys.executable, "-m", "agent", "--help"],
        cwd=tmp_path,
        env=environment_without_vigil(),
        capture_output=True,
        text=True,
    )

    assert done.returncode == 0
    assert "apt install python3-psutil" in done.stdout and "install.sh" in done.stdout
    assert "--token-file" in done.stdout and "--config" in done.stdout
    assert "VIGIL_AGENT_TOKEN" in done.stdout
    assert "PRODUCT.md" not in done.stdout and "usage: python3 -m agent" in done.stdout


def test_sigterm_stops_the_agent_between_cycles(receiver, tmp_path):
    command = [sys.executable, "-m", "agent", "--url", receiver.url, "--token", "t"]
    command += ["--spool", str(tmp_path / "spool.jsonl"), "--interval", "60"]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not receiver.batches and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.batches
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
    assert "stopped" in process.stderr.read()


@pytest.mark.django_db(transaction=True)
def test_agent_spools_offline_then_a_live_vigil_stores_its_backlog_with_original_timestamps(
    unreachable_url, live_server, token, tmp_path
):
    from instances import store
    from instances.models import Instance

    spool_path = tmp_path / "spool.jsonl"
    for _ in range(2):
        assert run_agent(unreachable_url, spool_path, "--once").returncode == 0
    spooled = Spool(spool_path).pending()
    assert len(spooled) == 2

    online = run_agent(live_server.url, spool_path, "--once", "--name", "CLI Host", token=token)

    assert online.returncode == 0, online.stderr
    assert "cycle ok: sent" in online.stderr and "(replayed 2 spooled batches)" in online.stderr
    assert len(Spool(spool_path)) == 0
    instance = Instance.objects.get(agent_id="cli-host")
    assert instance.name == "CLI Host" and instance.metadata["agent_version"]
    stored = store.recent_samples([instance.pk], ["uptime_seconds"], limit=10)
    spooled_uptimes = [b.body["samples"][-1] for b in spooled]
    assert [s["name"] for s in spooled_uptimes] == ["uptime_seconds"] * 2
    stored_ms = sorted(int(s.ts.timestamp() * 1000) for s in stored)
    assert len(stored_ms) == 3
    assert stored_ms[:2] == [s["ts"] for s in spooled_uptimes]
    assert [s.value for s in sorted(stored, key=lambda s: s.ts)][:2] == [
        s["value"] for s in spooled_uptimes
    ]
