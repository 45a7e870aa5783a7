"""Public endpoints of checks, without login.

The heartbeat ping API, compatible with Healthchecks' (https://healthchecks.io/docs/http_api/)
so existing cron wrappers work by changing only the base URL:

    /ping/<uuid>                success          /ping/<uuid>/start    a run begins
    /ping/<uuid>/fail           failure          /ping/<uuid>/<0-255>  exit status (0: success)

and the same under ``/ping/<ping key>/<slug>`` for a check with a slug in a group (the group's
ping key, as a Healthchecks project's). GET, HEAD or POST; the uuid or ping key is the
secret. A POST's body, up to 100 kB, is kept as the ping's log; a larger one is refused whole
(413) rather than cut. Answers are plain text.

Badges: /badge/<key>.svg (name and state) and /badge/<key>/uptime.svg (24 h uptime), keyed by
the check's badge key so that a badge in a public README does not give away its ping URL.

Status pages: /status/<slug>/ shows the names and states of a group's checks, when the group
has one; nothing else about them (targets, reasons, ids) is on it.
"""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from checks import badges, history
from checks.models import PING_BODY_LIMIT_BYTES, Check, CheckGroup, Ping


def _text(message: str, status: int) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def _client_address(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def ping(
    request: HttpRequest,
    uuid,
    action: str = Ping.Kind.SUCCESS,
    exit_status: int | None = None,
) -> HttpResponse:
    """Record one ping of the heartbeat ``uuid``: a run's start, success or failure, or the
    exit status it ended with."""
    return _record_ping(request, {"pk": uuid}, action, exit_status)


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def ping_by_slug(
    request: HttpRequest,
    ping_key: str,
    slug: str,
    action: str = Ping.Kind.SUCCESS,
    exit_status: int | None = None,
) -> HttpResponse:
    """Record one ping of the heartbeat ``slug`` of the group whose ping key this is."""
    return _record_ping(request, {"group__ping_key": ping_key, "slug": slug}, action, exit_status)


def _record_ping(
    request: HttpRequest, lookup: dict, action: str, exit_status: int | None
) -> HttpResponse:
    if exit_status is not None:
        if exit_status > 255:
            return _text("exit status must be 0 to 255", 400)
        action = Ping.Kind.SUCCESS if exit_status == 0 else Ping.Kind.FAIL
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > PING_BODY_LIMIT_BYTES:
        return _text(f"request body larger than {PING_BODY_LIMIT_BYTES} bytes", 413)
    body = request.read(PING_BODY_LIMIT_BYTES + 1)
    if len(body) > PING_BODY_LIMIT_BYTES:
        return _text(f"request body larger than {PING_BODY_LIMIT_BYTES} bytes", 413)
    check = Check.objects.filter(kind=Check.Kind.HEARTBEAT, **lookup).first()
    if check is None:
        return _text("not found", 404)
    try:
        check.record_ping(
            action,
            timezone.now(),
            body,
            exit_status=exit_status,
            method=request.method,
            remote_addr=_client_address(request),
            user_agent=request.headers.get("User-Agent", "")[:200],
        )
    except Check.DoesNotExist:  # deleted between the lookup and the ping
        return _text("not found", 404)
    return _text("OK", 200)


@require_http_methods(["GET", "HEAD"])
def badge(request: HttpRequest, key: str, kind: str = "state") -> HttpResponse:
    """The check's state badge, or its 24-hour uptime badge, as SVG; cached for a minute."""
    check = Check.objects.filter(badge_key=key).first()
    if check is None:
        raise Http404("no such badge")
    shown = badges.uptime_badge(check) if kind == "uptime" else badges.state_badge(check)
    response = HttpResponse(shown.svg(), content_type="image/svg+xml; charset=utf-8")
    response["Cache-Control"] = "public, max-age=60"
    return response


def status_page(request: HttpRequest, slug: str) -> HttpResponse:
    """A group's public status page: each check's name, state and 90-day uptime, and an
    overall word; no login, and nothing else about the checks."""
    group = get_object_or_404(CheckGroup, slug=slug, status_page=True)
    checks = list(group.checks.order_by("name"))
    uptimes = history.uptimes(checks, history.AVAILABILITY_WINDOWS["90 d"])
    rows = [(check.name, check.state, uptimes[check.pk]) for check in checks]
    troubled = [state for _, state, _ in rows if state in (Check.State.DOWN, Check.State.LATE)]
    response = render(
        request,
        "checks/status_page.html",
        {"group_name": group.name, "rows": rows, "troubled": len(troubled)},
    )
    response["Cache-Control"] = "public, max-age=30"
    return response
