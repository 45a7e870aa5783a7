"""The statement timeout per role of process: a web request whose statement runs past it
answers cleanly (422 for a read, 503 for a write, Prometheus's own timeout error) instead of
holding a connection; a Celery worker gets its own longer limit, commands none."""

import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import contextmanager

import orjson
import psycopg
import pytest
from django.db import connection

from bench.common import ROOT, database_dsn, database_url, production_env, web_server
from ingestion.models import IngestToken

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def env(settings) -> dict[str, str]:
    return production_env(
        DATABASE_URL=database_url(database_dsn(), connection.settings_dict["NAME"]),
        REDIS_URL=settings.REDIS_URL,
        DATABASE_STATEMENT_TIMEOUT_WEB="1",
    )


@contextmanager
def tables_locked(*tables: str):
    """Another session holds these tables exclusively, so any statement on them waits."""
    with psycopg.connect(database_dsn()) as holder:
        holder.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
        yield
        holder.rollback()


def call(url: str, token: str, body: bytes | None = None) -> tuple[int, dict, bytes]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=60) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def test_statements_past_the_web_timeout_answer_422_for_reads_and_503_for_writes(env):
    token = IngestToken.issue("agent", IngestToken.Scope.values)[1]
    batch = orjson.dumps(
        {"instance": {"agent_id": "web-1"}, "samples": [{"name": "cpu", "value": 1}]}
    )

    with web_server(workers=1, env=env) as (url, _):
        with tables_locked("instances_instance", "instances_series"):
            read = call(f"{url}/api/v1/instances", token)
            write = call(f"{url}/api/v1/ingest", token, batch)
            promql = call(f"{url}/prometheus/api/v1/query?query=cpu", token)
        after = call(f"{url}/api/v1/instances", token)

    assert read[0] == 422 and "ran longer than 1 s" in orjson.loads(read[2])["error"]
    assert write[0] == 503 and "waited longer than 1 s" in orjson.loads(write[2])["error"]
    assert write[1]["retry-after"]
    assert promql[0] == 503 and orjson.loads(promql[2])["errorType"] == "timeout"
    assert after[0] == 200


@pytest.mark.parametrize(
    "program, expected", [("celery", "5min"), ("manage.py", "0")], ids=["worker", "command"]
)
def test_a_worker_gets_its_own_timeout_and_a_command_none(env, program, expected):
    script = (
        f"import sys; sys.argv[0] = {program!r}; import django; django.setup(); "
        "from django.db import connection; cursor = connection.cursor(); "
        "cursor.execute('SHOW statement_timeout'); print(cursor.fetchone()[0])"
    )
    shown = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    assert shown.stdout.strip().splitlines()[-1] == expected
