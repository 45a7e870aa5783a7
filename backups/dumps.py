"""Backup runs: ``pg_dump -Fc`` of Vigil's database into BACKUP_DIR, one at a time.

A run holds a PostgreSQL advisory lock on a connection of its own for its whole life, so a
second run at the same time is skipped, and a run whose process dies releases the lock with
its connection. Whoever takes the lock next knows that every ``running`` row left behind is
dead: it marks them failed and deletes their ``.partial`` files.

The archive is written as ``<name>.dump.partial``, fsynced, hashed, renamed to its final name
and the directory fsynced: a file with the final name is always complete. The row counts of
the main tables are counted in the very snapshot pg_dump dumps (``pg_export_snapshot``), so
restore verification can compare them exactly.

Archives hold password hashes and secrets: BACKUP_DIR is kept 0700 and every archive is created
0600 before pg_dump writes into it. Sessions are left out (their table is dumped empty), so a
restored database signs everybody out instead of reviving whoever was signed in at dump time.
"""

import hashlib
import logging
import os
import subprocess
import tempfile
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from backups import offsite, postgres, progress, signals
from backups.models import Backup

logger = logging.getLogger(__name__)

# Tables whose row counts a backup records and a restore must give back.
MAIN_TABLES = (
    "instances_instance",
    "instances_series",
    "samples",
    "sample_blocks",
    "alerts_alertrule",
    "alerts_alert",
    "alerts_silence",
    "alerts_notificationchannel",
    "alerts_notification",
    "ingestion_ingesttoken",
    "accounts_auditevent",
    "auth_user",
)
# Advisory lock keys (any fixed bigints, unique to this purpose).
BACKUP_LOCK = 0x76_69_67_69_6C_62_6B_01
VERIFY_LOCK = 0x76_69_67_69_6C_62_6B_02
# Tables dumped without their rows: live sessions must not outlive a restore.
EXCLUDED_TABLE_DATA = ("django_session",)
ARCHIVE_MODE = 0o600
DIRECTORY_MODE = 0o700
# How often a running backup reports the archive's size.
PROGRESS_INTERVAL_SECONDS = 0.5
# A scheduled run is skipped if a good backup is this recent (a doubled beat, a redelivery).
SCHEDULED_DEDUPE = timedelta(hours=1)


class BackupError(RuntimeError):
    pass


def try_lock(conn: psycopg.Connection, key: int) -> bool:
    """Take advisory lock ``key`` for the life of ``conn``'s session, if nobody holds it."""
    return conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]


@contextmanager
def held(conn: psycopg.Connection, key: int):
    """Release ``key`` explicitly at the end: closing the connection returns before its server
    process has exited and let go, so a backup started right after one could find it still held
    and be skipped. A broken connection lets go as its server process ends."""
    try:
        yield
    finally:
        with suppress(psycopg.Error):
            conn.execute("SELECT pg_advisory_unlock(%s)", [key])


@contextmanager
def advisory_lock(key: int):
    """A connection of its own holding ``key``, or None if someone else holds it."""
    with postgres.connect() as conn:
        if not try_lock(conn, key):
            yield None
            return
        with held(conn, key):
            yield conn


def run_backup(kind: str = Backup.Kind.MANUAL) -> Backup | None:
    """Dump the database now. Returns the Backup row (succeeded or failed), or None when
    skipped because another backup is running (or, for a scheduled run, one just succeeded)."""
    try:
        conn = postgres.connect()
    except psycopg.Error as error:
        return _failed_to_start(kind, f"cannot connect to the database: {error}".strip())
    with conn:
        if not try_lock(conn, BACKUP_LOCK):
            logger.info("backup skipped: another backup is running")
            progress.publish(None, "skipped", message="another backup is running")
            return None
        with held(conn, BACKUP_LOCK):
            cleanup_interrupted()
            if kind == Backup.Kind.SCHEDULED and _recent_good_backup():
                logger.info("scheduled backup skipped: a good backup is less than an hour old")
                return None
            return _dump(conn, kind)


def _recent_good_backup() -> bool:
    since = timezone.now() - SCHEDULED_DEDUPE
    return Backup.objects.filter(status=Backup.Status.SUCCEEDED, started_at__gte=since).exists()


def _failed_to_start(kind: str, error: str) -> Backup:
    backup = Backup.objects.create(kind=kind, status=Backup.Status.RUNNING)
    _fail(backup, error)
    return backup


def _dump(conn: psycopg.Connection, kind: str) -> Backup:
    backup_dir = Path(settings.BACKUP_DIR)
    # The snapshot is taken before the row exists: an archive never holds its own running row.
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
    except psycopg.Error as error:
        return _failed_to_start(kind, f"cannot take a snapshot: {error}".strip())
    backup = Backup.objects.create(kind=kind)
    stamp = backup.started_at.strftime("%Y%m%dT%H%M%SZ")
    backup.path = str(backup_dir / f"vigil-{stamp}-{backup.pk}.dump")
    backup.save(update_fields=["path"])
    progress.publish(backup, "started")
    signals.run_started.send_robust(Backup, backup=backup)
    try:
        backup.row_counts = postgres.count_rows(conn, MAIN_TABLES)
        backup.save(update_fields=["row_counts"])
        prepare_directory(backup_dir)
        pg_dump = postgres.client_bin_dir(postgres.server_major(conn)) / "pg_dump"
        _write_archive(backup, pg_dump, snapshot)
        conn.execute("COMMIT")
        size, sha256 = _seal(Path(backup.partial_path), Path(backup.path))
    except Exception as error:
        _remove(backup.partial_path)
        _fail(backup, _describe(error))
        return backup
    backup.record_success(size, sha256)
    logger.info("backup %s written: %s (%s bytes)", backup.pk, backup.path, size)
    offsite.upload(backup)
    progress.publish(backup, "succeeded", bytes=size)
    signals.run_ended.send_robust(Backup, backup=backup, error=None)
    signals.backup_succeeded.send_robust(
        Backup, backup=backup, message=f"Backup {backup.file_name} succeeded"
    )
    return backup


def prepare_directory(directory: Path) -> None:
    """Create BACKUP_DIR if needed and make it (an older, wider one too) owner-only."""
    directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    os.chmod(directory, DIRECTORY_MODE)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (whatever the umask); writers opening it later keep
    that mode."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, ARCHIVE_MODE))
    os.chmod(path, ARCHIVE_MODE)


def _write_archive(backup: Backup, pg_dump: Path, snapshot: str) -> None:
    """Run pg_dump into the partial file, reporting its growing size."""
    create_private_file(Path(backup.partial_path))
    args = ["--format=custom", "--no-password", f"--snapshot={snapshot}"]
    args += [f"--exclude-table-data={table}" for table in EXCLUDED_TABLE_DATA]
    args += [f"--file={backup.partial_path}"]
    if settings.BACKUP_LOCK_WAIT_TIMEOUT_SECONDS:
        args.append(f"--lock-wait-timeout={settings.BACKUP_LOCK_WAIT_TIMEOUT_SECONDS}s")
    with tempfile.TemporaryFile() as stderr:
        process = postgres.start(pg_dump, args, None, stderr)
        try:
            while True:
                try:
                    process.wait(PROGRESS_INTERVAL_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    progress.publish(backup, "running", bytes=_size(backup.partial_path))
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if process.returncode != 0:
            stderr.seek(0)
            message = stderr.read().decode(errors="replace").strip()
            raise BackupError(message or f"pg_dump exited with status {process.returncode}")


def _seal(partial: Path, final: Path) -> tuple[int, str]:
    """fsync, hash and atomically rename the archive; returns (size, sha256)."""
    digest = hashlib.sha256()
    with open(partial, "rb") as archive:
        os.fsync(archive.fileno())
        while chunk := archive.read(1 << 20):
            digest.update(chunk)
    size = partial.stat().st_size
    os.replace(partial, final)
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return size, digest.hexdigest()


def _fail(backup: Backup, error: str) -> None:
    backup.record_failure(error)
    logger.error("backup %s failed: %s", backup.pk, error)
    progress.publish(backup, "failed", message=error)
    signals.backup_failed.send_robust(
        Backup, backup=backup, message=f"Backup failed: {error}"[:1000]
    )
    signals.run_ended.send_robust(Backup, backup=backup, error=error)


def _describe(error: Exception) -> str:
    if isinstance(error, BackupError | postgres.ClientProgramMissing):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _remove(path: str) -> None:
    # Not a directory: BACKUP_DIR is under a file, so there is nothing to remove either.
    with suppress(FileNotFoundError, NotADirectoryError):
        os.remove(path)


def cleanup_interrupted() -> int:
    """Mark the ``running`` rows of dead runs failed and delete their partial files.

    Only call it holding the backup lock: then no run is alive, so every running row is dead.
    """
    dead = list(Backup.objects.filter(status=Backup.Status.RUNNING))
    for backup in dead:
        if backup.path:
            _remove(backup.partial_path)
        _fail(backup, "interrupted: the process running this backup died")
    return len(dead)


def cleanup_if_idle() -> int:
    """Clean up after dead runs, unless a backup is running right now."""
    with advisory_lock(BACKUP_LOCK) as conn:
        return 0 if conn is None else cleanup_interrupted()


def prune(now=None) -> int:
    """Delete backups (files and rows together) older than BACKUP_RETENTION_DAYS.

    The newest good backup is kept whatever its age: retention never leaves nothing to restore.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.BACKUP_RETENTION_DAYS)
    newest_good = newest_good_backup()
    deleted = 0
    with transaction.atomic():
        old = (
            Backup.objects.select_for_update(skip_locked=True)
            .filter(started_at__lt=cutoff)
            .exclude(status=Backup.Status.RUNNING)
        )
        if newest_good is not None:
            old = old.exclude(pk=newest_good.pk)
        for backup in old:
            if backup.path:
                _remove(backup.path)
                _remove(backup.partial_path)
                # Left behind when the process died while uploading the off-site copy.
                _remove(f"{backup.path}{offsite.ENCRYPTED_SUFFIX}")
            backup.delete()
            deleted += 1
    return deleted


def newest_good_backup() -> Backup | None:
    return Backup.objects.filter(status=Backup.Status.SUCCEEDED).order_by("-started_at").first()


def check_freshness(now=None) -> bool:
    """Whether a good backup is younger than BACKUP_MAX_AGE_HOURS; if not, say so.

    Before the first good backup, the age counts from when backups were installed.
    """
    now = now or timezone.now()
    cleanup_if_idle()
    max_age = timedelta(hours=settings.BACKUP_MAX_AGE_HOURS)
    newest = newest_good_backup()
    since = newest.finished_at if newest else _installed_at()
    if since is None or now - since <= max_age:
        return True
    what = f"the last good backup finished {since:%Y-%m-%d %H:%M} UTC" if newest else "never"
    signals.backup_stale.send_robust(
        Backup,
        backup=newest,
        message=f"No good backup for {settings.BACKUP_MAX_AGE_HOURS} hours ({what})",
    )
    return False


def _installed_at():
    first = MigrationRecorder.Migration.objects.filter(app="backups").order_by("applied").first()
    return first.applied if first else None
