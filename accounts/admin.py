from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from accounts.auditing import AuditedAdmin
from accounts.models import AuditEvent
from accounts.permissions import require_recent_login, role_changed, user_role

User = get_user_model()


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log is append-only, for Admins and superusers alike."""

    list_display = ["created", "actor_display", "action", "target_type", "target_label", "ip"]
    list_filter = ["action", "created"]
    search_fields = ["actor_label", "action", "target_label", "target_id"]
    date_hierarchy = "created"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="actor", ordering="actor_label")
    def actor_display(self, obj):
        return obj.actor_display


admin.site.unregister(User)


@admin.register(User)
class VigilUserAdmin(AuditedAdmin, UserAdmin):
    """Roles are assigned by group membership (Viewer, Operator, Admin); users made, changed or
    deleted here, and their roles, are audited as such."""

    list_display = ["username", "email", "role", "is_active", "last_login"]
    list_filter = ["groups", "is_active", "is_superuser"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "POST":
            require_recent_login(request)  # roles and passwords are changed here
        return super().change_view(request, object_id, form_url, extra_context)

    def get_readonly_fields(self, request, obj=None):
        """Only a superuser makes superusers or hands out single permissions: an Admin's
        powers are the Admin role's, and cannot be raised from here."""
        readonly = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            readonly += ["is_superuser", "user_permissions"]
        return readonly

    def has_change_permission(self, request, obj=None) -> bool:
        # Changing a superuser's password or e-mail would be a way to become them.
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        if not request.user.is_superuser:
            queryset = queryset.filter(is_superuser=False)
        super().delete_queryset(request, queryset)

    @admin.display(description="role")
    def role(self, obj):
        role = user_role(obj)
        return role.label if role else "—"

    def save_related(self, request, form, formsets, change):
        before = user_role(form.instance)
        super().save_related(request, form, formsets, change)
        role_changed(form.instance, before, user_role(form.instance), actor=request.user)
