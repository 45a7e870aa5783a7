from django.urls import path

from dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.overview_page, name="overview"),
    path("instances/<uuid:pk>/", views.instance_detail, name="instance"),
    path("alerts/", views.alerts_page, name="alerts"),
    path("alerts/<uuid:pk>/", views.alert_detail, name="alert"),
    path("alerts/<uuid:pk>/acknowledge", views.alert_acknowledge, name="alert_acknowledge"),
    path("alerts/<uuid:pk>/resolve", views.alert_resolve, name="alert_resolve"),
    path("alerts/<uuid:pk>/silence", views.alert_silence, name="alert_silence"),
    path("alerts/<uuid:pk>/unsilence", views.alert_unsilence, name="alert_unsilence"),
    path("rules/", views.rules_page, name="rules"),
    path("rules/new/", views.rule_create, name="rule_create"),
    path("rules/<int:pk>/edit/", views.rule_edit, name="rule_edit"),
    path("rules/<int:pk>/enabled", views.rule_enabled, name="rule_enabled"),
    path("rules/<int:pk>/delete/", views.rule_delete, name="rule_delete"),
    path("channels/", views.channels_page, name="channels"),
    path("channels/new/<str:kind>/", views.channel_create, name="channel_create"),
    path("channels/<int:pk>/", views.channel_edit, name="channel_edit"),
    path("channels/<int:pk>/test", views.channel_test, name="channel_test"),
    path("channels/<int:pk>/delete", views.channel_delete, name="channel_delete"),
    path("explore/", views.explore_page, name="explore"),
    path("explore/data.csv", views.explore_csv, name="explore_csv"),
    path("explore/suggest", views.explore_suggest, name="explore_suggest"),
]
