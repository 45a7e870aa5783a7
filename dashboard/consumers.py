"""Websocket consumers of the live dashboard, one per page kind.

They are thin: refuse sockets without the Viewer role (the origin is checked in config/asgi.py),
join the groups instances/events.py and alerts/events.py publish to, and hand what they hear to
their page's feed (dashboard/live.py), which coalesces bursts and renders once per view for all
its sockets with the page's own templates (dashboard/overview.py, dashboard/instance_page.py).
Whether the user may act on alerts is part of the view, so Operators and Viewers get their own
renders. The backups page's consumer is for Admins and pushes backups/page.py's fragments.
"""

import dataclasses
import time
import uuid
from datetime import UTC, datetime

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.http import QueryDict

from accounts import time_zones
from accounts.permissions import Role, RoleRequiredConsumer, scope_has_role
from alerts.events import ALERTS_GROUP
from backups import page as backups_page
from backups.progress import BACKUPS_GROUP
from checks.events import CHECKS_GROUP
from dashboard import board_live, checks_page, instance_page, live, overview
from instances.events import INSTANCES_GROUP, instance_group

GONE = 4404


class LiveConsumer(RoleRequiredConsumer, AsyncWebsocketConsumer):
    """Session-authenticated socket fed by its page's shared feed.

    A subclass says which groups it hears (``groups_to_join``), which feed it belongs to
    (``feed_key``), how that feed renders (``render``) and what it shows at first (``view``,
    given ``can_operate``).
    """

    required_role = Role.VIEWER
    render = None

    async def connect(self):
        self.can_operate = await scope_has_role(self.scope, Role.OPERATOR)
        # The pushed fragments' times are in the user's zone, as the page's were.
        self.time_zone = await database_sync_to_async(time_zones.chosen_zone)(
            self.scope["user"], self.scope.get("cookies", {})
        )
        self.live_groups = self.groups_to_join()
        for group in self.live_groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.feed = live.join(self.feed_key(), type(self).render, self)
        await self.accept()

    async def disconnect(self, code):
        if getattr(self, "feed", None) is not None:
            live.leave(self.feed, self)
        for group in getattr(self, "live_groups", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    def groups_to_join(self) -> list[str]:
        raise NotImplementedError

    def feed_key(self) -> tuple:
        raise NotImplementedError

    async def deliver(self, html: str | None, next_view) -> None:
        """The feed's push for this socket's view."""
        self.view = next_view
        if html:
            await self.send(text_data=html)


class InstancesGroupFeed:
    """For a live consumer in the instances group: each ingest's instances are noted for the
    next push."""

    async def instances_updated(self, event):
        self.feed.note(*event["instance_ids"])

    async def instance_updated(self, event):
        # What a process of the previous release sends to the instances group during a rolling
        # deploy: one instance each, noted as instances.updated notes its list.
        await self.instances_updated({"instance_ids": [event["instance_id"]]})


class OverviewConsumer(InstancesGroupFeed, LiveConsumer):
    """The overview's summary, instance grid, recent alerts and events."""

    render = staticmethod(overview.live_fragment)

    def groups_to_join(self):
        self.view = overview.LiveView(can_operate=self.can_operate)
        return [INSTANCES_GROUP, ALERTS_GROUP]

    def feed_key(self):
        return ("overview",)

    async def receive(self, text_data=None, bytes_data=None):
        """The page tells which grid filters it shows (on connect and after each change)."""
        try:
            message = orjson.loads(text_data or b"")
        except orjson.JSONDecodeError:
            return
        if isinstance(message, dict) and isinstance(message.get("filters"), str):
            filters = overview.OverviewFilters.from_query(QueryDict(message["filters"]))
            # The page swapped its grid: the next push sends it whole.
            self.view = dataclasses.replace(
                self.view, filters=filters, shown_ids=None, shown_total=None
            )

    async def alert_changed(self, event):
        # The alert's row, the counts and its instance's card (its status follows its alerts).
        self.feed.note(event["instance_id"])

    async def alerts_changed(self, event):
        self.feed.note(*event["instance_ids"])


class InstanceConsumer(LiveConsumer):
    """One instance's status, details and alerts, plus new chart points."""

    render = staticmethod(instance_page.live_fragment)

    def groups_to_join(self):
        instance_id = self.scope["url_route"]["kwargs"]["pk"]
        if not isinstance(instance_id, uuid.UUID):
            instance_id = uuid.UUID(str(instance_id))
        query = QueryDict(self.scope.get("query_string", b"").decode())
        now = datetime.now(UTC)
        try:
            since = datetime.fromtimestamp(int(query.get("since", "")), UTC)
        except (ValueError, OverflowError, OSError):
            since = now
        # However old (or new) a reconnecting page's ``since``, it catches up on so much only.
        since = min(max(since, now - instance_page.LIVE_CATCH_UP), now)
        self.view = instance_page.LiveView(instance_id, since, self.can_operate)
        return [instance_group(instance_id), ALERTS_GROUP]

    def feed_key(self):
        return ("instance", self.view.instance_id)

    async def instance_updated(self, event):
        self.feed.note(event["instance_id"])

    async def alert_changed(self, event):
        if event["instance_id"] == str(self.view.instance_id):
            self.feed.note(event["instance_id"])

    async def alerts_changed(self, event):
        if str(self.view.instance_id) in event["instance_ids"]:
            self.feed.note(str(self.view.instance_id))

    async def deliver(self, html, next_view):
        if html is None:
            await self.close(code=GONE)
            return
        await super().deliver(html, next_view)


class DashboardConsumer(InstancesGroupFeed, LiveConsumer):
    """A dashboard's time-series panels, extended with each push's new points. Every ingest
    may touch a panel's query, so every one is heard (the feed pushes at most once a second)."""

    render = staticmethod(board_live.live_fragment)

    def groups_to_join(self):
        dashboard_id = self.scope["url_route"]["kwargs"]["pk"]
        if not isinstance(dashboard_id, uuid.UUID):
            dashboard_id = uuid.UUID(str(dashboard_id))
        selection = self.scope.get("query_string", b"").decode()
        self.view = board_live.LiveView(dashboard_id, selection)
        return [INSTANCES_GROUP]

    def feed_key(self):
        return ("dashboard", self.view.dashboard_id)

    async def deliver(self, html, next_view):
        if html is None:
            await self.close(code=GONE)
            return
        await super().deliver(html, next_view)


class ChecksConsumer(LiveConsumer):
    """The checks list: its counts and table, pushed whenever a check is probed, pinged or
    changed."""

    render = staticmethod(checks_page.live_list_fragment)

    def groups_to_join(self):
        self.view = checks_page.ListView(can_operate=self.can_operate)
        return [CHECKS_GROUP]

    def feed_key(self):
        return ("checks",)

    async def checks_changed(self, event):
        self.feed.note(*event["check_ids"])


class CheckConsumer(LiveConsumer):
    """One check's state, availability, incidents and pings."""

    render = staticmethod(checks_page.live_check_fragment)

    def groups_to_join(self):
        check_id = self.scope["url_route"]["kwargs"]["pk"]
        if not isinstance(check_id, uuid.UUID):
            check_id = uuid.UUID(str(check_id))
        self.view = checks_page.LiveView(check_id, self.can_operate)
        return [CHECKS_GROUP, ALERTS_GROUP]

    def feed_key(self):
        return ("check", self.view.check_id)

    async def checks_changed(self, event):
        if str(self.view.check_id) in event["check_ids"]:
            self.feed.note(str(self.view.check_id))

    async def alert_changed(self, event):
        # Its incidents are its instance's alerts (known after the first push).
        if self.view.instance_id in (None, event["instance_id"]):
            self.feed.note(event["instance_id"])

    async def alerts_changed(self, event):
        if self.view.instance_id is None:
            self.feed.note(*event["instance_ids"])
        elif self.view.instance_id in event["instance_ids"]:
            self.feed.note(self.view.instance_id)

    async def deliver(self, html, next_view):
        if html is None:
            await self.close(code=GONE)
            return
        await super().deliver(html, next_view)


class BackupsConsumer(RoleRequiredConsumer, AsyncWebsocketConsumer):
    """The backups page's progress panel and list, for Admins.

    A run reports ``running`` every half second: those are pushed at most once per
    live.PUSH_INTERVAL. The others (started, succeeded, failed, skipped) come once per run and are
    pushed at once, so the outcome is never held back.
    """

    required_role = Role.ADMIN
    groups = [BACKUPS_GROUP]

    async def connect(self):
        self.last_push = float("-inf")
        await self.accept()

    async def backup_progress(self, event):
        now = time.monotonic()
        if event["state"] == "running" and now - self.last_push < live.PUSH_INTERVAL:
            return
        self.last_push = now
        html = await database_sync_to_async(backups_page.live_fragment)(event)
        await self.send(text_data=html)
