import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from ingestion.models import IngestToken, hash_token
from instances import store

AGENT_TOKEN_FILE = settings.BASE_DIR / "var" / "agent-token"


class Command(BaseCommand):
    help = (
        "Prepare a checkout to run: migrate, collect static files, make today's partitions, "
        "create the admin account and the local agent's token. Safe to run again."
    )

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        store.ensure_partitions_ahead()
        self.ensure_admin()
        self.ensure_agent_token()

    def ensure_admin(self) -> None:
        username = os.environ.get("VIGIL_ADMIN_USERNAME", "admin")
        users = get_user_model().objects
        if users.filter(username=username).exists():
            self.stdout.write(f"Admin account {username!r} exists.")
            return
        password = os.environ.get("VIGIL_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        users.create_superuser(username=username, email="", password=password)
        if os.environ.get("VIGIL_ADMIN_PASSWORD"):
            self.stdout.write(
                f"Created admin account {username!r} (password from VIGIL_ADMIN_PASSWORD)."
            )
        else:
            self.stdout.write(
                self.style.WARNING(
                    f"Created admin account {username!r} with password: {password}\n"
                    "This is shown once; change it after logging in."
                )
            )

    def ensure_agent_token(self) -> None:
        """The local agent (Procfile) reads its token from var/agent-token."""
        if AGENT_TOKEN_FILE.exists():
            plain = AGENT_TOKEN_FILE.read_text().strip()
            if IngestToken.objects.filter(token_hash=hash_token(plain), revoked_at=None).exists():
                return
        _, plain = IngestToken.issue("local agent (make run)")
        AGENT_TOKEN_FILE.parent.mkdir(parents=True, exist_ok=True)
        AGENT_TOKEN_FILE.touch(mode=0o600)
        AGENT_TOKEN_FILE.write_text(plain + "\n")
        self.stdout.write("Created the local agent's ingest token (var/agent-token).")
