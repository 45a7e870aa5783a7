"""Public SVG badges of a check (/badge/<key>.svg): its name and state, or its uptime, in the
flat two-part style of shields.io, and nothing more about it (no target, no reason)."""

from dataclasses import dataclass
from datetime import timedelta

from django.template.loader import render_to_string

from checks.models import Check

STATE_COLORS = {
    Check.State.UP: "#2e9e44",
    Check.State.LATE: "#d9a400",
    Check.State.DOWN: "#d73a2f",
    Check.State.NEW: "#8a8a8a",
    Check.State.PAUSED: "#8a8a8a",
}
# Verdana 11 px averages about this many pixels a character; the padding is each side's.
CHAR_WIDTH, PADDING = 7, 6
UPTIME_WINDOW = timedelta(hours=24)


@dataclass
class Badge:
    label: str
    message: str
    color: str

    @property
    def label_width(self) -> int:
        return len(self.label) * CHAR_WIDTH + 2 * PADDING

    @property
    def message_width(self) -> int:
        return len(self.message) * CHAR_WIDTH + 2 * PADDING

    @property
    def width(self) -> int:
        return self.label_width + self.message_width

    @property
    def label_center(self) -> float:
        return self.label_width / 2

    @property
    def message_center(self) -> float:
        return self.label_width + self.message_width / 2

    def svg(self) -> str:
        return render_to_string("checks/badge.svg", {"badge": self})


def state_badge(check: Check) -> Badge:
    return Badge(check.name, check.state, STATE_COLORS[check.state])


def uptime_badge(check: Check) -> Badge:
    """The share of the last 24 hours' probes that succeeded: green from 99 %, amber from 95 %."""
    uptime = check.uptime(UPTIME_WINDOW)
    if uptime is None:
        return Badge(f"{check.name} 24h", "no data", STATE_COLORS[Check.State.NEW])
    color = "#2e9e44" if uptime >= 0.99 else "#d9a400" if uptime >= 0.95 else "#d73a2f"
    return Badge(f"{check.name} 24h", f"{uptime:.2%}", color)
