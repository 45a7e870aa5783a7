from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ingestion.models import IngestToken, default_scopes


class Command(BaseCommand):
    help = "Create an ingest token; the token is printed alone on the last line, once."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="what or who the token is for")
        parser.add_argument(
            "--scope",
            action="append",
            choices=IngestToken.Scope.values,
            dest="scopes",
            help="what it may do; repeat for several (default: ingest and read)",
        )
        parser.add_argument(
            "--agent-id",
            action="append",
            dest="agent_patterns",
            default=[],
            metavar="PATTERN",
            help="an agent id (or pattern, web-*) it may push for; repeat; default any",
        )
        parser.add_argument(
            "--expires-in-days", type=int, help="how long it works (default: until revoked)"
        )

    def handle(self, *args, name, scopes, agent_patterns, expires_in_days, **options):
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be at least 1")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        token, plain = IngestToken.issue(
            name,
            scopes or default_scopes(),
            actor="manage.py create_ingest_token",
            agent_patterns=agent_patterns,
            expires_at=expires_at,
        )
        # A note, not an error: plain stdout (stderr is styled red), with the token last.
        self.stdout.write(
            f"Created token {token.prefix}… for {name!r} ({token.get_scopes_display()}). "
            "Keep it secret:"
        )
        self.stdout.write(plain)
