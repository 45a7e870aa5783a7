"""The Admins' ingest tokens page: list, create (the token is shown once), revoke."""

from django import forms
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.permissions import Role, role_required
from ingestion.models import IngestToken


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
