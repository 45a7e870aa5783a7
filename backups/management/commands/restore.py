from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from backups import restore


class Command(BaseCommand):
    help = (
        "Restore a backup archive (pg_dump -Fc) into the configured database. Refuses a "
        "database holding instances, series, samples or alerts unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("archive", type=Path)
        parser.add_argument(
            "--force", action="store_true", help="replace what the database holds now"
        )

    def handle(self, *args, archive: Path, force: bool, **options):
        try:
            restore.restore(archive, force=force)
        except (restore.RestoreRefused, RuntimeError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"restored {archive}")
