from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.http import JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.defaults import page_not_found
from django.views.generic import RedirectView

from alerts.urls_alertmanager import routes as alertmanager_routes
from api.api import api
from api.auth import readers_and_managers, readers_only
from config import monitoring
from ingestion.views import federate
from query.urls import routes as prometheus_routes

# Admin logins go through allauth too, so its rate limits (and later MFA and audit) apply.
admin.site.login = secure_admin_login(admin.site.login)


def favicon(request):
    """Browsers ask for /favicon.ico whatever a page links (JSON pages link none): no 404."""
    return redirect(static("img/favicon.svg"), permanent=True)


urlpatterns = [
    path("favicon.ico", favicon),
    path("healthz", monitoring.healthz, name="healthz"),
    path("readyz", monitoring.readyz, name="readyz"),
    path("metrics", monitoring.metrics, name="metrics"),
    path("federate", federate, name="federate"),
    path("api/v1/", api.urls),
    path("prometheus/api/v1/", include(prometheus_routes(readers_only))),
    path("alertmanager/api/v2/", include(alertmanager_routes(readers_and_managers))),
    path("api/docs", RedirectView.as_view(url="/api/v1/docs", permanent=False)),
    path("accounts/tokens/", include("ingestion.urls")),
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("backups/", include("backups.urls")),
    # Heartbeat pings (Healthchecks' API) and badges: no login; uuids and keys are the secrets.
    path("", include("checks.urls")),
    # Before the dashboard's alert pages: /alerts/ack/<token>/ is not an alert id.
    path("alerts/ack/", include("alerts.urls")),
    path("", include("dashboard.urls")),
]


def not_found(request, exception):
    """API clients get the API's JSON error envelope; people get the HTML page."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"error": "no such endpoint", "details": []}, status=404)
    return page_not_found(request, exception)


handler404 = not_found
