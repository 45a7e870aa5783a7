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
        if backup.offsite_status == Backup.Offsite.UPLOADED:
            self.stdout.write(f"off-site copy: {backup.offsite_key}")
        elif backup.offsite_status == Backup.Offsite.FAILED:
            self.stderr.write(f"off-site copy failed: {backup.offsite_error}")
        self.stdout.write(backup.path)
