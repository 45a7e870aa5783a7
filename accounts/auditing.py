"""Audit trails for edits through forms: ``record_saved`` and ``record_deleted`` for views, and
``AuditedAdmin`` to mix into a ModelAdmin."""

from accounts.models import AuditEvent


def record_saved(actor, obj, form, *, created: bool, request=None) -> AuditEvent:
    """Record ``<model>.create``, or ``<model>.change`` with the fields the form changed."""
    model_name = obj._meta.model_name
    if created:
        return AuditEvent.record(actor, f"{model_name}.create", obj, request=request)
    return AuditEvent.record(
        actor, f"{model_name}.change", obj, request=request, fields=list(form.changed_data)
    )


def record_deleted(actor, obj, request=None) -> AuditEvent:
    """Record ``<model>.delete``; call it before deleting, while ``obj`` still has its id."""
    return AuditEvent.record(actor, f"{obj._meta.model_name}.delete", obj, request=request)


class AuditedAdmin:
    """Records ``<model>.create``, ``<model>.change`` (with the changed fields) and
    ``<model>.delete`` for everything saved or deleted through this admin."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        record_saved(request.user, obj, form, created=not change, request=request)

    def delete_model(self, request, obj):
        record_deleted(request.user, obj, request=request)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            record_deleted(request.user, obj, request=request)
        super().delete_queryset(request, queryset)
