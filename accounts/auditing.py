"""Audit trails for admin edits: mix ``AuditedAdmin`` into a ModelAdmin to record its changes."""

from accounts.models import AuditEvent


class AuditedAdmin:
    """Records ``<model>.create``, ``<model>.change`` (with the changed fields) and
    ``<model>.delete`` for everything saved or deleted through this admin."""

    def audit_action(self, verb: str) -> str:
        return f"{self.model._meta.model_name}.{verb}"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change:
            AuditEvent.record(
                request.user, self.audit_action("change"), obj, request=request,
                fields=list(form.changed_data),
            )  # fmt: skip
        else:
            AuditEvent.record(request.user, self.audit_action("create"), obj, request=request)

    def delete_model(self, request, obj):
        AuditEvent.record(request.user, self.audit_action("delete"), obj, request=request)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            AuditEvent.record(request.user, self.audit_action("delete"), obj, request=request)
        super().delete_queryset(request, queryset)
