import os
import uuid

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app
from ingestion.models import IngestToken
from tests.prometheus_services import needs_victoriametrics, victoriametrics


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With VIGIL_FAIL_ON_SKIP set (CI, where every Debian package is installed), a skipped
    test fails: it means an install step is missing, not that the test may be left out."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("VIGIL_FAIL_ON_SKIP"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped where every test must run (a missing install step?): {reason}"


@pytest.fixture(autouse=True)
def isolated_redis_keys(settings):
    """Each test gets its own cache key prefix, so counters and idempotency keys never leak."""
    caches = {name: dict(config) for name, config in settings.CACHES.items()}
    caches["default"]["KEY_PREFIX"] = f"vigil-test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = caches


@pytest.fixture(autouse=True)
def empty_samples_table(request):
    """The samples table is not a Django model, so Django's per-test flush does not empty it."""
    yield
    marker = request.node.get_closest_marker("django_db")
    transactional = marker is not None and marker.kwargs.get("transaction", False)
    if transactional or {"transactional_db", "live_server"} & set(request.fixturenames):
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE samples, sample_blocks, staleness_markers")


@pytest.fixture(autouse=True, scope="session")
def static_files_without_manifest():
    """Tests do not run collectstatic: serve static files straight from the finders."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True


@pytest.fixture(autouse=True, scope="session")
def checks_may_probe_loopback():
    """Checks' tests probe servers they start on 127.0.0.1, as CHECKS_ALLOW_PRIVATE=1 allows."""
    settings.CHECKS_ALLOW_PRIVATE = True


@pytest.fixture(autouse=True, scope="session")
def isolated_channel_layer():
    """Test runs sharing a Redis must not hear each other's websocket groups."""
    from channels.layers import channel_layers

    layers = {name: dict(config) for name, config in settings.CHANNEL_LAYERS.items()}
    layers["default"]["CONFIG"] = {
        **layers["default"]["CONFIG"],
        "prefix": f"vigil-test-{uuid.uuid4().hex[:12]}:ws",
    }
    settings.CHANNEL_LAYERS = layers
    channel_layers.backends = {}


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """A channel layer binds its locks to the event loop that first used it; each test gets
    a new instance so one test's loop never leaks into the next."""
    from channels.layers import channel_layers

    from instances.events import wait_for_publishes

    channel_layers.backends = {}
    yield
    # A test's last announcements are out before the next test listens.
    wait_for_publishes()
    channel_layers.backends = {}


@pytest.fixture(autouse=True, scope="session")
def eager_celery():
    """Celery tasks run in-process, for real, when a test triggers them."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True


@pytest.fixture
def token(db) -> str:
    """The plain value of a token with every scope (ingest, read, manage)."""
    return IngestToken.issue("test agent", IngestToken.Scope.values)[1]


@pytest.fixture
def read_token(db) -> str:
    return IngestToken.issue("dashboard reader", [IngestToken.Scope.READ])[1]


@pytest.fixture
def api(client, token):
    """POST/GET/PUT/DELETE JSON to the API with a bearer token."""
    return ApiClient(client, token)


class ApiClient:
    def __init__(self, client, token: str):
        self.client, self.token = client, token

    def _headers(self, headers):
        return {"Authorization": f"Bearer {self.token}", **(headers or {})}

    def get(self, path: str, params=None, headers=None):
        return self.client.get(path, params or {}, headers=self._headers(headers))

    def post(self, path: str, body, headers=None, content_type="application/json"):
        return self.client.post(
            path, body, content_type=content_type, headers=self._headers(headers)
        )

    def put(self, path: str, body, headers=None):
        return self.client.put(
            path, body, content_type="application/json", headers=self._headers(headers)
        )

    def delete(self, path: str, headers=None):
        return self.client.delete(path, headers=self._headers(headers))


@pytest.fixture
def user_with_role(django_user_model):
    """Make a user holding one role (accounts.permissions.Role, or None for no role)."""
    from accounts.permissions import set_role

    def make(role, username=None, password="correct horse battery staple"):
        name = username or (role.value if role else "nobody")
        user = django_user_model.objects.create_user(
            name, email=f"{name}@example.com", password=password
        )
        set_role(user, role)
        return user

    return make


@pytest.fixture
def http_target():
    """An HTTP server on 127.0.0.1 that checks probe (tests/check_targets.py)."""
    from tests.check_targets import HttpTarget

    target = HttpTarget()
    yield target
    target.stop()


@pytest.fixture(params=["postgres", pytest.param("victoriametrics", marks=needs_victoriametrics)])
def each_samples_engine(request, settings, tmp_path):
    """Each samples engine in turn, as (name, the VictoriaMetrics started for its run or None):
    a test taking it runs once per engine."""
    if request.param == "postgres":
        yield request.param, None
        return
    with victoriametrics(tmp_path) as server:
        settings.METRICS_ENGINE = "victoriametrics"
        settings.VM_WRITE_URL = settings.VM_QUERY_URL = server.url
        yield request.param, server


@pytest.fixture
def confirm_password():
    """Confirm a logged-in client's password, as allauth asks for before what would hand over
    the keys to a stolen session (tokens, roles, backup downloads)."""
    from django.urls import reverse

    def confirm(client, password="correct horse battery staple"):
        response = client.post(reverse("account_reauthenticate"), {"password": password})
        assert response.status_code == 302, response.content.decode()[:2000]

    return confirm
