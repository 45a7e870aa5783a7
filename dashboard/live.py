"""Live pushes: one render per page per push window, shared by every socket showing the same view.

Each page (the overview, one instance) has a Feed in this process. Consumers forward what their
channel groups announce to their page's feed; the feed coalesces: it waits GATHER_DELAY after the
first event of a burst (and at least PUSH_INTERVAL after its last push), then renders once per
distinct view among its sockets (sockets with the same filters, the same known state and the same
time zone get the same HTML) and sends that HTML to each of them. A hundred sockets on the
overview cost one render a second, not a hundred.

A render is ``render(view, changes) -> (html, next_view)``, a plain sync function over the
database: ``view`` is a hashable value saying what the socket shows, ``changes`` the ids the
events named since the last push. ``html`` None means the page is gone.
"""

import asyncio
import weakref
from collections import Counter
from collections.abc import Callable, Hashable
from datetime import tzinfo

from channels.db import database_sync_to_async
from django.utils import timezone

PUSH_INTERVAL = 1.0
# Wait this long after the first event of a burst, so the rest of it joins the same push.
GATHER_DELAY = 0.25

# Renders done so far, by feed kind ("overview", "instance"): what the fan-out test counts.
render_counts: Counter = Counter()

Render = Callable[[Hashable, frozenset], tuple[str | None, Hashable]]


class Feed:
    """The sockets of one page in this process, pushed together."""

    def __init__(self, key: tuple, render: Render):
        self.key = key
        self.render = render
        self.sockets: set = set()
        self.changes: set[str] = set()
        self.push_task: asyncio.Task | None = None
        self.last_push = float("-inf")

    def note(self, *changed_ids: str) -> None:
        """Something changed: schedule one push, unless one is already pending."""
        self.changes.update(changed_ids)
        if self.push_task is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(GATHER_DELAY, self.last_push + PUSH_INTERVAL - loop.time())
        self.push_task = asyncio.create_task(self.push_after(delay))

    async def push_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.last_push = asyncio.get_running_loop().time()
        # Events from here on schedule the next push; this one renders what came before.
        self.push_task = None
        changes, self.changes = frozenset(self.changes), set()
        by_view: dict[tuple, list] = {}
        for socket in list(self.sockets):
            zone = getattr(socket, "time_zone", None)
            by_view.setdefault((socket.view, zone), []).append(socket)
        for (view, zone), sockets in by_view.items():
            html, next_view = await database_sync_to_async(self.render_in)(zone, view, changes)
            render_counts[self.key[0]] += 1
            for socket in sockets:
                if socket in self.sockets:
                    try:
                        await socket.deliver(html, next_view)
                    except OSError:
                        # The browser went away mid-push (a reload, a closed tab): its
                        # disconnect takes it out of the feed; the others still get theirs.
                        self.sockets.discard(socket)

    def render_in(self, zone: tzinfo | None, view: Hashable, changes: frozenset):
        """The render, its times in ``zone`` (the sockets' users', UTC when None)."""
        with timezone.override(zone):
            return self.render(view, changes)

    def stop(self) -> None:
        if self.push_task is not None:
            self.push_task.cancel()
            self.push_task = None


# Feeds by event loop, then by key: a feed's timer lives on the loop its sockets run on.
_feeds: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = weakref.WeakKeyDictionary()


def join(key: tuple, render: Render, socket) -> Feed:
    """Add ``socket`` (with ``view`` and ``async deliver(html, next_view)``) to its feed."""
    feeds = _feeds.setdefault(asyncio.get_running_loop(), {})
    feed = feeds.get(key)
    if feed is None:
        feed = feeds[key] = Feed(key, render)
    feed.sockets.add(socket)
    return feed


def leave(feed: Feed, socket) -> None:
    """Remove ``socket``; the last one out stops the feed."""
    feed.sockets.discard(socket)
    if not feed.sockets:
        feed.stop()
        feeds = _feeds.get(asyncio.get_running_loop(), {})
        if feeds.get(feed.key) is feed:
            del feeds[feed.key]
