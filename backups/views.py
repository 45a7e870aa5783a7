"""The Admins' backups page (list, "Back up now", download); config/urls.py mounts it under
/backups/. Live progress comes over the websocket of dashboard/consumers.py."""

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import AuditEvent
from accounts.permissions import Role, has_role, require_recent_login, role_required
from backups import page, tasks
from backups.models import Backup


@role_required(Role.ADMIN)
def backup_list(request):
    """Backups newest first, with the progress of the newest run."""
    if request.htmx:
        # The polling fallback: the same out-of-band fragments the socket pushes.
        return render(request, "backups/partials/live.html", page.page_context())
    return render(request, "backups/list.html", page.page_context())


@require_POST
@role_required(Role.ADMIN)
def back_up_now(request):
    """Queue a manual backup; its progress then arrives over the websocket."""
    asked_at = timezone.now()
    AuditEvent.record(request.user, "backup.start", request=request)
    tasks.run_backup.delay(Backup.Kind.MANUAL)
    if not request.htmx:
        messages.info(request, "Backup queued; it shows here when it starts.")
        return redirect("backups:list")
    # A quick worker (or eager Celery) may have started or even finished it already.
    newest = Backup.objects.filter(started_at__gte=asked_at).first()
    progress = page.Progress.of(newest) if newest else page.Progress("queued")
    return render(request, "backups/partials/live.html", page.page_context(progress))


@role_required(Role.ADMIN)
def download(request, pk):
    return download_response(request, get_object_or_404(Backup, pk=pk))


def download_response(request, backup: Backup) -> FileResponse:
    """The archive as an attachment: for Admins who confirmed their password just now, and
    only from BACKUP_DIR."""
    if not has_role(request.user, Role.ADMIN):
        raise PermissionDenied
    require_recent_login(request)
    archive = Path(backup.path)
    if not backup.is_good or not archive.is_file():
        raise Http404("no archive for this backup")
    if archive.resolve().parent != Path(settings.BACKUP_DIR).resolve():
        raise Http404("the archive is not in BACKUP_DIR")
    AuditEvent.record(request.user, "backup.download", backup, request=request)
    return FileResponse(open(archive, "rb"), as_attachment=True, filename=archive.name)
