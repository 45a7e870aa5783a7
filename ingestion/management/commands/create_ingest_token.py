from django.core.management.base import BaseCommand

from ingestion.models import IngestToken


class Command(BaseCommand):
    help = "Create an ingest token; the token is printed alone on the last line, once."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="what or who the token is for")
        parser.add_argument(
            "--scope", choices=IngestToken.Scope.values, default=IngestToken.Scope.WRITE
        )

    def handle(self, *args, name, scope, **options):
        token, plain = IngestToken.issue(name, scope, actor="manage.py create_ingest_token")
        # A note, not an error: plain stdout (stderr is styled red), with the token last.
        self.stdout.write(f"Created token {token.prefix}… for {name!r} ({scope}). Keep it secret:")
        self.stdout.write(plain)
