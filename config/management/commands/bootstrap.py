import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from accounts.models import AuditEvent
from alerts.backup_alerts import ship_backup_heartbeat
from ingestion.models import IngestToken, hash_token
from instances import store

AGENT_TOKEN_FILE = settings.BASE_DIR / "var" / "agent-token"
# A password generated for the admin waits here for startup_banner, which shows it and deletes it.
ADMIN_PASSWORD_FILE = settings.BASE_DIR / "var" / "admin-password"


def admin_username() -> str:
    return os.environ.get("VIGIL_ADMIN_USERNAME", "admin")


class Command(BaseCommand):
    help = (
        "Prepare a checkout to run: migrate, collect static files, make today's partitions, "
        "create the admin account, the local agent's token and the heartbeat of Vigil's "
        "backups, load DASHBOARDS_DIR. Safe to run again."
    )

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        store.ensure_partitions_ahead()
        self.ensure_admin()
        self.ensure_agent_token()
        ship_backup_heartbeat()
        try:
            call_command("provision_dashboards")
        except CommandError as error:
            # A bad dashboard file is reported, not a reason to stay down.
            self.stderr.write(str(error))

    def ensure_admin(self) -> None:
        username = admin_username()
        users = get_user_model().objects
        if users.filter(username=username).exists():
            self.stdout.write(f"Admin account {username!r} exists.")
            return
        password = os.environ.get("VIGIL_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user = users.create_superuser(username=username, email="", password=password)
        AuditEvent.record("manage.py bootstrap", "user.create", user, role="admin", invited=False)
        if os.environ.get("VIGIL_ADMIN_PASSWORD"):
            self.stdout.write(
                f"Created admin account {username!r} (password from VIGIL_ADMIN_PASSWORD)."
            )
            return
        self.stdout.write(
            f"Created admin account {username!r} with password: {password}\n"
            "This is shown once (and again when start-up ends); change it after logging in."
        )
        ADMIN_PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
        ADMIN_PASSWORD_FILE.touch(mode=0o600)
        ADMIN_PASSWORD_FILE.write_text(password + "\n")

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
