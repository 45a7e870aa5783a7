"""Backups against the real PostgreSQL: pg_dump, pg_restore, scratch databases, alerts.

The tests are transactional: pg_dump runs in its own session and only sees committed rows.
"""

import hashlib
import os
import secrets
import signal
import stat
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from accounts.permissions import Role
from alerts import backup_alerts
from alerts.models import Alert, AlertRule
from backups import dumps, postgres, verification
from backups.models import Backup
from bench.common import database_dsn, database_url
from instances import store
from instances.models import Instance, Series

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def backup_dir(settings, tmp_path) -> Path:
    settings.BACKUP_DIR = tmp_path / "backups"
    return settings.BACKUP_DIR


@pytest.fixture
def monitoring_data():
    """An instance with a series of 50 samples, a rule and an alert of that rule."""
    web = Instance.register("web-1", name="Web 1", type="vm", region="nyc1")
    series = Series.objects.create(instance=web, name="cpu_usage", labels={"core": "0"})
    store.write_samples([(series.pk, T0 + timedelta(seconds=i), float(i)) for i in range(50)])
    rule = AlertRule.objects.create(name="CPU high", metric="cpu_usage", critical_threshold=90)
    Alert.objects.create(
        instance=web, rule=rule, source=Alert.Source.RULE, alert_type=rule.name, message="hot"
    )
    return web


@pytest.fixture
def admin_conn():
    """A connection of the test's own to the test database, outside Django's."""
    with postgres.connect() as conn:
        yield conn


@pytest.fixture
def blocked_table(admin_conn):
    """A table held ACCESS EXCLUSIVE by another session: pg_dump waits on it (or times out)."""
    admin_conn.execute("CREATE TABLE backup_test_blocker (id int)")
    with postgres.connect(autocommit=False) as holder:
        holder.execute("LOCK TABLE backup_test_blocker IN ACCESS EXCLUSIVE MODE")
        yield holder
        holder.rollback()
    admin_conn.execute("DROP TABLE IF EXISTS backup_test_blocker")


def sha256_of(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def files_in(directory: Path) -> list[Path]:
    return list(directory.iterdir()) if directory.exists() else []


def open_backup_alerts(alert_type):
    return Alert.objects.filter(
        instance__agent_id="vigil", alert_type=alert_type, resolved_at__isnull=True
    )


def test_a_backup_writes_a_complete_archive_and_records_it(monitoring_data, backup_dir):
    backup = dumps.run_backup()

    assert backup.status == Backup.Status.SUCCEEDED, backup.error
    archive = Path(backup.path)
    assert archive.parent == backup_dir and archive.name.endswith(".dump")
    assert archive.read_bytes()[:5] == b"PGDMP"
    assert backup.size == archive.stat().st_size
    assert backup.sha256 == sha256_of(archive)
    assert list(backup_dir.iterdir()) == [archive]
    assert backup.row_counts["instances_instance"] == 1
    assert backup.row_counts["instances_series"] == 1
    assert backup.row_counts["samples"] == 50
    assert backup.row_counts["alerts_alert"] == 1
    assert backup.finished_at >= backup.started_at


def test_backup_now_prints_the_archive_path_last(monitoring_data, capsys):
    call_command("backup_now")

    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert last_line == Backup.objects.get().path
    assert Path(last_line).is_file()


def test_the_pg_dump_matching_the_server_version_is_chosen(admin_conn):
    from config import embedded

    major = postgres.server_major(admin_conn)
    chosen = postgres.client_bin_dir(major) / "pg_dump"
    version = subprocess.run([chosen, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.split()[-1].split(".")[0] == str(major)
    # The embedded server's own programs are found whatever server the suite runs on.
    assert postgres.client_bin_dir(18) == embedded.postgres_bin_dir()
    with pytest.raises(postgres.ClientProgramMissing):
        postgres.client_bin_dir(9)


def test_verification_restores_into_a_scratch_database_with_matching_counts(
    monitoring_data, admin_conn
):
    backup = dumps.run_backup()

    verified = verification.verify_latest()

    assert verified.pk == backup.pk
    assert verified.verification == Backup.Verification.PASSED, verified.verification_result
    tables = verified.verification_result["tables"]
    assert tables["samples"] == {"expected": 50, "restored": 50}
    assert tables["instances_instance"] == {"expected": 1, "restored": 1}
    assert verified.verified_at is not None
    scratch = admin_conn.execute(
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'vigil_verify_%%'"
    ).fetchone()[0]
    assert scratch == 0


def test_a_failed_verification_fires_an_alert_and_a_passing_one_resolves_it(monitoring_data):
    backup = dumps.run_backup()
    Backup.objects.filter(pk=backup.pk).update(row_counts={**backup.row_counts, "samples": 51})

    failed = verification.verify_latest()

    assert failed.verification == Backup.Verification.FAILED
    assert "samples" in failed.verification_result["error"]
    alert = open_backup_alerts(backup_alerts.BACKUP_VERIFICATION_FAILED).get()
    assert alert.severity == Alert.Severity.CRITICAL

    Backup.objects.filter(pk=backup.pk).update(row_counts=backup.row_counts)
    assert verification.verify_latest().verification == Backup.Verification.PASSED
    assert not open_backup_alerts(backup_alerts.BACKUP_VERIFICATION_FAILED).exists()


def test_a_corrupted_archive_fails_verification(monitoring_data):
    backup = dumps.run_backup()
    with open(backup.path, "r+b") as archive:
        archive.seek(100)
        archive.write(b"\x00\xff\x00\xff")

    failed = verification.verify_latest()

    assert failed.verification == Backup.Verification.FAILED
    assert "sha256" in failed.verification_result["error"]


def test_prune_deletes_old_files_and_rows_together_but_keeps_the_newest_good(settings):
    old, older, recent = (dumps.run_backup() for _ in range(3))
    Backup.objects.filter(pk=old.pk).update(started_at=timezone.now() - timedelta(days=31))
    Backup.objects.filter(pk=older.pk).update(started_at=timezone.now() - timedelta(days=40))

    assert dumps.prune() == 2

    assert list(Backup.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not Path(old.path).exists() and not Path(older.path).exists()
    assert Path(recent.path).exists()
    # Past retention but the only good one left: kept.
    Backup.objects.filter(pk=recent.pk).update(started_at=timezone.now() - timedelta(days=90))
    assert dumps.prune() == 0
    assert Path(recent.path).exists()


def held_advisory_locks(key: int) -> int:
    """Sessions holding advisory lock ``key`` (a bigint key is stored as two 32-bit halves)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND ((classid::bigint << 32) | objid::bigint) = %s",
            [key],
        )
        return cursor.fetchone()[0]


def test_a_backup_lets_go_of_its_lock_before_it_returns():
    """Closing a connection returns before its server process has let go of its locks: a
    backup started right after another was skipped as "another backup is running"."""
    assert dumps.run_backup().status == Backup.Status.SUCCEEDED
    assert held_advisory_locks(dumps.BACKUP_LOCK) == 0
    with dumps.advisory_lock(dumps.VERIFY_LOCK) as conn:
        assert conn is not None
        assert held_advisory_locks(dumps.VERIFY_LOCK) == 1
    assert held_advisory_locks(dumps.VERIFY_LOCK) == 0


def test_a_failing_pg_dump_fires_the_backup_alert_and_the_next_good_backup_resolves_it(
    settings, blocked_table, backup_dir
):
    settings.BACKUP_LOCK_WAIT_TIMEOUT_SECONDS = 1

    backup = dumps.run_backup()

    assert backup.status == Backup.Status.FAILED
    # pg_dump waits for its table locks under a statement timeout: the LOCK TABLE it ran.
    assert "timeout" in backup.error and "LOCK TABLE" in backup.error
    assert files_in(backup_dir) == []
    alert = open_backup_alerts(backup_alerts.BACKUP_FAILED).get()
    assert alert.severity == Alert.Severity.CRITICAL
    assert alert.status == Alert.Status.ACTIVE
    assert alert.instance.name == "Vigil"
    assert alert.message.startswith("Backup failed: ") and "timeout" in alert.message

    blocked_table.rollback()
    assert dumps.run_backup().status == Backup.Status.SUCCEEDED
    assert not open_backup_alerts(backup_alerts.BACKUP_FAILED).exists()
    assert Alert.objects.get(pk=alert.pk).status == Alert.Status.RESOLVED


def test_bad_credentials_fail_the_backup_and_fire_the_alert(settings, backup_dir):
    settings.DATABASES = {
        "default": {**settings.DATABASES["default"], "USER": "no_such_vigil_user"}
    }

    backup = dumps.run_backup()

    assert backup.status == Backup.Status.FAILED
    assert "no_such_vigil_user" in backup.error
    assert files_in(backup_dir) == []
    assert open_backup_alerts(backup_alerts.BACKUP_FAILED).get().severity == "critical"


def test_repeated_failures_keep_one_open_alert():
    backup_alerts.raise_problem(backup_alerts.BACKUP_FAILED, "first")
    backup_alerts.raise_problem(backup_alerts.BACKUP_FAILED, "second")

    assert open_backup_alerts(backup_alerts.BACKUP_FAILED).get().message == "second"


def test_no_good_backup_for_26_hours_fires_the_stale_alert(settings):
    backup = dumps.run_backup()
    finished = timezone.now() - timedelta(hours=27)
    Backup.objects.filter(pk=backup.pk).update(started_at=finished, finished_at=finished)

    assert dumps.check_freshness() is False

    alert = open_backup_alerts(backup_alerts.BACKUP_STALE).get()
    assert "26 hours" in alert.message
    assert dumps.run_backup().is_good
    assert dumps.check_freshness() is True
    assert not open_backup_alerts(backup_alerts.BACKUP_STALE).exists()


def test_a_worker_killed_mid_backup_leaves_no_archive_and_a_failed_row(blocked_table, backup_dir):
    env = {
        **os.environ,
        "DATABASE_URL": database_url(database_dsn(), connection.settings_dict["NAME"]),
        "BACKUP_DIR": str(backup_dir),
        "BACKUP_LOCK_WAIT_TIMEOUT_SECONDS": "0",
    }
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "backup_now"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        pg_dump = wait_for_pg_dump(worker)
        assert Backup.objects.get().status == Backup.Status.RUNNING
        # While it runs, a second backup is skipped rather than run alongside.
        assert dumps.run_backup() is None
        assert Backup.objects.count() == 1
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    # pg_dump dies with the worker rather than finishing an archive nobody will seal.
    psutil.wait_procs([pg_dump], timeout=10)
    assert not pg_dump.is_running()
    blocked_table.rollback()

    assert wait_until(lambda: dumps.cleanup_if_idle() == 1)

    backup = Backup.objects.get()
    assert backup.status == Backup.Status.FAILED
    assert "interrupted" in backup.error
    assert not Path(backup.path).exists()
    assert files_in(backup_dir) == []
    assert open_backup_alerts(backup_alerts.BACKUP_FAILED).exists()


def wait_for_pg_dump(worker) -> psutil.Process:
    """The worker's pg_dump, once it waits on the blocked table with its partial file open."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert worker.poll() is None, worker.communicate()
        children = [p for p in psutil.Process(worker.pid).children() if p.name() == "pg_dump"]
        if children and list(Path(django_settings.BACKUP_DIR).glob("*.partial")):
            return children[0]
        time.sleep(0.1)
    raise AssertionError("pg_dump never started")


def wait_until(condition, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


ROUND_TRIP_QUERIES = {
    "instances": "SELECT id, agent_id, name, type, region, metadata FROM instances_instance",
    "series": "SELECT id, instance_id, name, labels, unit FROM instances_series",
    "samples": "SELECT series_id, ts, value FROM samples",
    "rules": 'SELECT id, name, metric, critical_threshold, "window" FROM alerts_alertrule',
    "alerts": "SELECT id, instance_id, rule_id, alert_type, message, status FROM alerts_alert",
}


@contextmanager
def empty_database(admin_conn):
    """The name of a new, empty database on the test server, dropped afterwards."""
    name = f"vigil_backups_restore_{secrets.token_hex(4)}"
    admin_conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage_py(args: list[str], dbname: str, **env) -> subprocess.CompletedProcess:
    """Run ``manage.py args`` in a process of its own against database ``dbname``."""
    env = {**os.environ, **env, "DATABASE_URL": database_url(database_dsn(), dbname)}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def rows_of(dbname=None) -> dict:
    with postgres.connect(dbname) as conn:
        return {
            what: sorted(conn.execute(f"{query} ORDER BY 1, 2").fetchall(), key=repr)
            for what, query in ROUND_TRIP_QUERIES.items()
        }


def test_restore_into_an_empty_database_gives_back_the_same_data(monitoring_data, admin_conn):
    archive = dumps.run_backup().path
    before = rows_of()
    assert len(before["samples"]) == 50 and before["rules"] and before["alerts"]
    with empty_database(admin_conn) as target:
        result = manage_py(["restore", archive], target)
        assert result.returncode == 0, result.stderr

        assert rows_of(target) == before


def test_restore_refuses_a_database_with_data_unless_forced(monitoring_data):
    archive = dumps.run_backup().path
    before = rows_of()
    Instance.register("db-2", name="Added after the backup")

    with pytest.raises(CommandError, match="not empty"):
        call_command("restore", archive)
    assert Instance.objects.filter(agent_id="db-2").exists()

    call_command("restore", archive, force=True)

    assert rows_of() == before
    assert not Instance.objects.filter(agent_id="db-2").exists()


def test_the_default_schedules_are_installed_once_and_edits_are_kept():
    from django.apps import apps
    from django_celery_beat.models import PeriodicTask

    from backups.schedules import install_default_schedules

    install_default_schedules(apps)
    daily = PeriodicTask.objects.get(task="backups.run_backup")
    assert (daily.crontab.minute, daily.crontab.hour, str(daily.crontab.timezone)) == (
        "0",
        "2",
        "UTC",
    )
    daily.crontab.hour = "4"
    daily.crontab.save()

    install_default_schedules(apps)

    assert PeriodicTask.objects.get(task="backups.run_backup").crontab.hour == "4"
    assert PeriodicTask.objects.filter(task__startswith="backups.").count() == 4


def test_the_admin_lists_backups_and_lets_admins_download_them(
    client, user_with_role, confirm_password
):
    backup = dumps.run_backup()
    client.force_login(user_with_role(Role.ADMIN))
    confirm_password(client)

    page = client.get("/admin/backups/backup/")

    assert page.status_code == 200
    assert backup.file_name in page.content.decode()
    assert "Back up now" in page.content.decode()
    download = client.get(f"/admin/backups/backup/{backup.pk}/download/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == Path(backup.path).read_bytes()


def test_back_up_now_in_the_admin_makes_a_backup(client, user_with_role):
    client.force_login(user_with_role(Role.ADMIN))

    response = client.post("/admin/backups/backup/back-up-now/")

    assert response.status_code == 302
    assert Backup.objects.get().status == Backup.Status.SUCCEEDED


def test_operators_cannot_download_backups(client, user_with_role):
    backup = dumps.run_backup()
    client.force_login(user_with_role(Role.OPERATOR))

    response = client.get(f"/admin/backups/backup/{backup.pk}/download/")

    assert response.status_code in (302, 403)


def test_a_truncated_archive_restores_nothing_and_leaves_the_database_as_it_was(
    monitoring_data, tmp_path
):
    archive = Path(dumps.run_backup().path)
    truncated = tmp_path / "truncated.dump"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size * 2 // 3])
    before = rows_of()

    with pytest.raises(CommandError):
        call_command("restore", truncated, force=True)

    assert rows_of() == before


def test_a_backup_announces_its_progress_to_the_backups_group():
    import asyncio

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from backups.progress import BACKUPS_GROUP

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(BACKUPS_GROUP, channel)

    backup = dumps.run_backup()

    async def events_until_done():
        events = []
        while not events or events[-1]["state"] not in ("succeeded", "failed"):
            events.append(await asyncio.wait_for(layer.receive(channel), 5))
        return events

    events = async_to_sync(events_until_done)()
    assert [event["state"] for event in events] in (
        ["started", "succeeded"],
        ["started", *["running"] * (len(events) - 2), "succeeded"],
    )
    assert {event["backup_id"] for event in events} == {backup.pk}
    assert events[-1]["bytes"] == backup.size


def test_archives_are_owner_only_in_an_owner_only_directory(monitoring_data, backup_dir):
    backup_dir.mkdir(mode=0o755)
    os.chmod(backup_dir, 0o755)
    previous_umask = os.umask(0o022)
    try:
        backup = dumps.run_backup()
    finally:
        os.umask(previous_umask)

    assert backup.status == Backup.Status.SUCCEEDED, backup.error
    assert stat.S_IMODE(backup_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(backup.path).stat().st_mode) == 0o600


def test_a_restored_database_has_no_sessions_and_everybody_signs_in_again(
    monitoring_data, client, user_with_role, admin_conn
):
    client.force_login(user_with_role(Role.ADMIN))
    assert admin_conn.execute("SELECT count(*) FROM django_session").fetchone()[0] == 1
    archive = dumps.run_backup().path
    with empty_database(admin_conn) as target:
        result = manage_py(["restore", archive], target)
        assert result.returncode == 0, result.stderr

        with postgres.connect(target) as restored:
            sessions = restored.execute("SELECT count(*) FROM django_session").fetchone()[0]
            users = restored.execute("SELECT count(*) FROM auth_user").fetchone()[0]
        assert (sessions, users) == (0, 1)
