"""What an attacker finds on a default install: no publicly known signing key, no pickles in
the cache, no password-less Redis, no short passwords, no sessions that last for weeks."""

import os
import pickle
import signal
import stat
import subprocess
import sys
from contextlib import suppress
from pathlib import Path

import pytest
import redis
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from accounts.permissions import Role
from config import embedded
from config.celery import HEARTBEAT_KEY
from config.local_secrets import local_secret

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_the_publicly_known_development_key_is_refused_outside_debug():
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "django-insecure-vigil-development-only-key-change-me",
    }
    check = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert check.returncode != 0
    assert "SECRET_KEY is a publicly known development key" in check.stderr


def test_without_a_secret_key_each_checkout_generates_its_own_kept_owner_only(tmp_path):
    first = local_secret("secret-key", tmp_path)

    assert len(first) >= 50
    assert stat.S_IMODE((tmp_path / "secret-key").stat().st_mode) == 0o600
    assert local_secret("secret-key", tmp_path) == first
    assert local_secret("secret-key", tmp_path / "another-checkout") != first


class PlantedPickle:
    """Unpickling this creates a file: proof that code planted in Redis ran."""

    def __init__(self, proof: Path):
        self.proof = proof

    def __reduce__(self):
        return (Path.touch, (self.proof,))


@pytest.mark.django_db
def test_a_pickle_planted_in_redis_is_not_run_by_readyz(client, settings, tmp_path):
    proof = tmp_path / "pickle-ran"
    planted = redis.Redis.from_url(settings.REDIS_URL)
    planted.set(cache.make_and_validate_key(HEARTBEAT_KEY), pickle.dumps(PlantedPickle(proof)))

    response = client.get("/readyz")

    assert not proof.exists()
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] != "ok"


@pytest.mark.django_db
def test_the_cache_keeps_what_vigil_stores_in_it(settings):
    cache.set("answer", {"accepted": 3, "at": 1.5})
    cache.add("hits", 0)
    cache.incr("hits")

    assert cache.get("answer") == {"accepted": 3, "at": 1.5}
    assert cache.get("hits") == 1
    stored = redis.Redis.from_url(settings.REDIS_URL).get(cache.make_and_validate_key("answer"))
    assert stored == b'{"accepted": 3, "at": 1.5}'


@pytest.fixture
def embedded_redis_dir(tmp_path):
    yield tmp_path
    with suppress(FileNotFoundError, ProcessLookupError, ValueError):
        os.kill(int((tmp_path / "redis" / "redis.pid").read_text()), signal.SIGTERM)


def test_the_embedded_redis_asks_for_a_password_kept_owner_only(embedded_redis_dir):
    url = embedded.redis_url(embedded_redis_dir)

    password_file = embedded_redis_dir / "redis-password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = password_file.read_text().strip()
    assert len(password) >= 32
    port = int((embedded_redis_dir / "redis" / "port").read_text())
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port).ping()
    assert redis.Redis.from_url(url).ping()
    assert embedded.redis_url(embedded_redis_dir) == url


@pytest.mark.django_db
def test_a_password_shorter_than_twelve_characters_or_a_common_one_is_refused(
    client, user_with_role
):
    client.force_login(user_with_role(Role.ADMIN, "boss"))
    users = reverse("accounts:users")

    short = client.post(users, {"username": "olga", "role": "viewer", "password": "Xq7#vLp2!zR"})
    common = client.post(users, {"username": "olga", "role": "viewer", "password": "password1234"})

    assert "This password is too short. It must contain at least 12 characters." in short.text
    assert "This password is too common." in common.text


@pytest.mark.django_db
def test_a_session_lasts_twelve_hours_from_the_last_request(client, user_with_role):
    from django.contrib.sessions.models import Session

    user_with_role(Role.VIEWER, "vera")
    client.post(
        reverse("account_login"), {"login": "vera", "password": "correct horse battery staple"}
    )
    session = Session.objects.get(session_key=client.session.session_key)
    hours_left = (session.expire_date - timezone.now()).total_seconds() / 3600
    assert 11.9 < hours_left <= 12
    # An hour-old-looking session is pushed back to twelve hours by the next request.
    Session.objects.filter(pk=session.pk).update(
        expire_date=timezone.now() + timezone.timedelta(hours=1)
    )

    assert client.get("/").status_code == 200

    session.refresh_from_db()
    assert (session.expire_date - timezone.now()).total_seconds() / 3600 > 11.9
