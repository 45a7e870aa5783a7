"""Events other parts of Vigil (the live dashboard) subscribe to on the channel layer.

Ingest announces every batch it stores, hundreds a second under load, so the announcements are
coalesced per process: the ids published while a send is in flight are collected and sent
together when it finishes, as one ``instances.updated`` event to INSTANCES_GROUP listing them
all, plus one ``instance.updated`` event to each of their own groups, each sent only where
someone listens (asked of Redis for all of them in one round trip).
In a server a send first gathers for ``PUBLISH_GATHER_SECONDS`` (a twentieth of a second), so a
busy process asks Redis once for the batches of that time rather than once for each; the more
batches arrive during a send, the more the next one carries. Elsewhere nothing waits.

Where the sends run:

- In a server, on its event loop, without blocking the request. A sync view runs in a thread of
  asgiref's SyncToAsync, which records the loop that called it in ``SyncToAsync.threadlocal``
  (AsyncToSync reads it there to run coroutines on that loop, as async_to_sync inside a view
  does): that is the server's loop, found without anything of ours in the ASGI stack, in every
  worker process, also when no websocket is open in it. Async code (a consumer, an async view)
  is on that loop already. The ids are handed over with ``call_soon_threadsafe`` and the request
  returns at once.
- Elsewhere (Celery, management commands, the sync test client) there is no such loop: the
  caller waits for the send on the process's own publishing loop, a daemon thread kept for it,
  so the Redis connection is opened once per process, not once per call, and the events are out
  when the call returns (a command that exits next loses none).

Best effort as before: ingest never fails because Redis is down (the send is logged and its ids
dropped, the pages also refresh by themselves); a send cut off by its loop closing is finished
on the process's own loop.
"""

import asyncio
import logging
import os
import threading
import time

from asgiref.sync import SyncToAsync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

INSTANCES_GROUP = "instances"

# How long a caller without a server loop waits for its send (Redis that hangs, not one down).
FALLBACK_TIMEOUT = 5.0
# How long a send in a server gathers what else is published before it goes.
PUBLISH_GATHER_SECONDS = 0.05


def instance_group(instance_id) -> str:
    return f"instance.{instance_id}"


def publish_instance_updated(instance_id, samples: int) -> None:
    """Tell listeners an instance has new data. Best effort: ingest never fails for Redis."""
    _publisher.publish(str(instance_id), samples)


def wait_for_publishes(timeout: float = FALLBACK_TIMEOUT) -> bool:
    """Wait until every publish so far has been sent (or given up); False on timeout."""
    return _publisher.idle.wait(timeout)


class Publisher:
    """The process's pending announcements and the one send in flight."""

    def __init__(self):
        self.lock = threading.Lock()
        # Instance id -> samples announced since the last send.
        self.pending: dict[str, int] = {}
        self.in_flight = False
        # Set while nothing is pending or in flight.
        self.idle = threading.Event()
        self.idle.set()
        self.flush_task: asyncio.Task | None = None
        self.own_loop: asyncio.AbstractEventLoop | None = None

    def publish(self, instance_id: str, samples: int) -> None:
        with self.lock:
            self.pending[instance_id] = self.pending.get(instance_id, 0) + samples
            if self.in_flight:
                # The send in flight sends these when it finishes.
                return
            self.in_flight = True
            self.idle.clear()
        loop = server_loop()
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self.start_flush)
                return
            except RuntimeError:
                # Closed since we looked: send from our own loop instead.
                pass
        future = asyncio.run_coroutine_threadsafe(self.flush(), self.publishing_loop())
        try:
            future.result(FALLBACK_TIMEOUT)
        except TimeoutError:
            # Still in flight: it finishes (and sends what else came) by itself.
            logger.warning("instance.updated is taking over %ss to send", FALLBACK_TIMEOUT)

    def start_flush(self) -> None:
        # Kept, as the loop holds its tasks weakly only.
        self.flush_task = asyncio.get_running_loop().create_task(
            self.flush(gather=PUBLISH_GATHER_SECONDS)
        )
        self.flush_task.add_done_callback(self.flush_done)

    def flush_done(self, task: asyncio.Task) -> None:
        """A flush cancelled before it sent anything (its loop closing while it gathers, or
        right after creating it) has neither sent nor handed on what is pending: the process's
        own loop sends it, or
        ``in_flight`` would hold every later publish back for good. A flush cancelled during a
        send handed on its own work and let go of ``flush_task``."""
        with self.lock:
            never_ran = task.cancelled() and self.flush_task is task
            if never_ran:
                self.flush_task = None
        if never_ran:
            asyncio.run_coroutine_threadsafe(self.flush(), self.publishing_loop())

    async def flush(self, gather: float = 0) -> None:
        """After ``gather`` seconds, send what is pending, then what came meanwhile, until
        nothing is left."""
        if gather:
            await asyncio.sleep(gather)
        while True:
            with self.lock:
                batch, self.pending = self.pending, {}
                if not batch:
                    self.in_flight = False
                    self.flush_task = None
                    self.idle.set()
                    return
            try:
                await send_updates(batch)
            except asyncio.CancelledError:
                # Its loop is closing (a worker shutting down, a test's loop ending): the
                # process's own loop sends them instead.
                with self.lock:
                    for instance_id, samples in batch.items():
                        self.pending[instance_id] = self.pending.get(instance_id, 0) + samples
                    self.flush_task = None
                asyncio.run_coroutine_threadsafe(self.flush(), self.publishing_loop())
                raise
            except Exception as error:
                logger.warning("could not publish instance.updated for %s: %s", list(batch), error)

    def publishing_loop(self) -> asyncio.AbstractEventLoop:
        """This process's own loop for sends outside a server, started on first use."""
        with self.lock:
            if self.own_loop is None:
                self.own_loop = asyncio.new_event_loop()
                threading.Thread(
                    target=self.own_loop.run_forever, name="vigil-publish", daemon=True
                ).start()
            return self.own_loop


def server_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop this thread's code belongs to, if any (see the module's doc)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    threadlocal = SyncToAsync.threadlocal
    loop = getattr(threadlocal, "main_event_loop", None)
    if (
        loop is not None
        and getattr(threadlocal, "main_event_loop_pid", None) == os.getpid()
        and loop.is_running()
    ):
        return loop
    return None


async def send_updates(samples_by_instance: dict[str, int]) -> None:
    """One event listing every id to INSTANCES_GROUP, one to each instance's own group; only
    to the groups someone listens to."""
    layer = get_channel_layer()
    instance_ids = list(samples_by_instance)
    groups = [INSTANCES_GROUP, *(instance_group(instance_id) for instance_id in instance_ids)]
    listened = await groups_listened_to(layer, groups)
    if listened[0]:
        await layer.group_send(
            INSTANCES_GROUP, {"type": "instances.updated", "instance_ids": instance_ids}
        )
    for instance_id, group in zip(instance_ids, listened[1:], strict=True):
        if group:
            await layer.group_send(
                group,
                {
                    "type": "instance.updated",
                    "instance_id": instance_id,
                    "samples": samples_by_instance[instance_id],
                },
            )


async def groups_listened_to(layer, groups: list[str]) -> list[str | None]:
    """``groups``, each replaced by None where Redis has no live member in it now.

    Instance pages are few and instances many, and a process without sockets may have no
    listener at all: group_send costs two round trips even for an empty group, this one
    pipeline per Redis host for them all. Asking at send time is what group_send does
    too (a socket joining after it asked misses the event either way, and its page loads the
    state it shows when it connects), so no group that has a listener in any process is skipped.
    """
    if not hasattr(layer, "connection"):
        # Not a Redis layer (none is configured but Redis): ask it nothing.
        return groups
    oldest = int(time.time()) - layer.group_expiry
    by_host: dict[int, list[int]] = {}
    for position, group in enumerate(groups):
        by_host.setdefault(layer.consistent_hash(group), []).append(position)
    listened = [None] * len(groups)
    for host, positions in by_host.items():
        pipe = layer.connection(host).pipeline(transaction=False)
        for position in positions:
            # The group's sorted set of channels, scored by when each joined (as group_send
            # reads it, counting only members not yet expired).
            pipe.zcount(layer._group_key(groups[position]), f"({oldest}", "+inf")
        counts = await pipe.execute()
        for position, count in zip(positions, counts, strict=True):
            if count:
                listened[position] = groups[position]
    return listened


_publisher = Publisher()


def _reset_in_child() -> None:
    # A forked child (a Celery worker) has neither the parent's publishing thread nor its
    # sends in flight: it starts afresh.
    global _publisher
    _publisher = Publisher()


os.register_at_fork(after_in_child=_reset_in_child)
