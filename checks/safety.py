"""Where probes may connect: instances/outbound.py's rules, with loopback and private addresses
allowed only by CHECKS_ALLOW_PRIVATE."""

from django.conf import settings

from instances.outbound import TargetBlocked, is_ip_address
from instances.outbound import blocked_reason as outbound_blocked_reason
from instances.outbound import resolve_allowed as outbound_resolve_allowed

__all__ = ["TargetBlocked", "blocked_reason", "is_ip_address", "literal_address_reason"]

PRIVATE_SETTING = "CHECKS_ALLOW_PRIVATE"


def blocked_reason(address: str) -> str | None:
    """Why probes may not connect to the IP ``address``, or None when they may."""
    return outbound_blocked_reason(
        address, allow_private=settings.CHECKS_ALLOW_PRIVATE, private_setting=PRIVATE_SETTING
    )


def literal_address_reason(host: str) -> str | None:
    """For validating a form: why ``host`` is blocked if it is an IP literal (names are only
    judged when a probe resolves them)."""
    try:
        return blocked_reason(host.strip("[]"))
    except ValueError:
        return None


def resolve_allowed(host: str, port: int) -> str:
    """The first address of ``host`` that probes may connect to (TargetBlocked if none)."""
    return outbound_resolve_allowed(
        host, port, allow_private=settings.CHECKS_ALLOW_PRIVATE, private_setting=PRIVATE_SETTING
    )
