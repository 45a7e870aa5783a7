"""Notification links lead back to the Vigil people use: VIGIL_BASE_URL follows `make run`'s
PORT when unset, and the alert page and /readyz say so when it does not match the browser's."""

import os

import pytest
from django.conf import settings

from alerts.models import Alert
from config.celery import heartbeat
from instances.models import Instance
from tests.test_settings import REPO_ROOT, last_line_printed

pytestmark = pytest.mark.django_db


def base_url_with(environment: dict) -> str:
    """settings.VIGIL_BASE_URL as a process started with ``environment`` sees it."""
    env = {**os.environ, "REDIS_URL": os.environ.get("REDIS_URL", "") or settings.REDIS_URL}
    env.pop("VIGIL_BASE_URL", None)
    env.update(environment)
    script = (
        "import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); "
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.VIGIL_BASE_URL)"
    )
    return last_line_printed(script, env)


def test_the_base_url_follows_the_port_make_run_serves_on():
    assert base_url_with({"VIGIL_PORT": "8300"}) == "http://127.0.0.1:8300"


def test_a_configured_base_url_wins_over_the_port():
    configured = {"VIGIL_PORT": "8300", "VIGIL_BASE_URL": "https://vigil.example.com/"}
    assert base_url_with(configured) == "https://vigil.example.com"


def test_make_run_hands_its_port_to_every_process():
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "VIGIL_PORT=$(PORT) $(VENV)/bin/honcho start" in makefile


def test_readyz_warns_when_the_base_url_is_not_the_address_used(client, settings):
    settings.VIGIL_BASE_URL = "http://127.0.0.1:8000"
    heartbeat.delay()

    response = client.get("/readyz", HTTP_HOST="127.0.0.1:8300")

    assert response.status_code == 200
    (warning,) = response.json()["warnings"]
    assert "http://127.0.0.1:8000" in warning and "http://127.0.0.1:8300" in warning


def test_readyz_has_no_warning_when_the_base_url_matches(client, settings):
    settings.VIGIL_BASE_URL = "http://127.0.0.1:8300"
    heartbeat.delay()

    response = client.get("/readyz", HTTP_HOST="127.0.0.1:8300")

    assert "warnings" not in response.json()


def test_the_alert_page_warns_when_links_would_point_elsewhere(admin_client, settings):
    instance = Instance.objects.create(agent_id="web-1", name="Web 1")
    alert = Alert.objects.create(instance=instance, alert_type="Disk full", severity="warning")
    settings.VIGIL_BASE_URL = "http://127.0.0.1:8000"

    warned = admin_client.get(alert.get_absolute_url(), HTTP_HOST="127.0.0.1:8300")
    settings.VIGIL_BASE_URL = "http://127.0.0.1:8300"
    matched = admin_client.get(alert.get_absolute_url(), HTTP_HOST="127.0.0.1:8300")

    assert "Links in notifications start with http://127.0.0.1:8000" in warned.text
    assert "Links in notifications" not in matched.text
