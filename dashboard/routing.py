"""Websocket routes of the live dashboard (config/asgi.py mounts them)."""

from django.urls import path

from dashboard import consumers

websocket_urlpatterns = [
    path("ws/overview/", consumers.OverviewConsumer.as_asgi()),
    path("ws/instances/<uuid:pk>/", consumers.InstanceConsumer.as_asgi()),
    path("ws/dashboards/<uuid:pk>/", consumers.DashboardConsumer.as_asgi()),
    path("ws/checks/", consumers.ChecksConsumer.as_asgi()),
    path("ws/checks/<uuid:pk>/", consumers.CheckConsumer.as_asgi()),
    path("ws/backups/", consumers.BackupsConsumer.as_asgi()),
]
