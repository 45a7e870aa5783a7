from datetime import date

from django.core.management.base import BaseCommand

from instances.compaction import compact_samples


class Command(BaseCommand):
    help = (
        "Compact the closed days of raw samples into compressed blocks (what the hourly beat "
        "task does); a day already compacted that got late samples is merged again."
    )

    def handle(self, *args, verbosity: int = 1, **options) -> None:
        def progress(day: date, stage: str) -> None:
            if verbosity >= 2:
                self.stdout.write(f"{day}: {stage}")
                self.stdout.flush()

        report = compact_samples(progress=progress)
        if report is None:
            self.stdout.write("another compaction is running; nothing done")
        elif not report.days:
            self.stdout.write("no closed day holds raw samples")
        for day, folded in (report.days if report else {}).items():
            self.stdout.write(f"{day}: {folded} raw samples compacted")
