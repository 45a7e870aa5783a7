"""Vigil host agent: measures this host (CPU, memory, swap, disks, load, network, uptime) and
sends the samples to Vigil every interval.

It needs Python 3.11+ and psutil (Debian and Ubuntu: apt install python3-psutil; elsewhere:
pip install psutil). agent/install.sh installs it with a systemd unit; by hand, copy the agent/
folder onto the host and run, from the folder holding it,
python3 -m agent --config /etc/vigil-agent/agent.toml
with a TOML file such as

url = "https://vigil.example.com"
token_file = "/etc/vigil-agent/token"   # a token from Vigil's Tokens page
# interval = 30, agent_id, name, type, region, spool, spool_max_batches, insecure = false

Every key is also an option (--url, --token-file, ...), which wins over the file. The token can
come from a file (token_file), from the environment (VIGIL_AGENT_TOKEN) or, visible to every
user in ps, from --token. Plain http:// is refused except to this host itself (loopback) unless
--insecure. While Vigil cannot be reached, batches wait in a spool file (mode 0600) and are sent
later, in order, with their original timestamps.
"""

import argparse
import enum
import hashlib
import http.client
import ipaddress
import json
import logging
import math
import os
import platform
import signal
import socket
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

AGENT_VERSION = "0.1.0"
MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")
SKIPPED_FILESYSTEMS = {"squashfs", "iso9660", "udf"}  # read-only images: always "full"
DROPPED_STATUSES = {400, 413, 415, 422}  # the batch itself is bad; resending cannot help
RETRIED_STATUSES = {408, 425, 429}  # plus every 5xx
TOKEN_ENVIRONMENT_VARIABLE = "VIGIL_AGENT_TOKEN"
CONFIG_ENVIRONMENT_VARIABLE = "VIGIL_AGENT_CONFIG"
# The spool holds the host's measurements and its directory may be shared: owner-only.
SPOOL_FILE_MODE = 0o600
SPOOL_DIRECTORY_MODE = 0o700

log = logging.getLogger("vigil.agent")


class DeliveryError(Exception):
    """A batch was not delivered.

    ``permanent``: the server will never take this batch, so it is dropped. Otherwise it is kept;
    ``retryable`` says whether trying again soon can help (not for a refused token: that needs a
    person), and ``retry_after`` is the server's requested wait in seconds, if it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        retryable: bool = True,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.permanent = permanent
        self.retryable = retryable and not permanent
        self.retry_after = retry_after


class Outcome(enum.Enum):
    """What became of a cycle's new batch."""

    SENT = "sent"
    SPOOLED = "spooled"
    DROPPED = "dropped"


@dataclass(frozen=True)
class SpooledBatch:
    key: str  # the Idempotency-Key, reused on every attempt
    body: dict


class Collector:
    """Reads this host's metrics with psutil."""

    def __init__(self):
        # cpu_percent compares with the previous call; the first call measures a short window.
        self._cpu_window: float | None = 0.25

    def collect(self) -> list[dict]:
        """One sample dict per metric and label set, all stamped with the same epoch-ms ``ts``.

        Values are finite floats; a reading that is not finite is left out.
        """
        cpu = psutil.cpu_percent(interval=self._cpu_window)
        self._cpu_window = None
        ts = int(time.time() * 1000)
        memory = psutil.virtual_memory()
        readings = [
            ("cpu_usage", cpu, "percent", {}),
            ("memory_usage", memory.percent, "percent", {}),
            # The same "used" as memory.percent: what applications cannot get back.
            ("memory_used_bytes", memory.total - memory.available, "bytes", {}),
            ("swap_usage", psutil.swap_memory().percent, "percent", {}),
        ]
        readings += [("disk_usage", pct, "percent", {"mount": m}) for m, pct in disk_usage()]
        readings += [
            ("load_average", load, "", {"period": period})
            for period, load in zip(("1m", "5m", "15m"), psutil.getloadavg(), strict=True)
        ]
        for interface, counters in psutil.net_io_counters(pernic=True).items():
            if interface != "lo":
                for direction, total in (("rx", counters.bytes_recv), ("tx", counters.bytes_sent)):
                    labels = {"interface": interface, "direction": direction}
                    readings.append(("network_bytes_total", total, "bytes", labels))
        readings.append(("uptime_seconds", time.time() - psutil.boot_time(), "seconds", {}))
        return [
            {"name": name, "value": float(value), "unit": unit, "ts": ts, "labels": labels}
            for name, value, unit, labels in readings
            if math.isfinite(value)
        ]


def disk_usage() -> list[tuple[str, float]]:
    """(mount point, percent used) for each real filesystem, once per filesystem.

    "/" always counts (in a container it is an overlay, which psutil's physical list omits);
    read-only images, file bind mounts and mounts we may not read are skipped.
    """
    seen_devices, usage = set(), []
    mounts = ["/"] + [
        part.mountpoint
        for part in psutil.disk_partitions(all=False)
        if part.fstype not in SKIPPED_FILESYSTEMS
    ]
    for mount in mounts:
        try:
            if not os.path.isdir(mount):
                continue
            device = os.stat(mount).st_dev
            percent = psutil.disk_usage(mount).percent
        except OSError:
            continue
        if device not in seen_devices:
            seen_devices.add(device)
            usage.append((mount, percent))
    return usage


def describe_host(agent_id: str, name: str, instance_type: str, region: str) -> dict:
    """The instance block sent with every batch."""
    return {
        "agent_id": agent_id,
        "name": name,
        "type": instance_type,
        "region": region,
        "endpoint": socket.gethostname(),
        "metadata": {
            "os": platform.system(),
            "kernel": platform.release(),
            "cpu_count": psutil.cpu_count(),
            "python_version": platform.python_version(),
            "agent_version": AGENT_VERSION,
        },
    }


def default_agent_id() -> str:
    """A stable id for this host: a hash of its machine id (never the raw id), else its hostname."""
    for path in MACHINE_ID_FILES:
        try:
            machine_id = Path(path).read_text().strip()
        except OSError:
            continue
        if machine_id:
            return hashlib.sha256(f"vigil-agent:{machine_id}".encode()).hexdigest()[:32]
    return socket.gethostname()


def default_spool_path() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "vigil-agent" / "spool.jsonl"


class Spool:
    """Undelivered batches, oldest first, one JSON line each, durable once ``append`` returns.

    Holds at most ``max_batches``; beyond that the oldest are dropped (and logged).
    """

    def __init__(self, path: Path, max_batches: int = 10_000):
        self.path = Path(path)
        self.max_batches = max_batches

    def __len__(self) -> int:
        try:
            with self.path.open("rb") as spool:
                return sum(1 for line in spool if line.strip())
        except FileNotFoundError:
            return 0

    def pending(self) -> list[SpooledBatch]:
        """The spooled batches, oldest first; a line torn by a crash is skipped with a warning."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        batches = []
        for number, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
                batches.append(SpooledBatch(key=entry["key"], body=entry["body"]))
            except (ValueError, KeyError, TypeError):
                if line.strip():
                    log.warning("spool %s line %d is unreadable; skipping it", self.path, number)
        return batches

    def append(self, batch: SpooledBatch) -> None:
        """Add ``batch`` as the newest entry, fsynced to disk."""
        self._make_directory()
        with open_private(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, "ab+") as spool:
            end = spool.seek(0, os.SEEK_END)
            if end:
                # After a crash mid-write the file may end in a torn line: start a fresh one.
                spool.seek(end - 1)
                if spool.read(1) != b"\n":
                    spool.write(b"\n")
            spool.write(encode_line(batch))
            spool.flush()
            os.fsync(spool.fileno())
        if len(self) > self.max_batches:
            self.replace(self.pending())

    def replace(self, batches: list[SpooledBatch]) -> None:
        """Atomically make ``batches`` (trimmed to the bound) the whole spool."""
        if len(batches) > self.max_batches:
            dropped = len(batches) - self.max_batches
            log.warning("spool is full (%d batches): dropping the oldest %d", len(batches), dropped)
            batches = batches[dropped:]
        self._make_directory()
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open_private(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "wb") as spool:
            spool.writelines(encode_line(batch) for batch in batches)
            spool.flush()
            os.fsync(spool.fileno())
        os.replace(temporary, self.path)

    def _make_directory(self) -> None:
        self.path.parent.mkdir(mode=SPOOL_DIRECTORY_MODE, parents=True, exist_ok=True)


def open_private(path: Path, flags: int, mode: str):
    """Open ``path`` as a file only its owner may read (made so if it was wider)."""
    descriptor = os.open(path, flags, SPOOL_FILE_MODE)
    os.fchmod(descriptor, SPOOL_FILE_MODE)
    return open(descriptor, mode)


def encode_line(batch: SpooledBatch) -> bytes:
    line = json.dumps({"key": batch.key, "body": batch.body}, separators=(",", ":"))
    return line.encode() + b"\n"


class Client:
    """Posts batches to ``{url}/api/v1/ingest`` with a bearer token."""

    def __init__(self, url: str, token: str, timeout: float = 10.0):
        self.ingest_url = url.rstrip("/") + "/api/v1/ingest"
        self.token = token
        self.timeout = timeout

    def send(self, body: dict, key: str) -> dict:
        """Deliver one batch; return the server's answer or raise DeliveryError."""
        request = urllib.request.Request(
            self.ingest_url,
            data=json.dumps(body, separators=(",", ":"), allow_nan=False).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Idempotency-Key": key,
                "User-Agent": f"vigil-agent/{AGENT_VERSION}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = response.read()
        except urllib.error.HTTPError as error:
            raise http_error(error) from None
        except (OSError, http.client.HTTPException) as error:  # refused, reset, timed out, ...
            reason = getattr(error, "reason", None) or repr(error)
            raise DeliveryError(f"server unreachable ({reason})") from None
        try:
            return json.loads(answer)
        except ValueError:
            # Resending is harmless (same Idempotency-Key) and guards against a proxy's page.
            raise DeliveryError("server answered with something other than JSON") from None


def http_error(error: urllib.error.HTTPError) -> DeliveryError:
    """Classify an error answer: drop a bad batch, keep the rest, retry what time can fix."""
    status = error.code
    try:
        answer = json.loads(error.read())
        details = answer.get("details")
        detail = f"{answer['error']} {json.dumps(details)[:300]}" if details else answer["error"]
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        detail = str(error.reason)
    message = f"HTTP {status}: {detail}"
    if status in DROPPED_STATUSES:
        return DeliveryError(message, permanent=True)
    if status in RETRIED_STATUSES or status >= 500:
        return DeliveryError(message, retry_after=retry_after(error.headers.get("Retry-After")))
    if status in (401, 403):
        message = f"server refused the token ({message})"
    return DeliveryError(message, retryable=False)


def retry_after(header: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (Vigil sends delta-seconds), at most an hour."""
    try:
        return min(max(float(header), 0.0), 3600.0)
    except (TypeError, ValueError):
        return None


class Agent:
    """Ties the collector, the client and the spool into one cycle per interval.

    Transient failures are retried after ``backoff`` seconds, doubling, at most ``retries`` times,
    and only within 80% of the interval, so a cycle ends in about one interval.
    """

    def __init__(
        self,
        instance: dict,
        collector: Collector,
        client: Client,
        spool: Spool,
        *,
        interval: float = 30.0,
        retries: int = 3,
        backoff: float = 1.0,
    ):
        self.instance, self.collector, self.client, self.spool = instance, collector, client, spool
        self.interval, self.retries, self.backoff = interval, retries, backoff
        self._resume_at = 0.0  # monotonic time before which the server asked not to be called

    def register(self) -> None:
        """Announce this host with an empty batch; if that fails, carry on (every batch
        carries the instance block, so the first delivered one registers it too)."""
        try:
            answer = self.client.send({"instance": self.instance, "samples": []}, str(uuid.uuid4()))
        except DeliveryError as error:
            log.warning("registration failed (%s); carrying on", error)
        else:
            log.info("registered as instance %s", answer.get("instance_id"))

    def run_cycle(self) -> Outcome:
        """Collect one batch; deliver the spool oldest first, then this batch, or spool what is
        left, so the server always gets batches in order. Logs exactly one INFO line."""
        deadline = time.monotonic() + 0.8 * self.interval
        samples = self.collector.collect()
        batch = SpooledBatch(str(uuid.uuid4()), {"instance": self.instance, "samples": samples})
        spooled = self.spool.pending()
        queue = [*spooled, batch]
        done, replayed, failure = self._deliver_in_order(queue, deadline)
        after = f" (replayed {replayed} spooled batches)" if replayed else ""
        if done == len(queue):
            if spooled:
                self.spool.replace([])
            if failure is None:
                log.info("cycle ok: sent %d samples%s", len(samples), after)
                return Outcome.SENT
            log.info("cycle: batch dropped, the server rejected it%s", after)
            return Outcome.DROPPED
        if not failure.retryable:
            log.error("fix the agent's url or token: %s; batches wait in the spool", failure)
        if done:
            self.spool.replace(queue[done:])
        else:
            self.spool.append(batch)
        log.info("cycle: %s, spooled batch (%d in spool)%s", failure, len(self.spool), after)
        return Outcome.SPOOLED

    def _deliver_in_order(
        self, queue: list[SpooledBatch], deadline: float
    ) -> tuple[int, int, DeliveryError | None]:
        """Deliver ``queue`` front to back until a batch must be kept or time is up.

        Returns how many batches are done with (sent or dropped), how many of those were
        spooled ones that got sent, and the last failure (None if the last one was sent).
        """
        done, replayed, failure = 0, 0, None
        for item in queue:
            if done and time.monotonic() > deadline:
                return done, replayed, DeliveryError("cycle time is up while replaying the spool")
            failure = self._deliver(item, deadline)
            if failure is not None and not failure.permanent:
                break
            if failure is not None:
                log.warning("dropped batch %s: %s", item.key, failure)
            elif item is not queue[-1]:
                replayed += 1
            done += 1
        return done, replayed, failure

    def _deliver(self, batch: SpooledBatch, deadline: float) -> DeliveryError | None:
        failure = None
        for attempt in range(self.retries + 1):
            if self._resume_at > deadline:
                return failure or DeliveryError("server asked to wait (Retry-After)")
            time.sleep(max(0.0, self._resume_at - time.monotonic()))
            try:
                self.client.send(batch.body, batch.key)
                return None
            except DeliveryError as error:
                failure = error
            if not failure.retryable:
                return failure
            delay = failure.retry_after
            self._resume_at = time.monotonic() + (
                self.backoff * 2**attempt if delay is None else delay
            )
        return failure

    def run_forever(self, stop: threading.Event) -> None:
        """Run a cycle every interval until ``stop`` is set; a started cycle always finishes."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.run_cycle()
            except Exception:  # a full disk, a psutil hiccup: an agent must outlive one cycle
                log.exception("cycle failed; trying again next interval")
            stop.wait(max(0.0, self.interval - (time.monotonic() - started)))


# The settings a config file may hold, with their types and defaults (None: worked out later).
SETTINGS = {
    "url": (str, None),
    "token_file": (Path, None),
    "interval": (float, 30.0),
    "agent_id": (str, None),
    "name": (str, None),
    "type": (str, "host"),
    "region": (str, ""),
    "spool": (Path, None),
    "spool_max_batches": (int, 10_000),
    "insecure": (bool, False),
}


class ConfigError(ValueError):
    pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options, then the config file's keys for those not given, then the defaults; the
    token from --token, --token-file, VIGIL_AGENT_TOKEN or the file's token_file, in that order."""
    parser = argparse.ArgumentParser(
        prog="python3 -m agent",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=os.environ.get(CONFIG_ENVIRONMENT_VARIABLE),
        help=f"a TOML file of these settings (default: ${CONFIG_ENVIRONMENT_VARIABLE})",
    )
    parser.add_argument("--url", help="Vigil's base URL, e.g. https://vigil.example")
    token = parser.add_mutually_exclusive_group()
    token.add_argument(
        "--token-file", type=Path, help="a file holding an ingest token (keeps it out of ps)"
    )
    token.add_argument(
        "--token", help=f"an ingest token (visible in ps: prefer ${TOKEN_ENVIRONMENT_VARIABLE})"
    )
    parser.add_argument("--interval", type=float, help="seconds between batches (default: 30)")
    parser.add_argument("--agent-id", help="default: a hash of the machine id")
    parser.add_argument("--name", help="default: the hostname")
    parser.add_argument("--type", help="instance type shown in Vigil (default: host)")
    parser.add_argument("--region")
    parser.add_argument("--spool", type=Path, help=f"default: {default_spool_path()}")
    parser.add_argument("--spool-max-batches", type=int, help="default: 10000")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow plain http:// to another host (the token then crosses the network in clear)",
    )
    parser.add_argument("--once", action="store_true", default=False, help="run one cycle, exit")
    args = parser.parse_args(argv)
    token_file_given = "token_file" in vars(args)
    try:
        settings = read_config(args.config) if args.config else {}
        for key, (kind, default) in SETTINGS.items():
            if key not in vars(args):
                setattr(args, key, kind(settings[key]) if key in settings else default)
        args.token = getattr(args, "token", None) or read_token(args.token_file, token_file_given)
        check_url(args.url, args.insecure)
    except ConfigError as error:
        parser.error(str(error))
    return args


def read_config(path: Path) -> dict:
    """The settings of a TOML config file; unknown keys are refused (a typo must not pass)."""
    try:
        with open(path, "rb") as config:
            settings = tomllib.load(config)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"--config {path}: {error}") from None
    unknown = sorted(set(settings) - set(SETTINGS) - {"token"})
    if unknown:
        raise ConfigError(f"--config {path}: unknown settings {', '.join(unknown)}")
    if "token" in settings:
        raise ConfigError(f"--config {path}: put the token in a file and name it in token_file")
    for key, value in settings.items():
        kind = SETTINGS[key][0]
        expected = (int, float) if kind is float else str if kind is Path else kind
        if not isinstance(value, expected) or (kind is not bool and isinstance(value, bool)):
            raise ConfigError(f"--config {path}: {key} must be a {kind.__name__.lower()}")
        if kind is Path:
            # Relative to the file, not to wherever the agent happens to be started.
            settings[key] = Path(path).parent / value
    return settings


def read_token(token_file: Path | None, token_file_given: bool) -> str:
    """The token from --token-file, else VIGIL_AGENT_TOKEN, else the config's token_file."""
    environment_token = os.environ.get(TOKEN_ENVIRONMENT_VARIABLE, "").strip()
    if environment_token and not token_file_given:
        return environment_token
    if token_file is None:
        raise ConfigError(
            f"no token: give --token-file, set ${TOKEN_ENVIRONMENT_VARIABLE}, "
            "or name a token_file in the config file"
        )
    try:
        token = Path(token_file).read_text().strip()
    except OSError as error:
        raise ConfigError(f"token file: {error}") from None
    if not token:
        raise ConfigError(f"token file {token_file} is empty")
    return token


def check_url(url: str | None, insecure: bool) -> None:
    """Refuse a URL that is not http(s), and plain http to anything but this host itself."""
    if not url:
        raise ConfigError("no url: give --url or url in the config file")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("the url must start with http:// or https:// and name a host")
    if parts.scheme == "http" and not insecure and not is_loopback(parts.hostname):
        raise ConfigError(
            f"refusing plain http:// to {parts.hostname}: the token would cross the network "
            "in clear; use https:// (or --insecure on a network you trust)"
        )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    """Run the agent; with --once, exit 0 if the batch was sent or spooled."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    instance = describe_host(
        args.agent_id or default_agent_id(),
        args.name or socket.gethostname(),
        args.type,
        args.region,
    )
    agent = Agent(
        instance,
        Collector(),
        Client(args.url, args.token, timeout=min(10.0, args.interval / 4)),
        Spool(args.spool or default_spool_path(), args.spool_max_batches),
        interval=args.interval,
    )
    agent.register()
    if args.once:
        return 0 if agent.run_cycle() is not Outcome.DROPPED else 1
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    agent.run_forever(stop)
    log.info("stopped")
    return 0
