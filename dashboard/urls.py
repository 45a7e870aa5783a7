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
    path("dashboards/", views.dashboards_page, name="dashboards"),
    path("dashboards/new/", views.dashboard_create, name="dashboard_create"),
    path("dashboards/import/", views.dashboard_import, name="dashboard_import"),
    path("dashboards/<uuid:pk>/", views.dashboard_page, name="dashboard"),
    path("dashboards/<uuid:pk>/edit/", views.dashboard_edit, name="dashboard_edit"),
    path("dashboards/<uuid:pk>/delete", views.dashboard_delete, name="dashboard_delete"),
    path("dashboards/<uuid:pk>/export.json", views.dashboard_export, name="dashboard_export"),
    path(
        "dashboards/<uuid:pk>/versions/<int:version>/rollback",
        views.dashboard_rollback,
        name="dashboard_rollback",
    ),
    path("dashboards/<uuid:pk>/panels/new/", views.panel_create, name="panel_create"),
    path("dashboards/<uuid:pk>/panels/preview", views.panel_preview, name="panel_preview"),
    path("dashboards/<uuid:pk>/panels/<uuid:panel_pk>/", views.dashboard_panel, name="panel"),
    path("dashboards/<uuid:pk>/panels/<uuid:panel_pk>/edit/", views.panel_edit, name="panel_edit"),
    path(
        "dashboards/<uuid:pk>/panels/<uuid:panel_pk>/arrange",
        views.panel_arrange,
        name="panel_arrange",
    ),
    path(
        "dashboards/<uuid:pk>/panels/<uuid:panel_pk>/delete",
        views.panel_delete,
        name="panel_delete",
    ),
]
