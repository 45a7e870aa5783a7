from django.core.management.base import BaseCommand

from instances.compaction import compact_day, compactable_days


class Command(BaseCommand):
    help = (
        "Compact the closed days of raw samples into compressed blocks (what the hourly beat "
        "task does); a day already compacted that got late samples is merged again."
    )

    def handle(self, *args, verbosity: int = 1, **options) -> None:
        days = compactable_days()
        if not days:
            self.stdout.write("no closed day holds raw samples")
        for day in days:

            def progress(stage: str, day=day) -> None:
                if verbosity >= 2:
                    self.stdout.write(f"{day}: {stage}")
                    self.stdout.flush()

            folded = compact_day(day, progress)
            self.stdout.write(f"{day}: {folded} raw samples compacted")
