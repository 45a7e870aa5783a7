from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.permissions import Role, has_role, login_redirect


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Every page needs a session, except the paths that authenticate otherwise or not at all.

    The API authenticates with bearer tokens; health and metrics endpoints are for load
    balancers and Prometheus; the login pages must be reachable to log in (and the pages
    under /accounts/ that need more check it with ``role_required``).
    """

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith(settings.LOGIN_EXEMPT_PREFIXES):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)

    def handle_no_permission(self, request, view_func):
        # An HTMX partial must not swap the login page into the fragment it asked for.
        return login_redirect(request)


class AdminMfaRequiredMiddleware:
    """With MFA_REQUIRED_FOR_ADMINS, an Admin without an authenticator app must set one up first.

    Until then every page sends them to the TOTP setup; only the setup itself, logging in and
    out, and the paths that do not use sessions stay reachable.
    """

    reachable = (
        "/accounts/2fa/",
        "/accounts/login/",
        "/accounts/logout/",
        "/accounts/reauthenticate/",
        "/api/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/static/",
        "/ping/",
        "/badge/",
        "/status/",
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.MFA_REQUIRED_FOR_ADMINS and self.needs_totp(request):
            return mfa_setup_redirect(request)
        return self.get_response(request)

    def needs_totp(self, request) -> bool:
        if request.path_info.startswith(self.reachable):
            return False
        user = getattr(request, "user", None)
        if user is None or not has_role(user, Role.ADMIN):
            return False
        return not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def mfa_setup_redirect(request) -> HttpResponse:
    url = reverse("mfa_activate_totp")
    if getattr(request, "htmx", False):
        return HttpResponse(status=403, headers={"HX-Redirect": url})
    messages.warning(request, "Admins must set up an authenticator app before going on.")
    return redirect(url)
