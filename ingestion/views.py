"""The Admins' ingest tokens page (list, create — the token is shown once —, revoke), and
``/federate`` for Prometheus servers that scrape Vigil."""

import base64
import binascii
from functools import wraps

from django import forms
from django.contrib.auth.decorators import login_not_required
from django.db import DataError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import Role, has_role, role_required
from ingestion import federation
from ingestion.exposition import CONTENT_TYPE, TextExposition
from ingestion.models import IngestToken
from instances import store


class TokenForm(forms.ModelForm):
    class Meta:
        model = IngestToken
        fields = ["name", "scope"]


def _page(request, form, created=None, plain="", status=200):
    tokens = IngestToken.objects.select_related("created_by")
    context = {"tokens": tokens, "form": form, "created": created, "plain": plain}
    return render(request, "ingestion/tokens.html", context, status=status)


@role_required(Role.ADMIN)
def token_list(request):
    """Every token, newest first; POST creates one and shows its value this once."""
    if request.method != "POST":
        return _page(request, TokenForm())
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    token, plain = IngestToken.issue(
        form.cleaned_data["name"], form.cleaned_data["scope"], created_by=request.user
    )
    return _page(request, TokenForm(), created=token, plain=plain, status=201)


@require_POST
@role_required(Role.ADMIN)
def token_revoke(request, pk):
    token = get_object_or_404(IngestToken.objects.select_related("created_by"), pk=pk)
    token.revoke(actor=request.user)
    if request.htmx:
        return render(request, "ingestion/partials/token_row.html", {"token": token})
    return redirect("ingestion:tokens")


@login_not_required
@require_GET
def federate(request):
    """The latest value of every series matching a ``match[]`` selector, in the text format.

    For a Prometheus scraping Vigil (``honor_labels: true`` keeps the ``instance`` label, the
    agent id): authenticated by an API token (``Authorization: Bearer``) or a Viewer's session.
    """
    if not may_read(request):
        response = _text("Send Authorization: Bearer <token>, or log in.\n", 401)
        response["WWW-Authenticate"] = 'Bearer realm="vigil"'
        return response
    raw = request.GET.getlist("match[]")
    if not raw or len(raw) > federation.MAX_SELECTORS:
        return _text(f"give 1 to {federation.MAX_SELECTORS} match[] selectors\n", 400)
    try:
        selectors = [federation.parse_selector(text) for text in raw]
        values = store.latest_matching(selectors, since=timezone.now() - federation.LOOKBACK)
    except (ValueError, DataError) as error:
        return _text(f"{str(error).splitlines()[0]}\n", 400)
    page = TextExposition.render(
        (value.name, {**value.labels, "instance": value.agent_id}, value.value, value.ts)
        for value in values
    )
    return HttpResponse(page, content_type=CONTENT_TYPE)


def may_read(request) -> bool:
    """A Viewer's session, or any live API token (a read needs no write scope)."""
    return has_role(request.user, Role.VIEWER) or _token_of(request) is not None


def _token_of(request) -> IngestToken | None:
    """The live token of ``Authorization: Bearer``, or of basic auth's password: clients that
    only speak basic auth (promtool, some Grafana set-ups) send the token as the password."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            credentials = base64.b64decode(credentials.strip()).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return None
    elif scheme.lower() != "bearer":
        return None
    return IngestToken.authenticate(credentials.strip())


def _text(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def may_write(request) -> bool:
    """A live API token with write scope. A session is not enough: these endpoints take JSON
    from other programs and are not protected against cross-site requests."""
    token = _token_of(request)
    return token is not None and token.can_write


def readers_and_writers(view):
    """For the Alertmanager API: reads as ``readers_only``, changes for ``may_write``."""

    @login_not_required
    @wraps(view)
    def checked(request, *args, **kwargs):
        allowed = may_read if request.method in ("GET", "HEAD") else may_write
        if not allowed(request):
            status = 403 if may_read(request) else 401
            return JsonResponse(
                "send a token with write scope, or log in", status=status, safe=False
            )
        return view(request, *args, **kwargs)

    return checked


def readers_only(view):
    """For the Prometheus query API: a 401 in its JSON error shape unless ``may_read``."""

    @login_not_required
    @wraps(view)
    def checked(request, *args, **kwargs):
        if not may_read(request):
            response = JsonResponse(
                {"status": "error", "errorType": "unauthorized",
                 "error": "send Authorization: Bearer <token>, or log in"},
                status=401,
            )  # fmt: skip
            response["WWW-Authenticate"] = 'Bearer realm="vigil"'
            return response
        return view(request, *args, **kwargs)

    return checked
