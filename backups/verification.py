"""Restore verification: a backup counts as tested once it has been restored and counted.

The newest good archive is checked against its sha256, restored with pg_restore into a scratch
database ``vigil_verify_<random>`` on the same server, and the main tables' row counts compared
with those recorded when it was dumped. The scratch database is always dropped afterwards.
"""

import hashlib
import logging
import secrets
from pathlib import Path

from psycopg import sql

from backups import dumps, postgres, signals
from backups.models import Backup

logger = logging.getLogger(__name__)


def verify_latest() -> Backup | None:
    """Verify the newest good backup; None if there is none or a verification is running."""
    backup = dumps.newest_good_backup()
    if backup is None:
        return None
    with dumps.advisory_lock(dumps.VERIFY_LOCK) as conn:
        if conn is None:
            logger.info("verification skipped: another one is running")
            return None
        return verify(backup, conn)


def verify(backup: Backup, conn) -> Backup:
    result = {"tables": {}}
    try:
        _check_checksum(backup)
        restored = restore_and_count(Path(backup.path), conn, list(backup.row_counts))
        for table, expected in backup.row_counts.items():
            result["tables"][table] = {"expected": expected, "restored": restored.get(table)}
        wrong = [t for t, c in result["tables"].items() if c["expected"] != c["restored"]]
        if wrong:
            result["error"] = f"row counts differ in {', '.join(wrong)}"
    except Exception as error:
        result["error"] = str(error) or type(error).__name__
    passed = "error" not in result
    backup.record_verification(passed, result)
    if passed:
        signals.verification_succeeded.send_robust(
            Backup, backup=backup, message=f"Backup {backup.file_name} restored and verified"
        )
    else:
        logger.error("verification of backup %s failed: %s", backup.pk, result["error"])
        signals.verification_failed.send_robust(
            Backup,
            backup=backup,
            message=f"Restore test of {backup.file_name} failed: {result['error']}"[:1000],
        )
    return backup


def _check_checksum(backup: Backup) -> None:
    digest = hashlib.sha256()
    with open(backup.path, "rb") as archive:
        while chunk := archive.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != backup.sha256:
        raise ValueError("the archive's sha256 does not match the one recorded")


def restore_and_count(archive: Path, conn, tables: list[str]) -> dict[str, int]:
    """Restore ``archive`` into a fresh scratch database and count ``tables`` there."""
    scratch = f"vigil_verify_{secrets.token_hex(6)}"
    conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(scratch)))
    try:
        pg_restore = postgres.client_bin_dir(postgres.server_major(conn)) / "pg_restore"
        args = ["--no-password", "--no-owner", "--no-privileges", "--exit-on-error"]
        args += [f"--dbname={scratch}", str(archive)]
        postgres.run(pg_restore, args, scratch)
        with postgres.connect(scratch) as restored:
            return postgres.count_rows(restored, tables)
    finally:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch))
        )
