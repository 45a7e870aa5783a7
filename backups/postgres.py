"""PostgreSQL's own client programs (pg_dump, pg_restore) and the connections backups need.

Connection parameters come from ``settings.DATABASES["default"]``; they reach the client
programs through libpq's environment variables, so a password never shows on a command line.
The programs are those of the server's major version: the embedded server ships its own, a
Debian-style machine has /usr/lib/postgresql/<major>/bin, else whatever ``pg_dump`` is on PATH.
"""

import ctypes
import os
import re
import shutil
import signal
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import psycopg
from django.conf import settings
from psycopg import sql

# libpq keywords Django's OPTIONS may carry, and the environment variables that set them.
LIBPQ_OPTIONS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "options": "PGOPTIONS",
    "service": "PGSERVICE",
    "passfile": "PGPASSFILE",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}


class ClientProgramMissing(RuntimeError):
    pass


def connection_params(dbname: str | None = None) -> dict:
    """libpq keywords for Vigil's database (or ``dbname`` on the same server)."""
    database = settings.DATABASES["default"]
    options = database.get("OPTIONS", {})
    params = {
        "dbname": dbname or database["NAME"],
        "user": database.get("USER"),
        "password": database.get("PASSWORD"),
        # A unix-socket server may come as DATABASE_URL's ?host=&port=, which land in OPTIONS.
        "host": database.get("HOST") or options.get("host"),
        "port": database.get("PORT") or options.get("port"),
    }
    for key in LIBPQ_OPTIONS:
        params[key] = options.get(key)
    return {key: str(value) for key, value in params.items() if value not in (None, "")}


def client_env(dbname: str | None = None) -> dict:
    """The environment for pg_dump / pg_restore: libpq variables, never argv."""
    names = {"dbname": "PGDATABASE", "user": "PGUSER", "password": "PGPASSWORD"}
    names |= {"host": "PGHOST", "port": "PGPORT"} | LIBPQ_OPTIONS
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    for key, value in connection_params(dbname).items():
        env[names[key]] = value
    return env


def connect(dbname: str | None = None, autocommit: bool = True) -> psycopg.Connection:
    """A connection of its own, apart from Django's (its session holds locks and snapshots)."""
    return psycopg.connect(**connection_params(dbname), autocommit=autocommit)


def server_major(conn: psycopg.Connection) -> int:
    return conn.info.server_version // 10000


def client_bin_dir(major: int) -> Path:
    """The directory of the pg_dump and pg_restore made for PostgreSQL ``major``."""
    candidates = [Path(f"/usr/lib/postgresql/{major}/bin")]
    try:
        from config import embedded

        candidates.insert(0, embedded.postgres_bin_dir())
    except ImportError:
        pass
    on_path = shutil.which("pg_dump")
    if on_path:
        candidates.append(Path(on_path).parent)
    for directory in candidates:
        if _program_major(directory / "pg_dump") == major:
            return directory
    raise ClientProgramMissing(
        f"no pg_dump for PostgreSQL {major} (looked in {', '.join(map(str, candidates))})"
    )


@cache
def _program_major(program: Path) -> int | None:
    if not (program.is_file() and os.access(program, os.X_OK)):
        return None
    output = subprocess.run([program, "--version"], capture_output=True, text=True).stdout
    found = re.search(r"\) (\d+)", output)
    return int(found.group(1)) if found else None


def _die_with_parent() -> None:
    """Runs in the child: if the worker is killed, pg_dump / pg_restore die with it."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def start(
    program: Path,
    args: list[str],
    dbname: str | None,
    stderr,
    stdin=subprocess.DEVNULL,
    stdout=subprocess.DEVNULL,
) -> subprocess.Popen:
    return subprocess.Popen(
        [str(program), *args],
        env=client_env(dbname),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        preexec_fn=_die_with_parent,
    )


def run(program: Path, args: list[str], dbname: str | None, stdin=subprocess.DEVNULL) -> None:
    """Run a client program to completion; its error output becomes the exception's message."""
    with tempfile.TemporaryFile() as stderr:
        process = start(program, args, dbname, stderr, stdin=stdin)
        if process.wait() != 0:
            stderr.seek(0)
            message = stderr.read().decode(errors="replace").strip()
            raise RuntimeError(message or f"{program.name} exited with {process.returncode}")


def existing_tables(conn: psycopg.Connection, tables) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(quote_ident(name)) "
        "IS NOT NULL",
        [list(tables)],
    ).fetchall()
    return [name for (name,) in rows]


def count_rows(conn: psycopg.Connection, tables) -> dict[str, int]:
    """{table: rows} for those of ``tables`` that exist, in one statement (one snapshot)."""
    present = existing_tables(conn, tables)
    if not present:
        return {}
    query = sql.SQL(", ").join(
        sql.SQL("(SELECT count(*) FROM {})").format(sql.Identifier(name)) for name in present
    )
    counts = conn.execute(sql.SQL("SELECT ") + query).fetchone()
    return dict(zip(present, counts, strict=True))
