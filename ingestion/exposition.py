"""The Prometheus text exposition format (0.0.4): read from scrape targets, written by /federate."""

import math
from collections.abc import Iterable
from datetime import datetime

from prometheus_client.parser import text_string_to_metric_families

from ingestion.parsers import (
    ParsedSample,
    TimeWindow,
    parse_labels,
    parse_metric_name,
    parse_timestamp,
)
from instances.formats import epoch_ms

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class TextExposition:
    """Parses a scraped page into samples and renders latest values as a page.

    Parsing is prometheus_client's; a page it cannot parse fails the whole scrape, as in
    Prometheus. Samples Vigil cannot store (non-finite values, label floods, over-long names or
    values) are left out and counted, not fatal.
    """

    @staticmethod
    def parse(text: str, window: TimeWindow) -> tuple[list[ParsedSample], int]:
        """``(samples, skipped)``, stamped ``window.now`` unless the page gives a time (then it
        must lie in the window); raises ValueError when the page is not the text format."""
        samples, skipped = [], 0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                try:
                    name = parse_metric_name(sample.name)
                    labels = parse_labels(sample.labels)
                    ts = window.now
                    if sample.timestamp is not None:
                        ts = parse_timestamp(float(sample.timestamp) * 1000, window)
                except ValueError:
                    skipped += 1
                    continue
                if not math.isfinite(sample.value):
                    skipped += 1
                    continue
                samples.append(ParsedSample(name, float(sample.value), ts, labels, ""))
        return samples, skipped

    @staticmethod
    def render(rows: Iterable[tuple[str, dict, float, datetime]]) -> str:
        """Lines for ``(name, labels, value, ts)`` rows, grouped by metric name, as ``untyped``
        (Vigil does not keep metric types), each sample with its timestamp in epoch ms."""
        by_name: dict[str, list[str]] = {}
        for name, labels, value, ts in rows:
            label_text = ",".join(f'{key}="{_escape(str(v))}"' for key, v in sorted(labels.items()))
            selector = f"{name}{{{label_text}}}" if label_text else name
            by_name.setdefault(name, []).append(f"{selector} {_number(value)} {epoch_ms(ts)}")
        lines = []
        for name in sorted(by_name):
            lines.append(f"# TYPE {name} untyped")
            lines.extend(by_name[name])
        return "\n".join(lines) + "\n" if lines else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
