from django.urls import path

from checks import views
from checks.models import Ping

urlpatterns = [
    path("ping/<uuid:uuid>", views.ping),
    path("ping/<uuid:uuid>/start", views.ping, {"action": Ping.Kind.START}),
    path("ping/<uuid:uuid>/fail", views.ping, {"action": Ping.Kind.FAIL}),
    path("ping/<uuid:uuid>/<int:exit_status>", views.ping),
    path("badge/<str:key>.svg", views.badge, name="check_badge"),
    path("badge/<str:key>/uptime.svg", views.badge, {"kind": "uptime"}, name="check_uptime_badge"),
]
