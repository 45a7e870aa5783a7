"""Debian's prometheus and prometheus-node-exporter as local stand-ins (installed by .ci/run).

Each runs as a subprocess on a free 127.0.0.1 port with its own config and data under the test's
tmp_path, and is stopped when the test ends.
"""

import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

PROMETHEUS = shutil.which("prometheus")
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")

needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="Debian package prometheus is not installed (.ci/run installs it)"
)
needs_node_exporter = pytest.mark.skipif(
    NODE_EXPORTER is None,
    reason="Debian package prometheus-node-exporter is not installed (.ci/run installs it)",
)

AMTOOL = shutil.which("amtool")
needs_amtool = pytest.mark.skipif(
    AMTOOL is None,
    reason="Debian package prometheus-alertmanager (amtool) is not installed (.ci/run installs it)",
)

VICTORIA_METRICS = shutil.which("victoria-metrics") or shutil.which("victoria-metrics-prod")
needs_victoriametrics = pytest.mark.skipif(
    VICTORIA_METRICS is None,
    reason="Debian package victoria-metrics is not installed (.ci/run installs it)",
)

STARTUP_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, interval: float = 0.25, what: str = "condition"):
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 2) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except (urllib.error.URLError, OSError):
        return None


@contextmanager
def running(args: list[str], ready_url: str, log: Path):
    with log.open("wb") as output:
        process = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until(
            lambda: process.poll() is not None or http_get(ready_url) is not None,
            STARTUP_SECONDS,
            what=f"{args[0]} to answer at {ready_url}",
        )
        if process.poll() is not None:
            raise AssertionError(f"{args[0]} exited: {log.read_text()[-2000:]}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def node_exporter(tmp_path: Path):
    """A node_exporter; yields its ``host:port`` (the ``instance`` label Prometheus gives it)."""
    address = f"127.0.0.1:{free_port()}"
    args = [NODE_EXPORTER, f"--web.listen-address={address}"]
    with running(args, f"http://{address}/metrics", tmp_path / "node_exporter.log"):
        yield address


@contextmanager
def prometheus(tmp_path: Path, config: str, self_target: str | None = None, extra_args: tuple = ()):
    """A Prometheus with ``config`` (YAML text, where ``self_target`` stands for its own
    address) and ``extra_args``; yields its base URL."""
    address = f"127.0.0.1:{free_port()}"
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(config.replace(self_target, address) if self_target else config)
    args = [
        PROMETHEUS,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
        f"--web.listen-address={address}",
        *extra_args,
    ]
    with running(args, f"http://{address}/-/ready", tmp_path / "prometheus.log"):
        yield f"http://{address}"


def query(prometheus_url: str, promql: str) -> list[dict]:
    """The result vector of an instant query to Prometheus's HTTP API (empty on error)."""
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    body = http_get(url)
    if body is None:
        return []
    return orjson.loads(body)["data"]["result"]


class VictoriaMetrics:
    """A VictoriaMetrics single-node on a free loopback port, with its data under ``data``;
    ``stop()`` and ``start()`` again (same port, same data) for fault tests."""

    def __init__(self, data: Path, log: Path, dedup: bool = True):
        self.data, self.log, self.dedup = data, log, dedup
        self.address = f"127.0.0.1:{free_port()}"
        self.url = f"http://{self.address}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        args = [
            VICTORIA_METRICS,
            f"-httpListenAddr={self.address}",
            f"-storageDataPath={self.data}",
            # As the README sets it up: any age of history, one sample per series and
            # timestamp, and samples visible to queries as soon as they are stored.
            "-retentionPeriod=100y",
            *(["-dedup.minScrapeInterval=1ms"] if self.dedup else []),
            "-search.latencyOffset=0s",
            "-search.disableCache",
        ]
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT)
        wait_until(
            lambda: self.process.poll() is not None or http_get(f"{self.url}/health") == b"OK",
            STARTUP_SECONDS,
            what=f"VictoriaMetrics to answer at {self.url}",
        )
        if self.process.poll() is not None:
            raise AssertionError(f"VictoriaMetrics exited: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def flush(self) -> None:
        """Make what it has taken visible to searches now (it does so within a second)."""
        assert http_get(f"{self.url}/internal/force_flush", timeout=10) is not None


@contextmanager
def victoriametrics(tmp_path: Path, dedup: bool = True):
    """A running VictoriaMetrics single-node (see VictoriaMetrics), stopped at the end."""
    server = VictoriaMetrics(
        tmp_path / "victoria-metrics-data", tmp_path / "victoria-metrics.log", dedup
    )
    server.start()
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


CLUSTER_PATH = re.compile(r"^/(insert|select|delete)/0/prometheus(/.*)$")


@contextmanager
def cluster_layout(single_node_url: str):
    """A stand-in for a VictoriaMetrics cluster's URL layout in front of a single node: it
    answers ``/insert/0/prometheus/…`` (vminsert), ``/select/0/prometheus/…`` (vmselect),
    ``/delete/0/prometheus/…`` (vmselect's deletes) and ``/health`` by passing the rest of the
    path on, and 404 to anything else. Yields (its URL, the (role, path) pairs it passed on)."""
    passed: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            path, _, query = self.path.partition("?")
            match = CLUSTER_PATH.match(path)
            if path == "/health":
                role, rest = "health", path
            elif match:
                role, rest = match.groups()
            else:
                self.send_error(404)
                return
            passed.append((role, rest))
            length = int(self.headers.get("Content-Length") or 0)
            request = urllib.request.Request(
                f"{single_node_url}{rest}" + (f"?{query}" if query else ""),
                data=self.rfile.read(length) if self.command == "POST" else None,
                headers={"Content-Type": self.headers.get("Content-Type", "")},
                method=self.command,
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status, body = response.status, response.read()
            except urllib.error.HTTPError as error:
                status, body = error.code, error.read()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _forward

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", passed
    finally:
        server.shutdown()
        server.server_close()
