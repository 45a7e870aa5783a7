from django.core.management.base import BaseCommand, CommandError

from backups import dumps
from backups.models import Backup


class Command(BaseCommand):
    help = "Back up Vigil's database now (pg_dump -Fc into BACKUP_DIR); prints the archive path."

    def handle(self, *args, **options):
        backup = dumps.run_backup(Backup.Kind.MANUAL)
        if backup is None:
            raise CommandError("skipped: another backup is running")
        if not backup.is_good:
            raise CommandError(f"backup failed: {backup.error}")
        self.stdout.write(f"{backup.size} bytes, sha256 {backup.sha256}")
        self.stdout.write(backup.path)
