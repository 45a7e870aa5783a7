from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("users/", views.user_list, name="users"),
    path("users/<int:pk>/role", views.user_role_change, name="user_role"),
    path("audit/", views.audit_log, name="audit"),
]
