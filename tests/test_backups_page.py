"""The Admins' backups page and its websocket: real pg_dump, Celery (eager), Redis channel layer.

The tests are transactional: pg_dump runs in its own session and only sees committed rows.
"""

import asyncio
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import Client

from accounts.permissions import Role
from backups import dumps, progress, tasks
from backups.models import Backup
from tests.test_dashboard_live import receive_all, session_cookie_of, socket

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def backup_dir(settings, tmp_path) -> Path:
    settings.BACKUP_DIR = tmp_path / "backups"
    return settings.BACKUP_DIR


@pytest.fixture
def admin_client(client, user_with_role, confirm_password):
    client.force_login(user_with_role(Role.ADMIN, "ada"))
    confirm_password(client)
    return client


@pytest.fixture
def admin_cookie(user_with_role) -> bytes:
    return session_cookie_of(Client(), user_with_role(Role.ADMIN, "ada"))


async def receive_until(communicator, text, timeout=30.0) -> list[str]:
    """Messages the socket gets until one contains ``text``."""
    messages = []
    async with asyncio.timeout(timeout):
        while not messages or text not in messages[-1]:
            messages.append(await communicator.receive_from(timeout=timeout))
    return messages


def test_the_page_lists_backups_for_admins(admin_client):
    good = dumps.run_backup()
    page = admin_client.get("/backups/")

    html = page.content.decode()
    assert page.status_code == 200
    assert f'<tr id="backup-{good.pk}" class="backup-row">' in html
    assert '<span class="badge backup-succeeded">Succeeded</span>' in html
    assert f'<code title="{good.sha256}">{good.sha256[:12]}</code>' in html
    assert f'href="/backups/{good.pk}/download"' in html
    assert 'ws-connect="/ws/backups/"' in html
    assert '<a href="/backups/" aria-current="page">Backups</a>' in html


def test_the_download_link_gives_admins_the_archive(admin_client):
    good = dumps.run_backup()

    download = admin_client.get(f"/backups/{good.pk}/download")

    assert download.status_code == 200
    assert b"".join(download.streaming_content) == Path(good.path).read_bytes()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_viewers_and_operators_are_refused(client, user_with_role, role):
    good = dumps.run_backup()
    client.force_login(user_with_role(role))

    responses = [
        client.get("/backups/"),
        client.post("/backups/back-up-now"),
        client.get(f"/backups/{good.pk}/download"),
    ]

    assert [response.status_code for response in responses] == [403, 403, 403]
    assert Backup.objects.count() == 1
    assert "/backups/" not in client.get("/").content.decode()


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get("/backups/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_back_up_now_runs_a_manual_backup_and_answers_with_its_row(admin_client, backup_dir):
    response = admin_client.post("/backups/back-up-now", headers=HTMX)

    backup = Backup.objects.get()
    html = response.content.decode()
    assert response.status_code == 200
    assert (backup.kind, backup.status) == (Backup.Kind.MANUAL, Backup.Status.SUCCEEDED)
    assert Path(backup.path).parent == backup_dir and Path(backup.path).is_file()
    assert '<table id="backups-table" hx-swap-oob="true">' in html
    assert f'<tr id="backup-{backup.pk}" class="backup-row">' in html
    assert 'id="backup-progress" class="panel backup-progress progress-succeeded"' in html


def test_back_up_now_without_htmx_redirects_to_the_page(admin_client):
    response = admin_client.post("/backups/back-up-now")

    assert response.status_code == 302 and response["Location"] == "/backups/"
    assert Backup.objects.get().status == Backup.Status.SUCCEEDED


def test_the_polling_fallback_gets_the_fragments_the_socket_pushes(admin_client):
    good = dumps.run_backup()

    response = admin_client.get("/backups/", headers={**HTMX, "HX-Target": "backups-poll"})

    html = response.content.decode()
    assert "<html" not in html
    assert '<section id="backup-progress"' in html and 'hx-swap-oob="true"' in html
    assert f'<tr id="backup-{good.pk}" class="backup-row">' in html


@pytest.mark.parametrize(
    ("role", "code"), [(None, 4401), (Role.VIEWER, 4403), (Role.OPERATOR, 4403)]
)
def test_the_backups_socket_refuses_all_but_admins(user_with_role, role, code):
    cookie = session_cookie_of(Client(), user_with_role(role)) if role else None

    async def scenario():
        communicator = socket("/ws/backups/", cookie)
        refused = await communicator.connect()
        # Stops the consumer's channel-layer receive, which must not outlive this event loop.
        await communicator.disconnect()
        return refused

    assert async_to_sync(scenario)() == (False, code)


def test_a_backup_run_reaches_the_admin_socket_as_fragments(admin_cookie):
    async def scenario():
        communicator = socket("/ws/backups/", admin_cookie)
        assert (await communicator.connect())[0]
        await sync_to_async(tasks.run_backup.delay)(Backup.Kind.MANUAL)
        messages = await receive_until(communicator, "progress-succeeded")
        await communicator.disconnect()
        return messages

    messages = async_to_sync(scenario)()
    backup = Backup.objects.get()
    started, finished = messages[0], messages[-1]
    assert 'class="panel backup-progress progress-started"' in started
    assert f"<code>{backup.file_name}</code>" in started
    assert '<table id="backups-table" hx-swap-oob="true">' in started
    # The list is rendered from the database when pushed: the row is there, in whatever state.
    assert f'<tr id="backup-{backup.pk}" class="backup-row">' in started
    assert 'hx-swap-oob="true"' in finished and "Last backup succeeded" in finished
    assert f'<tr id="backup-{backup.pk}" class="backup-row">' in finished
    assert '<span class="badge backup-succeeded">Succeeded</span>' in finished


def test_bytes_written_are_pushed_human_readable_at_most_once_a_second(admin_cookie):
    backup = Backup.objects.create(kind=Backup.Kind.MANUAL, path="/nowhere/vigil-x.dump")

    async def scenario():
        communicator = socket("/ws/backups/", admin_cookie)
        assert (await communicator.connect())[0]
        for written in (12_345_678, 12_500_000, 13_000_000):
            await sync_to_async(progress.publish)(backup, "running", bytes=written)
        messages = await receive_all(communicator, 1.0)
        await communicator.disconnect()
        return messages

    [pushed] = async_to_sync(scenario)()
    assert '<section id="backup-progress" class="panel backup-progress progress-running"' in pushed
    assert '<span class="num">11.8\xa0MB</span> written' in pushed
    assert "backups-table" not in pushed  # the list has not changed


def test_a_run_skipped_while_another_runs_is_reported(admin_cookie):
    async def scenario():
        communicator = socket("/ws/backups/", admin_cookie)
        assert (await communicator.connect())[0]
        await sync_to_async(progress.publish)(None, "skipped", message="another backup is running")
        html = await communicator.receive_from(timeout=5)
        await communicator.disconnect()
        return html

    html = async_to_sync(scenario)()
    assert "progress-skipped" in html and "another backup is running" in html
