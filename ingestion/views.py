"""The Admins' ingest tokens page (list, create — the token is shown once —, revoke), and
``/federate`` for Prometheus servers that scrape Vigil."""

from django import forms
from django.contrib.auth.decorators import login_not_required
from django.db import DataError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import Role, require_recent_login, role_required
from api.auth import may_read, over_rate_limit, token_of
from ingestion import federation
from ingestion.exposition import CONTENT_TYPE, TextExposition
from ingestion.models import IngestToken, default_scopes
from instances import store


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    scopes = forms.MultipleChoiceField(
        choices=IngestToken.Scope.choices,
        initial=default_scopes,
        widget=forms.CheckboxSelectMultiple,
    )
    agent_patterns = forms.CharField(
        label="Agent ids",
        required=False,
        max_length=2000,
        help_text="Comma-separated patterns (web-*) it may push for; empty: any.",
    )
    expires_at = forms.DateTimeField(label="Expires", required=False)

    def clean_agent_patterns(self) -> list[str]:
        text = self.cleaned_data["agent_patterns"]
        patterns = [pattern.strip() for pattern in text.split(",") if pattern.strip()]
        if any(len(pattern) > 200 for pattern in patterns):
            raise forms.ValidationError("each pattern is at most 200 characters")
        return patterns

    def clean_expires_at(self):
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("must lie in the future")
        return expires_at


def _page(request, form, created=None, plain="", status=200):
    tokens = IngestToken.objects.select_related("created_by")
    context = {"tokens": tokens, "form": form, "created": created, "plain": plain}
    return render(request, "ingestion/tokens.html", context, status=status)


@role_required(Role.ADMIN)
def token_list(request):
    """Every token, newest first; POST creates one and shows its value this once."""
    if request.method != "POST":
        return _page(request, TokenForm())
    require_recent_login(request)
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    token, plain = IngestToken.issue(
        form.cleaned_data["name"],
        form.cleaned_data["scopes"],
        created_by=request.user,
        agent_patterns=form.cleaned_data["agent_patterns"],
        expires_at=form.cleaned_data["expires_at"],
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
    agent id): authenticated by an API token with the read scope (``Authorization: Bearer``, or
    basic auth's password) or a Viewer's session.
    """
    token = token_of(request)
    if not may_read(request, token):
        response = _text("Send Authorization: Bearer <token>, or log in.\n", 401)
        response["WWW-Authenticate"] = 'Bearer realm="vigil"'
        return response
    refusal = over_rate_limit(token)
    if refusal is not None:
        return refusal
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


def _text(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
