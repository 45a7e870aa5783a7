"""Reads of samples shared by the panels of one dashboard load.

A dashboard's panels are separate requests, and several of them often select the same series
over the same range (a fleet's CPU drawn as an average, a top ten, a count, ...). The page gives
its panel requests one load id; within ``sharing(load_id)`` the engine's read of a selector is
made once per load and process and kept for ``SHARED_READ_SECONDS``: the other panels of the
load take it, waiting for it if it is under way (a browser asks for the panels all at once).
Every panel of a load so draws the same samples. A refresh after that reads again, and requests
without a load id (the HTTP API, live points, the panel editor's previews) never share.
"""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

SHARED_READ_SECONDS = 5.0
# What one process keeps at most (until the next load asks, expired or not): a few dashboards'
# distinct selectors, about 24 MB of samples.
MAX_KEPT_READS = 32
MAX_KEPT_SAMPLES = 1_000_000
# How long a panel waits for another's read of the same selector before reading it itself.
WAIT_SECONDS = 30.0

T = TypeVar("T")

_load: ContextVar[str | None] = ContextVar("vigil_shared_reads_load", default=None)


@dataclass
class _Read:
    expires: float
    done: threading.Event = field(default_factory=threading.Event)
    value: object = None
    samples: int = 0


_lock = threading.Lock()
_reads: dict[tuple, _Read] = {}


@contextmanager
def sharing(load_id: str | None) -> Iterator[None]:
    """Within this block, reads made through ``shared`` are shared with the other requests of
    ``load_id`` (None: not shared)."""
    token = _load.set(load_id or None)
    try:
        yield
    finally:
        _load.reset(token)


def shared(key: tuple, read: Callable[[], tuple[T, int]]) -> T:
    """What ``read()`` gives (a value and the samples it holds), made once per load for ``key``
    while kept, or at once outside ``sharing``."""
    load = _load.get()
    if load is None:
        return read()[0]
    key = (load, *key)
    now = time.monotonic()
    with _lock:
        for expired in [k for k, kept in _reads.items() if kept.expires <= now]:
            del _reads[expired]
        kept = _reads.get(key)
        reading = kept is None
        if reading:
            kept = _reads[key] = _Read(now + SHARED_READ_SECONDS)
    if not reading:
        kept.done.wait(WAIT_SECONDS)
        return kept.value if kept.value is not None else read()[0]
    try:
        kept.value, kept.samples = read()
    finally:
        with _lock:
            if kept.value is None:
                _reads.pop(key, None)  # failed: the waiting panels read for themselves
            _keep_within_bounds()
        kept.done.set()
    return kept.value


def _keep_within_bounds() -> None:
    """Forget the oldest reads past the bounds (under ``_lock``; dicts keep insertion order)."""
    total = sum(kept.samples for kept in _reads.values())
    while _reads and (len(_reads) > MAX_KEPT_READS or total > MAX_KEPT_SAMPLES):
        oldest = next(iter(_reads))
        total -= _reads.pop(oldest).samples
