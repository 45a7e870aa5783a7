"""Benchmark: time from an ingest POST to the fragment arriving on 100 open websockets.

100 sockets of one logged-in Viewer watch one instance's page (``/ws/instances/<id>/``) on the
real ASGI server (uvicorn, two worker processes, channel layer in Redis). Each round POSTs a
batch for that instance and times, per socket, the arrival of the next fragment. Rounds are
``PUSH_INTERVAL`` apart, so each is its own push rather than joining the previous one.
"""

import argparse
import asyncio
import os
import secrets
import statistics
import time
import urllib.request
from datetime import UTC, datetime

import orjson
from websockets.asyncio.client import connect

from bench.common import Figure, emit, log, percentile, production_env, setup_django, web_server


def viewer_session_cookie() -> str:
    """A session of a Viewer, stored where the server reads sessions."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User

    from accounts.permissions import Role, set_role

    user = User.objects.create_user("bench-viewer", password=secrets.token_urlsafe(16))
    set_role(user, Role.VIEWER)
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def batch(agent_id: str, round_: int) -> bytes:
    ts = int(datetime.now(UTC).timestamp() * 1000)
    samples = [{"name": "cpu_usage", "value": float(round_ % 100), "ts": ts}]
    return orjson.dumps({"instance": {"agent_id": agent_id}, "samples": samples})


def post(url: str, token: str, body: bytes) -> None:
    request = urllib.request.Request(
        f"{url}/api/v1/ingest",
        body,
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202, response.status


async def measure(url: str, token: str, cookie: str, instance_id, sockets: int, rounds: int):
    from dashboard.live import PUSH_INTERVAL

    ws_url = url.replace("http://", "ws://") + f"/ws/instances/{instance_id}/"
    headers = {"Cookie": cookie}
    connections = [
        await connect(ws_url, origin=url, additional_headers=headers, max_size=None)
        for _ in range(sockets)
    ]
    arrivals: list[list[float]] = [[] for _ in connections]

    async def listen(index, socket):
        async for _ in socket:
            arrivals[index].append(time.perf_counter())

    listeners = [asyncio.create_task(listen(i, s)) for i, s in enumerate(connections)]
    await asyncio.sleep(1)
    latencies, missed = [], 0
    for round_ in range(rounds):
        seen = [len(times) for times in arrivals]
        started = time.perf_counter()
        await asyncio.to_thread(post, url, token, batch("fanout", round_))
        deadline = started + 5
        while time.perf_counter() < deadline and any(
            len(times) <= before for times, before in zip(arrivals, seen, strict=True)
        ):
            await asyncio.sleep(0.005)
        got = [
            times[before] - started
            for times, before in zip(arrivals, seen, strict=True)
            if len(times) > before
        ]
        latencies += got
        missed += len(arrivals) - len(got)
        log(
            f"round {round_}: {len(got)} arrived, "
            f"median {statistics.median(got or [0]) * 1000:.0f} ms"
        )
        await asyncio.sleep(PUSH_INTERVAL + 0.1)
    for task in listeners:
        task.cancel()
    for socket in connections:
        await socket.close()
    return latencies, missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()

    env = production_env()
    os.environ["SECRET_KEY"] = env["SECRET_KEY"]
    setup_django()
    from django.db import connection

    from dashboard.live import GATHER_DELAY
    from ingestion.models import IngestToken
    from instances.models import Instance

    token = IngestToken.issue("bench")[1]
    instance = Instance.register("fanout")
    cookie = viewer_session_cookie()
    connection.close()

    with web_server(workers=2, env=env) as (url, _):
        post(url, token, batch("fanout", 0))
        log(f"{args.sockets} sockets on {url}, {args.rounds} rounds")
        latencies, missed = asyncio.run(
            measure(url, token, cookie, instance.pk, args.sockets, args.rounds)
        )
    p50, p95 = statistics.median(latencies) * 1000, percentile(latencies, 0.95) * 1000
    emit(
        [
            Figure(
                "live.fanout_p50_ms",
                f"Ingest to fragment on {args.sockets} sockets, p50",
                p50,
                "ms",
            ),
            Figure(
                "live.fanout_p95_ms",
                f"Ingest to fragment on {args.sockets} sockets, p95",
                p95,
                "ms",
                "< 1,000 ms",
                p95 < 1000,
            ),
            Figure(
                "live.fanout_missed",
                "Fragments that did not arrive within 5 s",
                missed,
                "count",
                "0",
                missed == 0,
            ),
        ],
        [
            f"{len(latencies)} arrivals over {args.rounds} POSTs; includes the deliberate "
            f"{GATHER_DELAY * 1000:.0f} ms gather delay of dashboard/live.py (a burst of events "
            "becomes one render per page per process), two uvicorn workers sharing the sockets."
        ],
    )


if __name__ == "__main__":
    main()
