"""Ingest token pages (config/urls.py mounts them under /accounts/tokens/)."""

from django.urls import path

from ingestion import views

app_name = "ingestion"
urlpatterns = [
    path("", views.token_list, name="tokens"),
    path("<int:pk>/revoke", views.token_revoke, name="token_revoke"),
]
