from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince
from django.views.decorators.http import require_POST

from accounts.models import AuditEvent
from accounts.permissions import Role, has_role
from backups import tasks
from backups.models import Backup
from backups.views import download_response


@admin.register(Backup)
class BackupAdmin(admin.ModelAdmin):
    change_list_template = "admin/backups/backup/change_list.html"
    list_display = [
        "started_at",
        "kind",
        "status",
        "human_size",
        "age",
        "verification",
        "verified_at",
        "offsite_status",
        "download",
    ]
    list_filter = ["status", "kind", "verification", "offsite_status"]
    readonly_fields = [f.name for f in Backup._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="size", ordering="size")
    def human_size(self, backup):
        return filesizeformat(backup.size) if backup.size is not None else "—"

    @admin.display(description="age", ordering="started_at")
    def age(self, backup):
        return timesince(backup.started_at, timezone.now())

    @admin.display(description="archive")
    def download(self, backup):
        if not backup.is_good:
            return backup.error[:80] if backup.error else "—"
        url = reverse("admin:backups_backup_download", args=[backup.pk])
        return format_html('<a href="{}">{}</a>', url, backup.file_name)

    def get_urls(self):
        own = [
            path(
                "back-up-now/",
                self.admin_site.admin_view(require_POST(self.back_up_now)),
                name="backups_backup_back_up_now",
            ),
            path(
                "<int:pk>/download/",
                self.admin_site.admin_view(self.download_view),
                name="backups_backup_download",
            ),
        ]
        return own + super().get_urls()

    def back_up_now(self, request):
        if not has_role(request.user, Role.ADMIN):
            raise PermissionDenied
        AuditEvent.record(request.user, "backup.start", request=request)
        tasks.run_backup.delay(Backup.Kind.MANUAL)
        self.message_user(request, "Backup started; it shows here when it is done.", messages.INFO)
        return HttpResponseRedirect(reverse("admin:backups_backup_changelist"))

    def download_view(self, request, pk):
        return download_response(request, get_object_or_404(Backup, pk=pk))
