from django.contrib import admin

from accounts.auditing import AuditedAdmin
from instances.models import Instance, Series


@admin.register(Instance)
class InstanceAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["name", "agent_id", "status", "type", "region", "last_seen", "created"]
    list_filter = ["status", "type", "region"]
    search_fields = ["name", "agent_id", "endpoint"]
    readonly_fields = ["id", "created", "last_seen"]


@admin.register(Series)
class SeriesAdmin(admin.ModelAdmin):
    list_display = ["__str__", "instance", "unit", "created"]
    list_filter = ["name"]
    search_fields = ["name", "instance__name", "instance__agent_id"]
    list_select_related = ["instance"]
    raw_id_fields = ["instance"]

    def has_delete_permission(self, request, obj=None) -> bool:
        # A series goes with its instance (which also takes its samples); deleted alone it would
        # leave its samples behind and ingest's series-id cache pointing at nothing.
        return False
