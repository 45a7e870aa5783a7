"""Where probes may connect: the outbound safety of checks.

A check's target is typed by people who may not own the network Vigil runs in, so a probe must
not become a way into it: link-local addresses (cloud metadata services at 169.254.169.254,
fe80::/10) are never probed, and loopback and private ranges only when CHECKS_ALLOW_PRIVATE is
set. Names are resolved here once and the probe connects to the address that was allowed, so a
name that resolves differently the second time (DNS rebinding) cannot slip past.
"""

import ipaddress
import socket

from django.conf import settings


class TargetBlocked(Exception):
    """The target is not one probes may reach; the message says why, for the check's page."""


def blocked_reason(address: str) -> str | None:
    """Why probes may not connect to the IP ``address``, or None when they may."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_link_local:
        return f"{ip} is link-local; probes never reach link-local addresses"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return f"{ip} is not a unicast address"
    if (ip.is_loopback or ip.is_private) and not settings.CHECKS_ALLOW_PRIVATE:
        return f"{ip} is a loopback or private address (set CHECKS_ALLOW_PRIVATE=1 to allow)"
    return None


def is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def literal_address_reason(host: str) -> str | None:
    """For validating a form: why ``host`` is blocked if it is an IP literal (names are only
    judged when a probe resolves them)."""
    try:
        return blocked_reason(host.strip("[]"))
    except ValueError:
        return None


def resolve_allowed(host: str, port: int) -> str:
    """The first address of ``host`` that probes may connect to.

    Raises TargetBlocked when the name does not resolve or any of its addresses is blocked
    (one blocked address blocks the name: which one a client picks is not ours to choose).
    """
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise TargetBlocked(f"{host} does not resolve: {error}") from error
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        reason = blocked_reason(address)
        if reason is not None:
            raise TargetBlocked(reason)
    if not addresses:
        raise TargetBlocked(f"{host} has no addresses")
    return addresses[0]
