from django.contrib import admin, messages

from accounts.models import AuditEvent
from ingestion.models import IngestToken


@admin.register(IngestToken)
class IngestTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "scope", "created", "created_by", "last_used", "revoked_at"]
    list_filter = ["scope"]
    search_fields = ["name", "prefix"]
    fields = ["name", "scope", "prefix", "created", "created_by", "last_used", "revoked_at"]
    readonly_fields = ["prefix", "created", "created_by", "last_used", "revoked_at"]
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            AuditEvent.record(request.user, "token.change", obj, fields=form.changed_data)
            return
        token, plain = IngestToken.issue(obj.name, obj.scope, created_by=request.user)
        obj.pk = token.pk
        messages.warning(
            request, f"Token for {token.name}: {plain} — copy it now, it is not shown again."
        )

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        revoked = sum(token.revoke(actor=request.user) for token in queryset)
        messages.success(request, f"Revoked {revoked} token(s).")
