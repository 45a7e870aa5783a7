import os
import time
import urllib.error
import urllib.request

from django.core.management.base import BaseCommand, CommandError

from config.management.commands.bootstrap import ADMIN_PASSWORD_FILE, admin_username
from config.monitoring import readiness_failures

WAIT_SECONDS = 120


class Command(BaseCommand):
    help = (
        "Wait until Vigil is ready (web, PostgreSQL, Redis and a Celery worker), then "
        "print how to reach it and log in: make run's last start-up lines (the local agent "
        "starts after them)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--url", default=f"http://127.0.0.1:{os.environ.get('VIGIL_PORT', '8000')}"
        )

    def handle(self, *args, **options):
        url = options["url"].rstrip("/")
        self.wait_until_ready(f"{url}/healthz")
        username = admin_username()
        text = (
            f"Vigil is running at {url}\n"
            f"Log in as {username!r} with {self.password_note(username)}\n"
            "Ctrl-C stops everything, the embedded PostgreSQL and Redis too."
        )
        lines = text.splitlines()
        width = max(len(line) for line in lines)
        rule = "─" * (width + 2)
        self.stdout.write("\n".join([f"┌{rule}┐", *(f"│ {line:<{width}} │" for line in lines)]))
        self.stdout.write(f"└{rule}┘")

    def wait_until_ready(self, healthz: str) -> None:
        """Until the web server answers and /readyz's checks pass (PostgreSQL, Redis, a
        worker's heartbeat), checked here rather than by polling /readyz, whose 503s would
        each log an error while the worker starts."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                with urllib.request.urlopen(healthz, timeout=2):
                    pass
                failures = readiness_failures()
            except (urllib.error.URLError, OSError) as error:
                failures = [f"web: {error}"]
            if not failures:
                return
            if time.monotonic() > deadline:
                raise CommandError(f"Vigil is not ready: {'; '.join(failures)}")
            time.sleep(0.5)

    def password_note(self, username: str) -> str:
        """Where the admin's password comes from; a generated one is shown here once."""
        if ADMIN_PASSWORD_FILE.exists():
            password = ADMIN_PASSWORD_FILE.read_text().strip()
            ADMIN_PASSWORD_FILE.unlink()
            return (
                f"the password {password}\n(generated and shown once: change it after logging in)"
            )
        if os.environ.get("VIGIL_ADMIN_PASSWORD"):
            return "the password in VIGIL_ADMIN_PASSWORD"
        return (
            "the password shown when it was made\n"
            f"(forgotten? .venv/bin/python manage.py changepassword {username})"
        )
