"""The time zone each request shows times in: the user's profile setting, else the browser's
(which static/js/theme.js keeps in the BROWSER_TIME_ZONE_COOKIE), else UTC. Templates format
datetimes in it; charts.js converts the charts' UTC times to it (base.html names it)."""

import zoneinfo
from functools import cache

from django.utils import timezone

BROWSER_TIME_ZONE_COOKIE = "vigil_tz"


@cache
def names() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def zone_of(name: str) -> zoneinfo.ZoneInfo | None:
    """The zone an IANA ``name`` names, None for anything else."""
    if name not in names():
        return None
    return zoneinfo.ZoneInfo(name)


def chosen_zone(user, cookies) -> zoneinfo.ZoneInfo:
    """The profile's zone, else the browser's, else UTC."""
    profile = getattr(user, "profile", None) if getattr(user, "is_authenticated", False) else None
    for name in (profile.time_zone if profile else "", cookies.get(BROWSER_TIME_ZONE_COOKIE, "")):
        zone = zone_of(name)
        if zone is not None:
            return zone
    return zoneinfo.ZoneInfo("UTC")


class TimeZoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        timezone.activate(chosen_zone(request.user, request.COOKIES))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
