"""Restoring an archive into Vigil's configured database (``manage.py restore``)."""

import shutil
import tempfile
from contextlib import suppress
from pathlib import Path
from subprocess import PIPE

from django.db import connections

from backups import postgres

# A database holding any of these rows has monitoring data a restore would overwrite.
DATA_TABLES = (
    "instances_instance",
    "instances_series",
    "samples",
    "sample_blocks",
    "alerts_alert",
)


class RestoreRefused(RuntimeError):
    pass


def restore(archive: Path, force: bool = False) -> None:
    """pg_restore ``archive`` into the configured database, in one transaction.

    A database with monitoring data is refused unless ``force``. Whatever the public schema
    holds (Vigil's tables of a migrated, empty database too) is replaced by the archive's.
    """
    if not archive.is_file():
        raise RestoreRefused(f"{archive}: no such file")
    connections.close_all()
    with postgres.connect() as conn:
        counts = postgres.count_rows(conn, DATA_TABLES)
        holding = sorted(table for table, rows in counts.items() if rows)
        if holding and not force:
            raise RestoreRefused(
                f"the database is not empty ({', '.join(holding)} have rows); "
                "use --force to replace its contents"
            )
        major = postgres.server_major(conn)
    bin_dir = postgres.client_bin_dir(major)
    # pg_restore --clean cannot drop partitioned tables' inherited constraints, so the old schema
    # goes whole instead: pg_restore writes SQL, psql runs it after dropping the public schema,
    # all in one transaction. psql only sees the end of its input (and commits) once pg_restore
    # has succeeded; otherwise it is killed and the server rolls everything back.
    psql_args = [
        "--no-psqlrc",
        "--quiet",
        "--no-password",
        "--single-transaction",
        "--set=ON_ERROR_STOP=1",
        "--command=DROP SCHEMA public CASCADE; CREATE SCHEMA public;",
        "--file=-",
    ]
    restore_args = ["--no-owner", "--no-privileges", "--file=-", str(archive)]
    with tempfile.TemporaryFile() as psql_errors, tempfile.TemporaryFile() as restore_errors:
        psql = postgres.start(bin_dir / "psql", psql_args, None, psql_errors, stdin=PIPE)
        script = postgres.start(
            bin_dir / "pg_restore", restore_args, None, restore_errors, stdout=PIPE
        )
        try:
            with suppress(BrokenPipeError):
                shutil.copyfileobj(script.stdout, psql.stdin, 1 << 20)
            if script.wait() != 0 or psql.poll() is not None:
                psql.kill()
                failed, errors = (
                    (script, restore_errors) if script.returncode else (psql, psql_errors)
                )
                raise RuntimeError(_output(errors) or f"{failed.args[0]} failed")
            psql.stdin.close()
            if psql.wait() != 0:
                raise RuntimeError(_output(psql_errors) or "psql failed")
        finally:
            for process in (script, psql):
                if process.poll() is None:
                    process.kill()
                process.wait()


def _output(file) -> str:
    file.seek(0)
    return file.read().decode(errors="replace").strip()
