import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from instances import store
from instances.samples import VICTORIAMETRICS
from instances.victoriametrics import VictoriaMetricsEngine

DAY_MS = 86_400_000


class Command(BaseCommand):
    help = (
        "Copy the samples kept in PostgreSQL to VictoriaMetrics (VM_WRITE_URL), series by series "
        "in batches, printing progress. An interrupted run goes on where it stopped; a sample "
        "copied twice is kept once (VictoriaMetrics' -dedup.minScrapeInterval)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--to", required=True, choices=[VICTORIAMETRICS])
        parser.add_argument(
            "--batch-series", type=int, default=100, help="series read and sent together"
        )
        parser.add_argument(
            "--batches",
            type=int,
            default=None,
            help="stop after this many batches (the next run goes on from there)",
        )
        parser.add_argument(
            "--from-start",
            action="store_true",
            help="copy everything again, e.g. what arrived while the first run went on",
        )

    def handle(self, *args, to: str, batch_series: int, batches, from_start: bool, **options):
        if not (settings.VM_WRITE_URL and settings.VM_QUERY_URL):
            raise CommandError("set VM_WRITE_URL and VM_QUERY_URL to the VictoriaMetrics to fill")
        target = VictoriaMetricsEngine(settings.VM_WRITE_URL, settings.VM_QUERY_URL)
        if from_start:
            store.forget_copy_progress(to)
        last_series_id, copied = store.copy_progress(to)
        bounds = store.sample_time_bounds()
        total = store.count_samples()
        if bounds is None:
            self.stdout.write("no samples to copy")
            return
        if last_series_id:
            self.stdout.write(f"going on after series {last_series_id} ({copied} copied before)")
        done = 0
        while batches is None or done < batches:
            series_ids = store.series_ids_after(last_series_id, batch_series)
            if not series_ids:
                break
            copied += self._copy_batch(target, series_ids, bounds)
            last_series_id = series_ids[-1]
            store.save_copy_progress(to, last_series_id, copied)
            done += 1
            self.stdout.write(
                f"copied {copied} of {total} samples ({copied / total:.0%}), "
                f"series up to {last_series_id}"
            )
        if store.series_ids_after(last_series_id, 1):
            self.stdout.write(f"stopped after {done} batches; run again to go on")
        else:
            self.stdout.write(f"done: {copied} samples in {to}")

    def _copy_batch(
        self, target: VictoriaMetricsEngine, series_ids: list[int], bounds: tuple[int, int]
    ) -> int:
        """Copy the samples of ``series_ids``, a day of them (one read, one request) at a time."""
        copied = 0
        first_ms, last_ms = bounds
        for day_start in range(first_ms, last_ms + 1, DAY_MS):
            span = np.array([[day_start, min(day_start + DAY_MS - 1, last_ms)]])
            arrays = store.sample_arrays_in_spans(series_ids, span, limit=10**9)
            if not len(arrays.value):
                continue
            ids, starts = np.unique(arrays.series_id, return_index=True)
            ends = np.append(starts[1:], len(arrays.value))
            target.import_series({
                int(series_id): (
                    arrays.ts_ms[begin:end].tolist(), arrays.value[begin:end].tolist()
                )
                for series_id, begin, end in zip(ids, starts, ends, strict=True)
            })  # fmt: skip
            copied += len(arrays.value)
        return copied
