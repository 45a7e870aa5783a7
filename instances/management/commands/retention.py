from django.core.management.base import BaseCommand

from instances.retention import apply_retention, retention_days


class Command(BaseCommand):
    help = (
        "Drop the samples and rollup partitions past their retention and create the partitions "
        "ahead (what the hourly beat task does)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="list what would be dropped, change nothing"
        )

    def handle(self, *args, dry_run: bool = False, **options) -> None:
        for table, days in retention_days().items():
            self.stdout.write(f"{table.name}: keeps {days} days")
        report = apply_retention(dry_run=dry_run)
        for name in report.created:
            self.stdout.write(f"created {name}")
        verb = "would drop" if dry_run else "dropped"
        for name in report.expired:
            self.stdout.write(f"{verb} {name}")
        if not report.expired:
            self.stdout.write("nothing has expired")
