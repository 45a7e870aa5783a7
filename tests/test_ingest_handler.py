"""The ingest endpoints' own way through Django under ASGI (config/ingest_handler.py): the same
answers as the full middleware stack gives, the request's database connection given back."""

import asyncio

import orjson
import pytest
from django.conf import settings
from django.db import connection, connections

from config.ingest_handler import INGEST_MIDDLEWARE
from instances.models import Instance

pytestmark = pytest.mark.django_db(transaction=True)


def asgi_post(
    path: str,
    body: bytes,
    headers: dict[str, str],
    host: str = "127.0.0.1",
    full_stack: bool = False,
) -> tuple[int, dict, bytes]:
    """POST through config.asgi's application in this process (with ``full_stack``, through
    Django's ASGI handler and its whole middleware list instead): (status, headers, body)."""
    from config.asgi import application, django_asgi_app

    if full_stack:
        application = django_asgi_app

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", host.encode()),
            (b"content-length", str(len(body)).encode()),
            *((name.lower().encode(), value.encode()) for name, value in headers.items()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    answer = {"body": b""}

    async def exchange():
        delivered = asyncio.Event()

        async def receive():
            if not delivered.is_set():
                delivered.set()
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()

        async def send(message):
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = {k.decode().lower(): v.decode() for k, v in message["headers"]}
            else:
                answer["body"] += message.get("body", b"")

        await application(scope, receive, send)

    asyncio.run(exchange())
    return answer["status"], answer["headers"], answer["body"]


def batch(agent_id: str, value=1.5) -> bytes:
    return orjson.dumps(
        {"instance": {"agent_id": agent_id}, "samples": [{"name": "cpu_usage", "value": value}]}
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def test_a_batch_is_stored_and_answered_as_through_the_full_stack(client, token):
    status, headers, body = asgi_post("/api/v1/ingest", batch("web-1"), bearer(token))

    assert status == 202
    instance = Instance.objects.get(agent_id="web-1")
    assert orjson.loads(body) == {"accepted": 1, "instance_id": str(instance.pk)}
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["x-content-type-options"] == "nosniff"
    through_stack = client.post(
        "/api/v1/ingest",
        batch("web-1", 2.5),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert through_stack.status_code == 202
    assert through_stack.json() == orjson.loads(body)


@pytest.mark.parametrize(
    ("name", "body", "headers", "status"),
    [
        ("no token", batch("web-2"), {"Content-Type": "application/json"}, 401),
        ("wrong content type", batch("web-2"), {"Content-Type": "text/plain"}, 415),
        ("malformed JSON", b"{not json", {"Content-Type": "application/json"}, 400),
        (
            "bad sample",
            b'{"instance": {"agent_id": "web-2"}, "samples": [{"name": "9x"}]}',
            {},
            400,
        ),
    ],
)
def test_refusals_are_answered_as_through_the_full_stack(
    client, token, name, body, headers, status
):
    headers = {**bearer(token), **headers} if name != "no token" else headers
    got_status, _, got_body = asgi_post("/api/v1/ingest", body, headers)

    through_stack = client.post(
        "/api/v1/ingest",
        body,
        content_type=headers.get("Content-Type", ""),
        headers={key: value for key, value in headers.items() if key != "Content-Type"},
    )
    assert got_status == through_stack.status_code == status
    assert orjson.loads(got_body) == through_stack.json()
    assert not Instance.objects.filter(agent_id="web-2").exists()


def test_remote_write_goes_the_same_way_and_refuses_as_the_stack_does(client, token):
    headers = {**bearer(token), "Content-Type": "application/x-protobuf"}
    status, _, body = asgi_post("/api/v1/write", b"not snappy", headers)

    through_stack = client.post(
        "/api/v1/write",
        b"not snappy",
        content_type="application/x-protobuf",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert status == through_stack.status_code
    assert 400 <= status < 500
    assert orjson.loads(body) == through_stack.json()


def test_a_host_not_allowed_is_refused_as_by_the_full_stack(client, token):
    status, _, body = asgi_post("/api/v1/ingest", batch("web-3"), bearer(token), "evil.example")

    through_stack = client.post(
        "/api/v1/ingest",
        batch("web-3"),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "Host": "evil.example"},
    )
    assert status == through_stack.status_code == 400
    assert body == through_stack.content
    assert not Instance.objects.filter(agent_id="web-3").exists()


def test_ingest_middleware_is_the_full_stacks_in_its_order():
    dotted = [
        f"{middleware.__module__}.{middleware.__qualname__}" for middleware in INGEST_MIDDLEWARE
    ]
    full_stack = iter(settings.MIDDLEWARE)
    # Each found after the one before it: an ordered subsequence of settings.MIDDLEWARE.
    assert all(name in full_stack for name in dotted), (dotted, settings.MIDDLEWARE)


@pytest.mark.parametrize(
    ("body", "authorized", "host", "status"),
    [
        pytest.param(batch("web-4"), True, "127.0.0.1", 202, id="accepted"),
        pytest.param(b"{not json", True, "127.0.0.1", 400, id="malformed JSON"),
        pytest.param(batch("web-4"), True, "evil.example", 400, id="host not allowed"),
        pytest.param(batch("web-4"), False, "127.0.0.1", 401, id="no token"),
    ],
)
def test_answers_carry_the_full_stacks_headers(token, body, authorized, host, status):
    headers = bearer(token) if authorized else {"Content-Type": "application/json"}
    lean = asgi_post("/api/v1/ingest", body, headers, host)
    full = asgi_post("/api/v1/ingest", body, headers, host, full_stack=True)

    assert lean[0] == full[0] == status
    # The full stack's "Vary: Cookie" is the session middleware's, when a later middleware read
    # the session; an ingest answer depends on its bearer token, never on a cookie.
    full_headers = {name: value for name, value in full[1].items() if name != "vary"}
    assert full[1].get("vary", "Cookie") == "Cookie"
    assert lean[1] == full_headers
    assert lean[2] == full[2]


def test_other_requests_keep_the_full_stack(token):
    # A form post without its CSRF token: refused by the CSRF middleware, which ingest skips.
    status, headers, _ = asgi_post("/accounts/login/", b"", {})
    assert status == 403
    assert "content-security-policy" in headers


def test_each_request_gives_its_database_connection_back(token, monkeypatch):
    # As web processes run (their pool's connections close into the pool); the tests' own
    # persistent connections would be left to the garbage collector by any ASGI request.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)

    def others() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0]

    before = others()
    for n in range(20):
        status, _, _ = asgi_post("/api/v1/ingest", batch(f"db-{n}"), bearer(token))
        assert status == 202
    assert others() <= before
    assert Instance.objects.filter(agent_id__startswith="db-").count() == 20
