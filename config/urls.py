from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from config import monitoring
from config.api import api

urlpatterns = [
    path("healthz", monitoring.healthz, name="healthz"),
    path("readyz", monitoring.readyz, name="readyz"),
    path("metrics", monitoring.metrics, name="metrics"),
    path("api/v1/", api.urls),
    path("api/docs", RedirectView.as_view(url="/api/v1/docs", permanent=False)),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("", include("dashboard.urls")),
]
