import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backups import offsite, restore


class Command(BaseCommand):
    help = (
        "Restore a backup archive (pg_dump -Fc) into the configured database, from a file or, "
        "with --from-remote KEY, from an encrypted off-site copy. Refuses a database holding "
        "instances, series, samples or alerts unless --force."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("archive", type=Path, nargs="?")
        source.add_argument(
            "--from-remote",
            metavar="KEY",
            help="the object key of an off-site copy in BACKUP_S3_BUCKET",
        )
        source.add_argument(
            "--list-remote",
            action="store_true",
            help="list the off-site copies (key, size, upload time), newest last, and exit",
        )
        parser.add_argument(
            "--identity",
            type=Path,
            help="the age identity file to decrypt with (default: BACKUP_AGE_IDENTITY_FILE)",
        )
        parser.add_argument(
            "--force", action="store_true", help="replace what the database holds now"
        )

    def handle(self, *args, archive, from_remote, list_remote, identity, force, **options):
        if not settings.BACKUP_S3_BUCKET and (from_remote or list_remote):
            raise CommandError("off-site copies need BACKUP_S3_BUCKET")
        if list_remote:
            self.list_remote()
            return
        try:
            if from_remote:
                self.restore_remote(from_remote, identity, force)
                archive = from_remote
            else:
                restore.restore(archive, force=force)
        except (restore.RestoreRefused, offsite.OffsiteError, RuntimeError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"restored {archive}")

    def list_remote(self) -> None:
        try:
            copies = offsite.remote_copies()
        except offsite.STORAGE_ERRORS as error:
            raise CommandError(f"cannot list {settings.BACKUP_S3_BUCKET}: {error}") from None
        for entry in copies:
            uploaded = entry["LastModified"].strftime("%Y-%m-%d %H:%M UTC")
            self.stdout.write(f"{entry['Key']}  {entry['Size']} bytes  {uploaded}")

    def restore_remote(self, key: str, identity: Path | None, force: bool) -> None:
        identity = identity or settings.BACKUP_AGE_IDENTITY_FILE
        if not identity:
            raise CommandError("--from-remote needs --identity or BACKUP_AGE_IDENTITY_FILE")
        # A private directory: the decrypted archive holds every secret of the database.
        with tempfile.TemporaryDirectory(prefix="vigil-restore-") as directory:
            archive = Path(directory) / Path(key).name.removesuffix(offsite.ENCRYPTED_SUFFIX)
            offsite.download(key, Path(identity), archive)
            restore.restore(archive, force=force)
