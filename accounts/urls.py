from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("users/", views.user_list, name="users"),
    path("users/<int:pk>/role", views.user_role_change, name="user_role"),
    path("users/<int:pk>/active", views.user_active, name="user_active"),
    path("users/<int:pk>/mfa-reset", views.user_mfa_reset, name="user_mfa_reset"),
    path("users/<int:pk>/invite", views.user_invite, name="user_invite"),
    path("audit/", views.audit_log, name="audit"),
    path("profile/", views.profile, name="profile"),
]
