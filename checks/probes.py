"""The probes: one function per kind of check, each returning a ProbeResult and never raising.

Probes run in worker threads (checks/runner.py) and touch only the network, never the
database: they read a check's plain fields and report. Every network step is bounded by the
check's timeout, and every address is vetted by checks/safety.py before a socket opens.

HTTP uses http.client rather than a higher-level client because the probe must connect to the
very address safety allowed (with the URL's host for SNI and Host), read the peer certificate
whether or not it verified, and judge every redirect hop's target before following it.
"""

import http.client
import json
import logging
import os
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin, urlsplit

import dns.exception
import dns.resolver
import icmplib
from cryptography import x509

from checks.safety import TargetBlocked, blocked_reason, resolve_allowed

logger = logging.getLogger(__name__)

# How much of a response body a keyword is looked for in.
BODY_LIMIT_BYTES = 1_000_000
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass
class ProbeResult:
    """What one probe found; ``reason`` says why it failed (empty when it succeeded)."""

    success: bool
    duration: float
    reason: str = ""
    http_status: int | None = None
    certificate_expires_at: datetime | None = None
    dns_lookup_seconds: float | None = None
    packet_loss: float | None = None


class ProbeFailed(Exception):
    """A probe's step failed; the message is the reason shown on the check."""


def status_matches(expected: str, status: int) -> bool:
    """Whether ``status`` is in ``expected``, a list like ``200-299,301``."""
    for part in expected.split(","):
        low, _, high = part.strip().partition("-")
        if int(low) <= status <= int(high or low):
            return True
    return False


def run_probe(check) -> ProbeResult:
    """Probe ``check`` once by its kind; failures of any sort come back as a failed result."""
    started = time.monotonic()
    try:
        return PROBES[check.kind](check, started + check.timeout_seconds)
    except (ProbeFailed, TargetBlocked) as error:
        return ProbeResult(False, time.monotonic() - started, str(error))
    except TimeoutError:
        return ProbeResult(
            False, time.monotonic() - started, f"no answer within {check.timeout_seconds:g} s"
        )
    except OSError as error:
        return ProbeResult(False, time.monotonic() - started, _os_error_reason(error))
    except Exception as error:
        # A probe's bug must fail its own check, not the batch of checks it runs in.
        logger.exception("probe of check %s crashed", check.pk)
        return ProbeResult(False, time.monotonic() - started, f"probe error: {error}")


def _remaining(deadline: float, timeout: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return min(left, timeout)


def _os_error_reason(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__


# --- HTTP(S) --------------------------------------------------------------------------------


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the vetted ``address``; Host stays the URL's."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to the vetted ``address``; SNI, certificate name and Host stay the URL's."""

    def __init__(self, host: str, port: int, address: str, timeout: float, context):
        super().__init__(host, port, timeout=timeout, context=context)
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


@dataclass
class _Answer:
    status: int
    location: str | None
    body: bytes
    certificate_expires_at: datetime | None


def _tls_context(verify: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _fetch(check, url: str, method: str, body: bytes | None, deadline: float) -> _Answer:
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ProbeFailed(f"{url} is not an http or https URL")
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    address = resolve_allowed(parts.hostname, port)
    timeout = _remaining(deadline, check.timeout_seconds)
    if parts.scheme == "https":
        connection = _PinnedHTTPSConnection(
            parts.hostname, port, address, timeout, _tls_context(not check.ignore_tls_errors)
        )
    else:
        connection = _PinnedHTTPConnection(parts.hostname, port, address, timeout)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        try:
            connection.request(method, target, body=body, headers=dict(check.http_headers))
        except ssl.SSLCertVerificationError as error:
            raise ProbeFailed(f"TLS certificate is not valid: {error.verify_message}") from error
        except ssl.SSLError as error:
            raise ProbeFailed(f"TLS handshake failed: {error.reason or error}") from error
        # The response takes the socket over from the connection when the server will close.
        sock = connection.sock
        expires_at = None
        if parts.scheme == "https":
            der = sock.getpeercert(binary_form=True)
            expires_at = x509.load_der_x509_certificate(der).not_valid_after_utc
        sock.settimeout(_remaining(deadline, check.timeout_seconds))
        response = connection.getresponse()
        content = bytearray()
        while not response.isclosed() and len(content) < BODY_LIMIT_BYTES:
            sock.settimeout(_remaining(deadline, check.timeout_seconds))
            chunk = response.read(min(65536, BODY_LIMIT_BYTES - len(content)))
            if not chunk:
                break
            content += chunk
        response.close()
        return _Answer(response.status, response.getheader("Location"), bytes(content), expires_at)
    except http.client.HTTPException as error:
        raise ProbeFailed(f"not an HTTP answer: {type(error).__name__}") from error
    finally:
        connection.close()


def probe_http(check, deadline: float) -> ProbeResult:
    """Request the URL (following redirects if asked) and judge status and keyword."""
    started = time.monotonic()
    url, method = check.url, check.http_method
    body = check.http_body.encode() if check.http_body else None
    for _hop in range(check.max_redirects + 1):
        answer = _fetch(check, url, method, body, deadline)
        if not (check.follow_redirects and answer.status in REDIRECT_STATUSES):
            break
        if not answer.location:
            raise ProbeFailed(f"HTTP {answer.status} redirect without a Location")
        url = urljoin(url, answer.location)
        if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
            method, body = "GET", None
    else:
        raise ProbeFailed(f"more than {check.max_redirects} redirects (last to {url})")
    result = ProbeResult(
        True,
        time.monotonic() - started,
        http_status=answer.status,
        certificate_expires_at=answer.certificate_expires_at,
    )
    if not status_matches(check.expected_statuses, answer.status):
        result.success = False
        result.reason = f"HTTP {answer.status}, expected {check.expected_statuses}"
    elif check.keyword and (check.keyword.encode() in answer.body) == check.keyword_absent:
        result.success = False
        result.reason = (
            f"keyword {check.keyword!r} "
            f"{'found, expected absent' if check.keyword_absent else 'not found in the response'}"
        )
    elif check.json_path:
        value = json_value(answer.body, check.json_path)
        if value != check.json_expected:
            result.success = False
            result.reason = f"JSON {check.json_path} is {value}, expected {check.json_expected}"
    return result


def json_value(body: bytes, path: str) -> str:
    """The value at the dotted ``path`` of a JSON body, as JSON writes it (strings bare), or
    what stood in the way, in angle brackets."""
    try:
        value = json.loads(body)
    except ValueError:
        return "<not JSON>"
    for step in path.split("."):
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return "<missing>"
    return value if isinstance(value, str) else json.dumps(value)


# --- TCP ------------------------------------------------------------------------------------


def probe_tcp(check, deadline: float) -> ProbeResult:
    """Open a TCP connection to host:port and close it."""
    started = time.monotonic()
    address = resolve_allowed(check.host, check.port)
    try:
        with socket.create_connection(
            (address, check.port), _remaining(deadline, check.timeout_seconds)
        ):
            pass
    except ConnectionRefusedError as error:
        raise ProbeFailed(f"{check.host}:{check.port} refused the connection") from error
    return ProbeResult(True, time.monotonic() - started)


# --- DNS ------------------------------------------------------------------------------------


def resolver_address(text: str) -> tuple[str, int]:
    """``1.1.1.1``, ``127.0.0.1:5353`` or ``[::1]:5353`` as (address, port)."""
    match = re.fullmatch(r"\[(?P<v6>[^\]]+)\](?::(?P<port6>\d+))?|(?P<v4>[^:]+)(?::(?P<port>\d+))?",
                         text.strip())  # fmt: skip
    if match is None:
        return text.strip(), 53
    if match["v6"]:
        return match["v6"], int(match["port6"] or 53)
    return match["v4"], int(match["port"] or 53)


def probe_dns(check, deadline: float) -> ProbeResult:
    """Resolve the name's record of the check's type; with an expected value, one answer
    must equal it."""
    started = time.monotonic()
    resolver = dns.resolver.Resolver(configure=not check.dns_resolver)
    if check.dns_resolver:
        address, port = resolver_address(check.dns_resolver)
        reason = blocked_reason(address)
        if reason is not None:
            raise TargetBlocked(reason)
        resolver.nameservers, resolver.port = [address], port
    try:
        answer = resolver.resolve(
            check.host,
            check.dns_record_type,
            lifetime=_remaining(deadline, check.timeout_seconds),
            raise_on_no_answer=False,
        )
    except dns.resolver.LifetimeTimeout as error:
        raise ProbeFailed(f"no DNS answer within {check.timeout_seconds:g} s") from error
    except dns.exception.DNSException as error:
        raise ProbeFailed(f"DNS lookup failed: {error}") from error
    elapsed = time.monotonic() - started
    values = [record.to_text().rstrip(".") for record in answer]
    result = ProbeResult(True, elapsed, dns_lookup_seconds=elapsed)
    if not values:
        result.success, result.reason = False, f"no {check.dns_record_type} record"
    elif check.dns_expected and check.dns_expected.rstrip(".") not in values:
        result.success = False
        result.reason = (
            f"{check.dns_record_type} is {', '.join(values)}, expected {check.dns_expected}"
        )
    return result


# --- ICMP -----------------------------------------------------------------------------------

ICMP_PACKETS = 3


def probe_icmp(check, deadline: float) -> ProbeResult:
    """Ping the host a few times; up when any answer comes back, with the share of pings
    lost (all of them when it is down). Unprivileged (datagram ICMP)
    unless running as root, which the kernel's ping_group_range may require."""
    address = resolve_allowed(check.host, 0)
    started = time.monotonic()
    try:
        host = icmplib.ping(
            address,
            count=ICMP_PACKETS,
            interval=0.2,
            timeout=_remaining(deadline, check.timeout_seconds),
            privileged=os.geteuid() == 0,
        )
    except icmplib.ICMPLibError as error:
        raise ProbeFailed(f"ping failed: {error}") from error
    if not host.is_alive:
        reason = f"no answer to {ICMP_PACKETS} pings"
        return ProbeResult(False, time.monotonic() - started, reason, packet_loss=1.0)
    reason = f"{host.packet_loss:.0%} packet loss" if host.packet_loss else ""
    return ProbeResult(True, host.avg_rtt / 1000, reason, packet_loss=host.packet_loss)


PROBES: dict[str, Callable[..., ProbeResult]] = {
    "http": probe_http,
    "tcp": probe_tcp,
    "dns": probe_dns,
    "icmp": probe_icmp,
}
