from django.contrib import admin, messages
from django.utils import timezone

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
            return
        token, plain = IngestToken.issue(obj.name, obj.scope, created_by=request.user)
        obj.pk = token.pk
        messages.warning(
            request, f"Token for {token.name}: {plain} — copy it now, it is not shown again."
        )

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        messages.success(request, f"Revoked {revoked} token(s).")
