"""Limits before work (PRODUCT.md sections 5.4 and 8), each tried as an attacker would."""

import http.client
import os
import select
import socket
from pathlib import Path
from urllib.parse import urlsplit

import cramjam
import orjson
import pytest
from django.db import connection

from bench.common import database_dsn, database_url, production_env, web_server
from ingestion.models import IngestToken
from ingestion.prompb import WriteRequest

pytestmark = pytest.mark.django_db(transaction=True)

MiB = 1024 * 1024
CHUNK = 64 * 1024


@pytest.fixture
def server(settings):
    """Vigil's web process (uvicorn, one process) on loopback, with production settings."""
    env = production_env(
        DATABASE_URL=database_url(database_dsn(), connection.settings_dict["NAME"]),
        REDIS_URL=settings.REDIS_URL,
    )
    with web_server(workers=1, env=env) as (url, process):
        yield urlsplit(url), process.pid


def bytes_read_by(pid: int) -> int:
    """What the process has read so far through read-like system calls, sockets included."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/<pid>/io")


def upload(address, head: bytes, total: int, chunked: bool) -> bytes:
    """Send ``head`` and up to ``total`` body bytes, as the server takes them; the answer (empty
    if the server closed the connection without one)."""
    with socket.create_connection((address.hostname, address.port), timeout=30) as client:
        client.sendall(head)
        payload = b"x" * CHUNK
        frame = f"{CHUNK:x}\r\n".encode() + payload + b"\r\n" if chunked else payload
        sent = 0
        while sent < total:
            readable, writable, _ = select.select([client], [client], [], 30)
            if readable:
                break
            if not writable:
                raise AssertionError("the server neither reads nor answers")
            try:
                client.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += CHUNK
        answer = b""
        try:
            while chunk := client.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        return answer


def request_head(address, extra: str) -> bytes:
    return (
        f"POST /api/v1/ingest HTTP/1.1\r\nHost: {address.hostname}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


def test_an_unauthenticated_200_mib_chunked_upload_is_refused_before_10_mib_is_read(server):
    address, pid = server
    before = bytes_read_by(pid)

    answer = upload(
        address, request_head(address, "Transfer-Encoding: chunked\r\n"), 200 * MiB, chunked=True
    )

    read = bytes_read_by(pid) - before
    assert read < 10 * MiB, f"the server read {read} bytes"
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_a_declared_200_mib_body_is_refused_before_any_of_it_is_read(server):
    address, pid = server
    before = bytes_read_by(pid)

    answer = upload(
        address, request_head(address, f"Content-Length: {200 * MiB}\r\n"), 200 * MiB, False
    )

    read = bytes_read_by(pid) - before
    assert read < 10 * MiB, f"the server read {read} bytes"
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def cpu_seconds_and_peak_rss(pid: int) -> tuple[float, int]:
    """The process's CPU time so far (user + system) and its peak resident memory in bytes."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return cpu, int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def test_a_million_empty_series_in_a_small_remote_write_body_is_refused_cheaply(server):
    address, pid = server
    token = IngestToken.issue("prometheus", [IngestToken.Scope.INGEST])[1]
    # Each empty TimeSeries is two bytes (field 1, length 0): 2 MB that snappy shrinks to ~0.1 MB.
    body = bytes(cramjam.snappy.compress_raw(b"\x0a\x00" * 1_000_000))
    cpu_before, rss_before = cpu_seconds_and_peak_rss(pid)

    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    connection.request(
        "POST",
        "/api/v1/write",
        body,
        {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
        },
    )
    response = connection.getresponse()
    answer = orjson.loads(response.read())

    cpu_after, rss_after = cpu_seconds_and_peak_rss(pid)
    assert response.status == 413
    assert "1000000 series" in answer["error"] and answer["details"] == []
    assert cpu_after - cpu_before < 2, f"{cpu_after - cpu_before:.1f} s of CPU"
    assert rss_after - rss_before < 200 * MiB, f"peak memory grew {rss_after - rss_before} bytes"


def test_a_batch_of_thousands_of_bad_items_lists_the_first_100_and_counts_them_all(api):
    request = WriteRequest()
    for _ in range(5000):
        series = request.timeseries.add()
        series.labels.add(name="instance", value="web-1")  # but no __name__
        series.samples.add(value=1, timestamp=1)

    response = api.post(
        "/api/v1/write",
        bytes(cramjam.snappy.compress_raw(request.SerializeToString())),
        headers={"Content-Encoding": "snappy"},
        content_type="application/x-protobuf",
    )

    body = response.json()
    assert response.status_code == 400
    assert len(body["details"]) == 100
    assert body["error"].startswith("5000 invalid item(s) (the first 100 listed)")
