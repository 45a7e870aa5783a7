from django.contrib import admin, messages
from django.utils import timezone

from accounts.auditing import AuditedAdmin
from alerts import lifecycle, tasks
from alerts.forms import RULE_FIELDSETS, ChannelForm
from alerts.models import (
    Alert,
    AlertRule,
    InhibitRule,
    Notification,
    NotificationChannel,
    PendingBreach,
    RecordingRule,
    Silence,
)


class NotificationInline(admin.TabularInline):
    model = Notification
    extra = 0
    can_delete = False
    fields = ["created_at", "channel", "kind", "status", "attempt", "response_code", "error"]
    readonly_fields = fields
    ordering = ["-created_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = [
        "alert_type",
        "instance",
        "severity",
        "status",
        "silenced",
        "inhibited",
        "source",
        "fired_at",
        "resolved_at",
    ]
    list_filter = ["status", "severity", "source", "silenced", "inhibited", "rule"]
    search_fields = ["alert_type", "message", "instance__name", "instance__agent_id"]
    list_select_related = ["instance"]
    readonly_fields = [
        "fingerprint",
        "created_at",
        "pending_since",
        "fired_at",
        "last_notified_at",
        # State changes go through the lifecycle: the actions below, not the form.
        "status",
        "acknowledged_at",
        "acknowledged_by",
        "resolved_at",
        "silenced",
        "inhibited",
        "occurrences",
        "last_seen_at",
        "labels",
        "value",
        "acted_by_token",
    ]
    raw_id_fields = ["instance", "rule"]
    inlines = [NotificationInline]
    actions = ["acknowledge", "resolve"]

    @admin.action(description="Acknowledge the selected alerts")
    def acknowledge(self, request, queryset):
        for alert in queryset.exclude(status=Alert.Status.RESOLVED):
            try:
                lifecycle.acknowledge(alert, request.user, note="Acknowledged in admin.")
            except lifecycle.Refused:
                continue  # resolved since the list was shown

    @admin.action(description="Resolve the selected alerts")
    def resolve(self, request, queryset):
        for alert in queryset.exclude(status=Alert.Status.RESOLVED):
            lifecycle.resolve(alert, request.user, note="Resolved in admin.")


@admin.register(RecordingRule)
class RecordingRuleAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["record", "expr", "enabled"]
    list_filter = ["enabled"]
    search_fields = ["record", "expr"]


@admin.register(AlertRule)
class AlertRuleAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = [
        "name",
        "metric",
        "aggregation",
        "window",
        "comparator",
        "warning_threshold",
        "critical_threshold",
        "for_duration",
        "scope",
        "enabled",
    ]
    list_filter = ["enabled", "scope", "aggregation"]
    list_editable = ["enabled"]
    search_fields = ["name", "metric", "description"]
    filter_horizontal = ["channels"]
    raw_id_fields = ["scope_instance"]
    fieldsets = [(title, {"fields": names}) for title, names in RULE_FIELDSETS]


@admin.register(PendingBreach)
class PendingBreachAdmin(admin.ModelAdmin):
    list_display = ["rule", "instance", "since", "severity", "value"]
    list_select_related = ["rule", "instance"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(InhibitRule)
class InhibitRuleAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["name", "source_matchers", "target_matchers", "equal", "enabled"]
    list_filter = ["enabled"]


@admin.register(Silence)
class SilenceAdmin(AuditedAdmin, admin.ModelAdmin):
    list_display = ["__str__", "rule", "instance", "severity", "starts_at", "ends_at", "created_by"]
    list_filter = ["severity"]
    raw_id_fields = ["rule", "instance"]
    readonly_fields = ["created_by", "created"]
    actions = ["expire"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="End the selected silences now")
    def expire(self, request, queryset):
        for silence in queryset.filter(ends_at__gt=timezone.now()):
            lifecycle.expire(silence, request.user)


@admin.register(NotificationChannel)
class NotificationChannelAdmin(AuditedAdmin, admin.ModelAdmin):
    """The Channels page (/channels/) has a form per kind; this one edits any kind."""

    form = ChannelForm
    fields = ChannelForm.Meta.fields
    list_display = ["name", "kind", "destination", "enabled"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]  # targets are encrypted, so not searchable
    actions = ["send_test"]

    @admin.action(description="Send a test notification")
    def send_test(self, request, queryset):
        for channel in queryset:
            tasks.dispatch_test(channel)
        self.message_user(
            request,
            f"Test notifications queued for {queryset.count()} channel(s); "
            "see the notification log for the outcome.",
            messages.SUCCESS,
        )


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "alert", "channel", "kind", "status", "attempt", "response_code"]
    list_filter = ["status", "kind", "channel"]
    list_select_related = ["alert__instance", "channel"]
    raw_id_fields = ["alert"]
    readonly_fields = [field.name for field in Notification._meta.fields]

    def has_add_permission(self, request):
        return False
