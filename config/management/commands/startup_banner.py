import os
import time
import urllib.error
import urllib.request

from django.core.management.base import BaseCommand, CommandError

from config.management.commands.bootstrap import ADMIN_PASSWORD_FILE, admin_username

WAIT_SECONDS = 120


class Command(BaseCommand):
    help = (
        "Wait until the web server answers /healthz, then print how to reach Vigil and log in "
        "(make run's last start-up lines; the local agent starts after it)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--url", default=f"http://127.0.0.1:{os.environ.get('VIGIL_PORT', '8000')}"
        )

    def handle(self, *args, **options):
        url = options["url"].rstrip("/")
        self.wait_for(f"{url}/healthz")
        username = admin_username()
        lines = [
            f"Vigil is running at {url}",
            f"Log in as {username!r} with {self.password_note(username)}.",
            "Ctrl-C stops everything (the embedded PostgreSQL and Redis too).",
        ]
        width = max(len(line) for line in lines)
        rule = "─" * (width + 2)
        self.stdout.write("\n".join([f"┌{rule}┐", *(f"│ {line:<{width}} │" for line in lines)]))
        self.stdout.write(f"└{rule}┘")

    def wait_for(self, healthz: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            try:
                with urllib.request.urlopen(healthz, timeout=2):
                    return
            except (urllib.error.URLError, OSError) as error:
                if time.monotonic() > deadline:
                    raise CommandError(f"{healthz} did not answer: {error}") from error
            time.sleep(0.5)

    def password_note(self, username: str) -> str:
        """Where the admin's password comes from; a generated one is shown here once."""
        if ADMIN_PASSWORD_FILE.exists():
            password = ADMIN_PASSWORD_FILE.read_text().strip()
            ADMIN_PASSWORD_FILE.unlink()
            return (
                f"the password {password} "
                "(generated, shown once: change it at /accounts/password/change/)"
            )
        if os.environ.get("VIGIL_ADMIN_PASSWORD"):
            return "the password in VIGIL_ADMIN_PASSWORD"
        return (
            "the password shown when the account was made "
            f"(forgotten: .venv/bin/python manage.py changepassword {username})"
        )
