from django.urls import path

from dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.overview_page, name="overview"),
    path("instances/<uuid:pk>/", views.instance_detail, name="instance"),
    path("alerts/", views.alerts_page, name="alerts"),
    path("alerts/<uuid:pk>/acknowledge", views.alert_acknowledge, name="alert_acknowledge"),
    path("alerts/<uuid:pk>/resolve", views.alert_resolve, name="alert_resolve"),
    path("explore/", views.explore_page, name="explore"),
    path("explore/data.csv", views.explore_csv, name="explore_csv"),
]
