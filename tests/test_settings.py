import json
import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

from django.conf import settings

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_production_settings_pass_the_deploy_check():
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    production = {
        "DEBUG": "0",
        "SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(50)),
        "ALLOWED_HOSTS": "vigil.example.com",
        "HTTPS": "1",
        "DATABASE_URL": os.environ.get("DATABASE_URL", ""),
        "REDIS_URL": os.environ.get("REDIS_URL", "") or settings.REDIS_URL,
    }

    check = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env={**os.environ, **production},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert check.returncode == 0, check.stdout + check.stderr


def database_settings_of(module: str) -> dict:
    """DATABASES["default"] as a process that imports ``module`` first sees it."""
    script = (
        f"import os, json; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); "
        f"import {module}; from django.conf import settings; "
        "db = settings.DATABASES['default']; "
        "print(json.dumps({'pool': db.get('OPTIONS', {}).get('pool'), 'age': db['CONN_MAX_AGE']}))"
    )
    env = {**os.environ, "REDIS_URL": os.environ.get("REDIS_URL", "") or settings.REDIS_URL}
    env.pop("DATABASE_POOL", None)
    return json.loads(last_line_printed(script, env))


def last_line_printed(script: str, env: dict) -> str:
    """The last line a fresh Python process printed, running ``script`` in the checkout."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_web_processes_borrow_connections_from_a_pool_and_others_keep_theirs():
    # Under ASGI every request has a thread of its own: persistent connections would mean a new
    # connection per request.
    web = database_settings_of("config.asgi")
    assert web["age"] == 0
    assert web["pool"]["max_size"] == 10

    worker = database_settings_of("config.celery")
    assert worker["pool"] is None
    assert worker["age"] == 60
