from django.contrib import admin
from django.db import models

from checks.models import Check, CheckGroup, Ping


class PingInline(admin.TabularInline):
    model = Ping
    fields = ["created", "kind", "exit_status", "duration", "remote_addr", "user_agent", "body"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False


@admin.register(CheckGroup)
class CheckGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "status_page"]
    readonly_fields = ["ping_key"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Check)
class CheckAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "target", "state", "last_run_at", "last_reason", "paused"]
    list_filter = ["kind", "state", "paused"]
    # A URL typed without a scheme is taken as https (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    search_fields = ["name", "url", "host"]
    readonly_fields = [
        "id",
        "badge_key",
        "instance",
        "state",
        "failures",
        "next_run_at",
        "last_run_at",
        "last_duration",
        "last_reason",
        "certificate_expires_at",
        "last_ping_at",
        "started_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "kind", "paused", "group", "slug"]}),
        ("HTTP", {"fields": ["url", "http_method", "http_headers", "http_body",
                             "expected_statuses", "keyword", "keyword_absent", "json_path",
                             "json_expected",
                             "follow_redirects", "max_redirects", "ignore_tls_errors",
                             "certificate_warning_days", "certificate_critical_days"]}),
        ("TCP, ICMP and DNS", {"fields": ["host", "port", "dns_record_type", "dns_expected",
                                          "dns_resolver"]}),
        ("Schedule", {"fields": ["interval_seconds", "timeout_seconds", "retries",
                                 "jitter_seconds"]}),
        ("Heartbeat", {"fields": ["period_seconds", "grace_seconds", "cron", "time_zone"]}),
        ("State", {"fields": readonly_fields}),
    ]  # fmt: skip

    actions = ["pause", "resume"]

    @admin.action(description="Pause the selected checks")
    def pause(self, request, queryset) -> None:
        for check in queryset:
            check.paused = True
            check.save()

    @admin.action(description="Resume the selected checks")
    def resume(self, request, queryset) -> None:
        for check in queryset:
            check.paused = False
            check.save()

    def get_inlines(self, request, obj):
        return [PingInline] if obj is not None and obj.is_heartbeat else []
