from django.contrib import admin

from alerts.models import Alert


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["alert_type", "instance", "severity", "status", "source", "created_at"]
    list_filter = ["status", "severity", "source"]
    search_fields = ["alert_type", "message", "instance__name", "instance__agent_id"]
    list_select_related = ["instance"]
    readonly_fields = ["fingerprint", "created_at", "acted_by_token"]
    raw_id_fields = ["instance", "acknowledged_by"]
