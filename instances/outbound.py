"""Where Vigil's own outbound connections may go: checks' probes and the scraper.

Targets are typed by people who may not own the network Vigil runs in, so a connection must not
become a way into it: link-local addresses (cloud metadata services at 169.254.169.254,
fe80::/10) are never reached, and loopback and private ranges only where the caller's setting
allows them. Names are resolved here once and the caller connects to the address that was
allowed, so a name that resolves differently the second time (DNS rebinding) cannot slip past.
"""

import ipaddress
import socket


class TargetBlocked(Exception):
    """The target is not one Vigil may reach; the message says why, for the page that shows it."""


def blocked_reason(address: str, *, allow_private: bool, private_setting: str) -> str | None:
    """Why Vigil may not connect to the IP ``address``, or None when it may; loopback and
    private addresses pass only with ``allow_private`` (the setting ``private_setting``)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_link_local:
        return f"{ip} is link-local; probes never reach link-local addresses"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return f"{ip} is not a unicast address"
    if (ip.is_loopback or ip.is_private) and not allow_private:
        return f"{ip} is a loopback or private address (set {private_setting}=1 to allow)"
    return None


def is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def resolve_allowed(host: str, port: int, *, allow_private: bool, private_setting: str) -> str:
    """The first address of ``host`` that Vigil may connect to.

    Raises TargetBlocked when the name does not resolve or any of its addresses is blocked
    (one blocked address blocks the name: which one a client picks is not ours to choose).
    """
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise TargetBlocked(f"{host} does not resolve: {error}") from error
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        reason = blocked_reason(
            address, allow_private=allow_private, private_setting=private_setting
        )
        if reason is not None:
            raise TargetBlocked(reason)
    if not addresses:
        raise TargetBlocked(f"{host} has no addresses")
    return addresses[0]
