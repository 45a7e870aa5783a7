"""The backups page (config/urls.py mounts it under /backups/)."""

from django.urls import path

from backups import views

app_name = "backups"
urlpatterns = [
    path("", views.backup_list, name="list"),
    path("back-up-now", views.back_up_now, name="back_up_now"),
    path("<int:pk>/download", views.download, name="download"),
]
