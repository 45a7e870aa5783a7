"""What `make run` prints: a banner that ends start-up, one line for a refused request, and no
warning for a browser's /favicon.ico. (`python -m bench.idle_console` counts the idle lines.)"""

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.permissions import Role
from config.celery import heartbeat
from config.management.commands import startup_banner

pytestmark = pytest.mark.django_db


@pytest.fixture
def web_server():
    """A stand-in for `make run`'s web process: /healthz fails twice (still starting), then
    answers 200."""
    healthz_answers = [503, 503]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status = 404
            if self.path == "/healthz":
                status = healthz_answers.pop(0) if healthz_answers else 200
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.healthz_answers = healthz_answers
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def worker_heartbeat():
    """A Celery worker has beaten: the rest of what /readyz checks is this suite's own
    PostgreSQL and Redis."""
    heartbeat.delay()


@pytest.fixture
def password_file(tmp_path, monkeypatch):
    """Where bootstrap leaves a generated password, in a scratch directory, not the checkout's
    var/."""
    path = tmp_path / "admin-password"
    monkeypatch.setattr(startup_banner, "ADMIN_PASSWORD_FILE", path)
    return path


def banner(url: str) -> str:
    out = StringIO()
    call_command("startup_banner", url=url, stdout=out)
    return out.getvalue()


def url_of(server) -> str:
    return f"http://127.0.0.1:{server.server_port}"


def test_the_banner_waits_for_the_web_server_then_shows_the_address_and_a_new_password_once(
    web_server, password_file, monkeypatch
):
    monkeypatch.delenv("VIGIL_ADMIN_PASSWORD", raising=False)
    password_file.write_text("generated-pw-123\n")

    first, second = banner(url_of(web_server)), banner(url_of(web_server))

    assert web_server.healthz_answers == []
    assert f"Vigil is running at {url_of(web_server)}" in first
    assert "Log in as 'admin' with the password generated-pw-123" in first
    assert "Ctrl-C stops everything" in first
    assert "generated-pw-123" not in second
    assert "manage.py changepassword admin" in second
    assert len(first.splitlines()) == 6
    assert max(len(line) for line in first.splitlines()) <= 80


def test_the_banner_names_the_variable_a_chosen_password_came_from(
    web_server, password_file, monkeypatch
):
    monkeypatch.setenv("VIGIL_ADMIN_PASSWORD", "chosen")
    monkeypatch.setenv("VIGIL_ADMIN_USERNAME", "root")

    text = banner(url_of(web_server))

    assert "Log in as 'root' with the password in VIGIL_ADMIN_PASSWORD" in text
    assert "chosen" not in text


def test_a_refused_request_is_one_info_line(client, user_with_role, caplog):
    client.force_login(user_with_role(Role.VIEWER))

    with caplog.at_level(logging.INFO, logger="django.request"):
        response = client.get("/rules/new/")

    assert response.status_code == 403
    (record,) = [record for record in caplog.records if record.name == "django.request"]
    assert (record.levelname, record.exc_info) == ("INFO", None)
    assert logging.Formatter().format(record) == "Forbidden (Permission denied): /rules/new/"


def test_the_browsers_favicon_request_finds_the_icon(client, caplog):
    with caplog.at_level(logging.INFO, logger="django.request"):
        response = client.get("/favicon.ico")

    assert response.status_code == 301
    assert response["Location"].endswith("img/favicon.svg")
    assert [record for record in caplog.records if record.name == "django.request"] == []


def test_create_ingest_token_prints_its_note_plainly_and_the_token_last():
    out, err = StringIO(), StringIO()

    call_command("create_ingest_token", "--name", "web-1", stdout=out, stderr=err)

    note, token = out.getvalue().splitlines()
    assert note.startswith("Created token vgl_") and "'web-1'" in note
    assert token.startswith("vgl_") and err.getvalue() == ""
    assert "\x1b[" not in out.getvalue()
