"""Websocket consumers of the live dashboard, one per page kind.

They are thin: refuse anonymous sockets (the origin is checked in config/asgi.py), join the groups
instances/events.py publishes to, and push the fragments dashboard/overview.py and
dashboard/instance_page.py render with the page's own templates. Bursts are coalesced: an event
only marks the socket dirty, and one delayed push renders everything that happened since, at most
once per PUSH_INTERVAL.
"""

import asyncio
import uuid
from datetime import UTC, datetime

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import QueryDict

from dashboard import instance_page, overview
from instances.events import INSTANCES_GROUP, instance_group

PUSH_INTERVAL = 1.0
# Wait this long after the first event of a burst, so the rest of it joins the same push.
GATHER_DELAY = 0.25
UNAUTHENTICATED = 4401
GONE = 4404


class LiveConsumer(AsyncWebsocketConsumer):
    """Session-authenticated socket that pushes a re-render at most once per PUSH_INTERVAL."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Refused during the handshake: an anonymous socket is never accepted.
            await self.close(code=UNAUTHENTICATED)
            return
        self.push_task = None
        self.last_push = 0.0
        self.live_groups = self.groups_to_join()
        for group in self.live_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if getattr(self, "push_task", None) is not None:
            self.push_task.cancel()
        for group in getattr(self, "live_groups", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    def groups_to_join(self) -> list[str]:
        raise NotImplementedError

    async def render(self) -> str:
        """The fragments to push now; empty for nothing to push."""
        raise NotImplementedError

    def schedule_push(self):
        """Coalesce: one pending push at a time, never sooner than PUSH_INTERVAL after the last."""
        if self.push_task is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(GATHER_DELAY, self.last_push + PUSH_INTERVAL - loop.time())
        self.push_task = asyncio.create_task(self.push_after(delay))

    async def push_after(self, delay: float):
        await asyncio.sleep(delay)
        self.last_push = asyncio.get_running_loop().time()
        # Events from here on schedule the next push; this one renders what came before.
        self.push_task = None
        html = await self.render()
        if html:
            await self.send(text_data=html)


class OverviewConsumer(LiveConsumer):
    """The overview's summary, instance grid, recent alerts and events."""

    def groups_to_join(self):
        self.filters = overview.OverviewFilters()
        self.updated_ids: set[str] = set()
        self.shown_ids: list | None = None
        return [INSTANCES_GROUP]

    async def receive(self, text_data=None, bytes_data=None):
        """The page tells which grid filters it shows (on connect and after each change)."""
        try:
            message = orjson.loads(text_data or b"")
        except orjson.JSONDecodeError:
            return
        if isinstance(message, dict) and isinstance(message.get("filters"), str):
            self.filters = overview.OverviewFilters.from_query(QueryDict(message["filters"]))
            self.shown_ids = None  # the page swapped its grid: the next push sends it whole

    async def instance_updated(self, event):
        self.updated_ids.add(event["instance_id"])
        self.schedule_push()

    async def render(self):
        updated, self.updated_ids = self.updated_ids, set()
        html, self.shown_ids = await database_sync_to_async(overview.live_fragment)(
            self.filters, updated, self.shown_ids
        )
        return html


class InstanceConsumer(LiveConsumer):
    """One instance's status, details and alerts, plus new chart points."""

    def groups_to_join(self):
        self.instance_id = self.scope["url_route"]["kwargs"]["pk"]
        if not isinstance(self.instance_id, uuid.UUID):
            self.instance_id = uuid.UUID(str(self.instance_id))
        query = QueryDict(self.scope.get("query_string", b"").decode())
        try:
            self.since = datetime.fromtimestamp(int(query.get("since", "")), UTC)
        except (ValueError, OverflowError, OSError):
            self.since = datetime.now(UTC)
        return [instance_group(self.instance_id)]

    async def instance_updated(self, event):
        self.schedule_push()

    async def render(self):
        html, self.since = await database_sync_to_async(instance_page.live_fragment)(
            self.instance_id, self.since
        )
        if html is None:
            await self.close(code=GONE)
            return ""
        return html
