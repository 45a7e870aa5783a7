from django.contrib import admin

from accounts.auditing import AuditedAdmin
from dashboard.models import Dashboard, DashboardVersion, Panel


class PanelInline(admin.StackedInline):
    model = Panel
    extra = 0


class DashboardVersionInline(admin.TabularInline):
    model = DashboardVersion
    extra = 0
    can_delete = False
    fields = ["version", "saved_at", "saved_by", "note"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Dashboard)
class DashboardAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["title", "tags", "owner", "version", "updated_at"]
    search_fields = ["title"]
    readonly_fields = ["slug", "version"]
    inlines = [PanelInline, DashboardVersionInline]
