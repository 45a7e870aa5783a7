"""Signed one-click links in notifications.

A link binds the alert, the action and the episode (fingerprint + when it fired), so it cannot
be turned against another alert, and it dies when its episode resolves or after
ACK_LINK_MAX_AGE_HOURS. Following it still needs a logged-in user: the signature proves where
the link came from, not who clicked it.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "vigil.alerts.link"
ACKNOWLEDGE = "acknowledge"


@dataclass(frozen=True)
class SignedAction:
    alert_id: str
    action: str
    episode: str


def sign(alert, action: str = ACKNOWLEDGE) -> str:
    return signing.dumps({"a": str(alert.pk), "x": action, "e": alert.episode}, salt=SALT)


def unsign(token: str) -> SignedAction:
    """The action a token carries; raises signing.BadSignature if it was not made here, and
    signing.SignatureExpired if it is older than ACK_LINK_MAX_AGE_HOURS."""
    data = signing.loads(token, salt=SALT, max_age=settings.ACK_LINK_MAX_AGE_HOURS * 3600)
    try:
        return SignedAction(str(data["a"]), str(data["x"]), str(data["e"]))
    except (KeyError, TypeError) as error:
        raise signing.BadSignature("malformed link") from error


def acknowledge_url(alert) -> str:
    return settings.VIGIL_BASE_URL + reverse("alerts:acknowledge_link", args=[sign(alert)])


def alert_url(alert) -> str:
    return settings.VIGIL_BASE_URL + alert.get_absolute_url()


def alert_url_of_list() -> str:
    return settings.VIGIL_BASE_URL + "/alerts/"


def base_url_mismatch(request) -> str:
    """Why notification links would not lead back to where this browser reaches Vigil, or ""
    when VIGIL_BASE_URL matches the address of ``request``."""
    used = f"{request.scheme}://{request.get_host()}"
    if used.lower() == settings.VIGIL_BASE_URL.lower():
        return ""
    return (
        f"Links in notifications start with {settings.VIGIL_BASE_URL} (VIGIL_BASE_URL), "
        f"but this page was reached at {used}: set VIGIL_BASE_URL to the address people use."
    )
