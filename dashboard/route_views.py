"""The Routes page: the notification routing tree, each route with what it takes from its
parent, and the form that adds, edits or deletes a route. Viewers and Operators read; Admins
change (the controls are not shown to others, and their endpoints answer them 403)."""

from django.contrib import messages
from django.db import transaction
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.auditing import record_deleted, record_saved
from accounts.permissions import Role, has_role, role_required
from alerts.forms import RouteForm, format_duration
from alerts.grouping import RouteTree
from alerts.models import Route

# Levels of indentation the page's CSS draws; deeper routes sit at the last one (the ↳ and the
# order still say whose child each is).
INDENT_LEVELS = 4

TIMINGS = (("wait", "group_wait"), ("interval", "group_interval"), ("repeat", "repeat_interval"))


def tree_rows(tree: RouteTree) -> list[dict]:
    """Each route, depth first in matching order, with its depth and its settings as they
    apply (a setting it takes from a parent is marked inherited)."""
    counts = dict(Route.objects.annotate(n=Count("groups")).values_list("pk", "n"))
    rows = []
    for route, depth in tree.walk():
        channels = tree.route_channels(route)
        rows.append(
            {
                "route": route,
                "depth": depth,
                "indent": min(depth, INDENT_LEVELS),
                "channels": channels,
                "channels_inherited": not route.channels.all() and not route.is_root,
                "group_by": tree.setting(route, "group_by"),
                "timing": [
                    (
                        label,
                        format_duration(tree.setting(route, field)),
                        getattr(route, field) is None,
                    )
                    for label, field in TIMINGS
                ],
                "groups": counts.get(route.pk, 0),
            }
        )
    return rows


@role_required(Role.VIEWER)
def routes_page(request):
    context = {
        "rows": tree_rows(RouteTree()),
        "can_edit": has_role(request.user, Role.ADMIN),
    }
    return render(request, "dashboard/routes.html", context)


@role_required(Role.ADMIN)
def route_create(request):
    return _route_form(request, Route(parent=RouteTree().root))


@role_required(Role.ADMIN)
def route_edit(request, pk):
    return _route_form(request, get_object_or_404(Route, pk=pk))


def _route_form(request, route: Route):
    """Saved and audited, then back to the tree; shown again with its errors (400) when
    refused."""
    created = route.pk is None
    form = RouteForm(request.POST or None, instance=route)
    if request.method != "POST" or not form.is_valid():
        status = 400 if request.method == "POST" else 200
        context = {"form": form, "route": route, "created": created}
        return render(request, "dashboard/route_form.html", context, status=status)
    with transaction.atomic():
        route = form.save()
        record_saved(request.user, route, form, created=created, request=request)
    messages.success(request, f"Route {route.name} {'created' if created else 'saved'}.")
    return redirect("dashboard:routes")


@require_POST
@role_required(Role.ADMIN)
def route_delete(request, pk):
    """Delete a route with the routes below it; the root stays (every alert needs one)."""
    route = get_object_or_404(Route, pk=pk)
    if route.is_root:
        messages.error(request, "The root route can not be deleted; edit it instead.")
        return redirect("dashboard:routes")
    with transaction.atomic():
        record_deleted(request.user, route, request=request)
        route.delete()
    messages.success(request, f"Route {route.name} deleted, with the routes below it.")
    return redirect("dashboard:routes")
