from django.urls import path

from checks import views
from checks.models import Ping

urlpatterns = [
    path("<uuid:uuid>", views.ping),
    path("<uuid:uuid>/start", views.ping, {"action": Ping.Kind.START}),
    path("<uuid:uuid>/fail", views.ping, {"action": Ping.Kind.FAIL}),
    path("<uuid:uuid>/<int:exit_status>", views.ping),
]
