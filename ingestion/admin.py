from django.contrib import admin, messages

from accounts.auditing import AuditedAdmin
from accounts.models import AuditEvent
from accounts.permissions import require_recent_login
from ingestion.models import IngestToken, ScrapeTarget


@admin.register(IngestToken)
class IngestTokenAdmin(admin.ModelAdmin):
    list_display = [
        "name", "prefix", "scopes", "agent_patterns", "created", "created_by", "expires_at",
        "last_used", "last_used_address", "revoked_at",
    ]  # fmt: skip
    search_fields = ["name", "prefix"]
    fields = [
        "name", "scopes", "agent_patterns", "expires_at", "prefix", "created", "created_by",
        "last_used", "last_used_address", "revoked_at",
    ]  # fmt: skip
    readonly_fields = [
        "prefix", "created", "created_by", "last_used", "last_used_address", "revoked_at"
    ]  # fmt: skip
    actions = ["revoke"]

    def add_view(self, request, form_url="", extra_context=None):
        if request.method == "POST":
            require_recent_login(request)
        return super().add_view(request, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            AuditEvent.record(request.user, "token.change", obj, fields=form.changed_data)
            return
        token, plain = IngestToken.issue(
            obj.name,
            obj.scopes,
            created_by=request.user,
            agent_patterns=obj.agent_patterns,
            expires_at=obj.expires_at,
        )
        obj.pk = token.pk
        messages.warning(
            request, f"Token for {token.name}: {plain} — copy it now, it is not shown again."
        )

    def delete_model(self, request, obj):
        AuditEvent.record(request.user, "token.delete", obj, request=request)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for token in queryset:
            AuditEvent.record(request.user, "token.delete", token, request=request)
        super().delete_queryset(request, queryset)

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        revoked = sum(token.revoke(actor=request.user) for token in queryset)
        messages.success(request, f"Revoked {revoked} token(s).")


@admin.register(ScrapeTarget)
class ScrapeTargetAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = [
        "url", "instance", "interval_seconds", "enabled", "last_scrape_at", "last_up",
        "last_duration",
    ]  # fmt: skip
    list_filter = ["enabled", "last_up"]
    list_select_related = ["instance"]
    search_fields = ["url", "instance__name", "instance__agent_id"]
    autocomplete_fields = ["instance"]
    fields = [
        "instance", "url", "interval_seconds", "enabled", "last_scrape_at", "last_up",
        "last_duration", "last_error",
    ]  # fmt: skip
    readonly_fields = ["last_scrape_at", "last_up", "last_duration", "last_error"]
