from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired

from accounts.permissions import login_redirect


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
