"""The Admins' backups page: the list of backups and the progress of the current run.

The page, its polling fallback and the websocket pushes (dashboard/consumers.py) render the same
templates (templates/backups/): the progress panel says where the newest run is, the list body
holds one row per backup.
"""

from dataclasses import dataclass

from django.conf import settings
from django.template.loader import render_to_string

from backups import offsite
from backups.models import Backup


@dataclass(frozen=True)
class Progress:
    """What the progress panel shows: ``state`` is ``idle`` (no backup yet), ``queued``, or a
    state of backups/progress.py (``started``, ``running``, ``succeeded``, ``failed``,
    ``skipped``)."""

    state: str
    backup: Backup | None = None
    bytes: int | None = None
    message: str = ""

    @property
    def is_running(self) -> bool:
        return self.state in ("queued", "started", "running")

    @classmethod
    def of(cls, backup: Backup | None) -> "Progress":
        """The panel as the database tells it: where the newest backup is."""
        if backup is None:
            return cls("idle")
        return cls(backup.status, backup, backup.size, backup.error)

    @classmethod
    def from_event(cls, event: dict) -> "Progress":
        """The panel as a progress event tells it (the bytes written come only from events)."""
        backup = Backup.objects.filter(pk=event.get("backup_id")).first()
        return cls(event["state"], backup, event.get("bytes"), event.get("message", ""))


def backups() -> list[Backup]:
    """Every backup, newest first (retention keeps the list short)."""
    return list(Backup.objects.all())


def page_context(progress: Progress | None = None) -> dict:
    rows = backups()
    return {
        "backups": rows,
        "progress": progress or Progress.of(rows[0] if rows else None),
        "retention_days": settings.BACKUP_RETENTION_DAYS,
        "offsite_bucket": settings.BACKUP_S3_BUCKET if offsite.is_configured() else "",
        "offsite_retention_days": settings.BACKUP_OFFSITE_RETENTION_DAYS,
    }


# Events that add a row or finish one: the list is sent again with the panel. A failure can be
# recorded without a ``started`` event (no database connection, a run that died), so the whole
# list goes, never a row the page may not have.
LIST_CHANGING_STATES = frozenset({"started", "succeeded", "failed"})


def live_fragment(event: dict) -> str:
    """What the backups socket pushes for a progress event: the panel, and the list when the
    event changed it, as out-of-band swaps."""
    context = {"progress": Progress.from_event(event), "backups": None}
    if event["state"] in LIST_CHANGING_STATES:
        context["backups"] = backups()
    return render_to_string("backups/partials/live.html", context)
