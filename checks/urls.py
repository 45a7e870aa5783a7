from django.urls import path

from checks import views
from checks.models import Ping

urlpatterns = [
    path("ping/<uuid:uuid>", views.ping),
    path("ping/<uuid:uuid>/start", views.ping, {"action": Ping.Kind.START}),
    path("ping/<uuid:uuid>/fail", views.ping, {"action": Ping.Kind.FAIL}),
    path("ping/<uuid:uuid>/<int:exit_status>", views.ping),
    path("ping/<str:ping_key>/<slug:slug>", views.ping_by_slug),
    path("ping/<str:ping_key>/<slug:slug>/start", views.ping_by_slug, {"action": Ping.Kind.START}),
    path("ping/<str:ping_key>/<slug:slug>/fail", views.ping_by_slug, {"action": Ping.Kind.FAIL}),
    path("ping/<str:ping_key>/<slug:slug>/<int:exit_status>", views.ping_by_slug),
    path("status/<slug:slug>/", views.status_page, name="status_page"),
    path("badge/<str:key>.svg", views.badge, name="check_badge"),
    path("badge/<str:key>/uptime.svg", views.badge, {"kind": "uptime"}, name="check_uptime_badge"),
]
