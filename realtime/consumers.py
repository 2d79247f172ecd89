"""The websocket streams of realtime/README.md: a project's, and the person's own.

realtime.auth admitted the connection (scope["realtime"]). Every database call runs on a worker
thread inside `tenant_context(organization)`, entered by that call itself (`in_tenant`): a
consumer that set the schema once at connect would read whatever schema its thread's connection
was last left on. Events arrive as ready-made JSON text (realtime.events.publish) through the
process's hub (realtime.hub), which joins the channel-layer groups for all its sockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django_tenants.utils import tenant_context

from accounts.access import Actor
from realtime import events, locks, presence, wire
from realtime.auth import Admission, Refused, still_admitted
from realtime.hub import hub
from realtime.presence import ProjectSocket
from realtime.selectors import live_locks_of, stream_project

logger = logging.getLogger(__name__)

IDLE = 4408
# A move is announced this long after it (a task closed and the next one opened go out as one move),
# and behind the lock news it came with, which everyone is waiting for.
PRESENCE_SETTLE_SECONDS = 0.05
# Re-announcing liveness to Redis more often than this buys nothing (the window is a minute).
HEARD_FROM_EVERY_SECONDS = 10.0


async def in_tenant(organization, function, /, **kwargs):
    """`function(**kwargs)` on a worker thread, in the organization's schema."""
    def call():
        with tenant_context(organization):
            return function(**kwargs)

    return await database_sync_to_async(call, thread_sensitive=False)()


async def in_thread(function, /, **kwargs):
    """A blocking call that needs no database (Redis)."""
    return await asyncio.get_running_loop().run_in_executor(None, lambda: function(**kwargs))


class MemberStream(AsyncWebsocketConsumer):
    """What both streams share: the admitted member, their own group (member.removed), ping, and
    closing a socket that stays silent longer than REALTIME_IDLE_TIMEOUT_SECONDS."""

    # No channel per socket: events come through the process's hub.
    channel_layer_alias = None
    project_id: int | None = None
    joined = False
    greeted = False
    closing = False

    async def connect(self):
        admission: Admission = self.scope["realtime"]
        self.organization = admission.organization
        self.schema = admission.organization.schema_name
        self.actor = Actor(membership=admission.membership, scopes=admission.scopes)
        self.user = events.user_brief(self.actor.user)
        self.loop = asyncio.get_running_loop()
        self.last_heard = self.last_announced = self.loop.time()
        # Names the socket in Redis (presence, the tabs that have a task open).
        self.socket_id = f"socket.{uuid.uuid4().hex}"
        self.held_back: list[dict] = []
        self.wire = wire.protocol_of(self.base_send) if settings.REALTIME_DIRECT_WRITES else None
        await self.open_stream()

    async def open_stream(self):
        raise NotImplementedError

    async def dispatch(self, message):
        # Channels closes stale database connections before every handler, a thread hop per
        # message; nothing here touches the database outside `in_tenant`, which closes them itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def join(self, *groups: str) -> None:
        self.joined_groups = [*groups, events.user_group(schema=self.schema, user_id=self.user["id"])]
        for group in self.joined_groups:
            await hub().join(group, self)
        self.joined = True
        self.watchdog = asyncio.ensure_future(self._close_when_idle())
        self.rechecker = asyncio.ensure_future(self._recheck_access())

    async def greet(self, hello: dict) -> None:
        """Send the greeting, then what arrived while it was being read."""
        await self.send_event(hello)
        self.greeted = True
        held_back, self.held_back = self.held_back, []
        for message in held_back:
            await self.deliver(message)

    async def _close_when_idle(self):
        timeout = settings.REALTIME_IDLE_TIMEOUT_SECONDS
        while True:
            idle_for = self.loop.time() - self.last_heard
            if idle_for >= timeout:
                await self.close_with(IDLE)
                return
            await asyncio.sleep(timeout - idle_for)

    async def _recheck_access(self):
        every = settings.REALTIME_ACCESS_RECHECK_SECONDS
        # Spread over the period: sockets opened together (a server restart) do not check together.
        await asyncio.sleep(every * (0.5 + random.random() / 2))
        while not self.closing:
            try:
                refusal = await in_tenant(self.organization, self.refusal_now)
            except Exception:
                logger.exception("realtime: could not check a socket's access again")
                refusal = None
            if refusal is not None:
                await self.close_with(refusal)
                return
            await asyncio.sleep(every)

    def refusal_now(self) -> int | None:
        """The close code when the person may no longer use this stream (in the tenant's schema)."""
        try:
            membership = still_admitted(admission=self.scope["realtime"])
        except Refused as refusal:
            return refusal.code
        self.actor = Actor(membership=membership, scopes=self.actor.scopes)
        return None

    async def close_with(self, code: int) -> None:
        """Close from the server's side; nothing more is sent meanwhile."""
        self.closing = True
        await self.close(code=code)

    async def disconnect(self, code):
        if not self.joined:
            return
        self.joined = False
        self.watchdog.cancel()
        self.rechecker.cancel()
        for group in self.joined_groups:
            await hub().leave(group, self)
        await self.stream_closed()

    async def stream_closed(self):
        pass

    async def send_event(self, event: dict) -> None:
        await self.send(text_data=events.as_text(event))

    async def receive(self, text_data=None, bytes_data=None):
        if not self.joined or self.closing:
            return  # a refused socket, or one the server is closing
        self.last_heard = self.loop.time()
        if self.last_heard - self.last_announced >= HEARD_FROM_EVERY_SECONDS:
            self.last_announced = self.last_heard
            await self.heard_from()
        try:
            message = json.loads(text_data if text_data is not None else bytes_data)
            kind = message.get("type")
        except (ValueError, TypeError, AttributeError):
            return await self.send_event(locks.error(code="invalid_json", detail="Send JSON objects with a type."))
        if kind == "ping":
            return await self.send_event({"type": "pong"})
        await self.receive_message(kind, message)

    async def heard_from(self):
        pass

    async def receive_message(self, kind, message: dict):
        await self.send_event(locks.error(code="unknown_type", detail=f"This stream takes no {kind!r} messages."))

    async def deliver(self, message: dict) -> None:
        """A published event (realtime.events.publish); `close` ends the socket after it."""
        if not self.joined or self.closing or message.get("except") == self.socket_id:
            return
        if not self.greeted:
            self.held_back.append(message)
            return
        frame = message.get("frame")
        if frame is None or self.wire is None or not wire.write_frame(self.wire, frame):
            await self.base_send({"type": "websocket.send", "text": message["text"]})
        if message.get("close"):
            await self.close_with(message["close"])


class ProjectStream(MemberStream):
    """`/ws/projects/<id>/`: locks, presence, annotations, reviews and job progress of a project."""

    presence_announcement: asyncio.Task | None = None

    async def open_stream(self):
        self.project_id = int(self.scope["url_route"]["kwargs"]["project_id"])
        _, refusal = await in_tenant(self.organization, stream_project, actor=self.actor, project_id=self.project_id)
        await self.accept()
        if refusal:
            return await self.close_with(refusal)
        self.socket = ProjectSocket(schema=self.schema, project_id=self.project_id, socket_id=self.socket_id,
                                    actor=self.actor, user=self.user)
        # Groups first: what happens while the greeting is read is held back for it, not lost.
        await self.join(events.project_group(schema=self.schema, project_id=self.project_id))
        await self.greet(await in_tenant(self.organization, self._hello))

    def _hello(self) -> dict:
        presence.socket_joined(socket=self.socket)
        return {"type": "hello", "project": self.project_id, "you": self.user,
                "presence": presence.presence_of(schema=self.schema, project_id=self.project_id),
                "locks": live_locks_of(project_id=self.project_id)}

    def refusal_now(self) -> int | None:
        refusal = super().refusal_now()
        if refusal is None:
            _, refusal = stream_project(actor=self.actor, project_id=self.project_id)
        if refusal is None:
            self.socket.actor = self.actor  # a changed role counts for task.open from now on
        return refusal

    async def receive_message(self, kind, message: dict):
        handler = {"task.open": locks.task_open, "heartbeat": locks.task_heartbeat,
                   "task.close": locks.task_close}.get(kind)
        if handler is None:
            return await super().receive_message(kind, message)
        task_id = message.get("task")
        if isinstance(task_id, bool) or not isinstance(task_id, int):
            return await self.send_event(locks.error(code="invalid", detail=f"{kind} needs a task id."))
        answer = await in_tenant(self.organization, handler, socket=self.socket, task_id=task_id)
        if answer is not None:
            await self.send_event(answer)
        if self.socket.task != self.socket.announced_task and self.presence_announcement is None:
            self.presence_announcement = asyncio.ensure_future(self._announce_presence())

    async def _announce_presence(self):
        await asyncio.sleep(PRESENCE_SETTLE_SECONDS)
        self.presence_announcement = None
        if not self.joined or self.closing:
            return  # leaving: presence.left says it all
        try:
            await in_thread(presence.socket_move_announce, socket=self.socket)
        except Exception:
            logger.exception("realtime: could not announce a presence move")

    async def heard_from(self):
        await in_thread(presence.heard_from, schema=self.schema, project_id=self.project_id,
                        socket_id=self.socket_id, user_id=self.user["id"], task_ids=list(self.socket.open_tasks))

    async def stream_closed(self):
        if self.presence_announcement is not None:
            await self.presence_announcement  # returns at once now that the socket has left
        await in_tenant(self.organization, locks.socket_closed, socket=self.socket)


class UserStream(MemberStream):
    """`/ws/user/`: the person's own events (member.removed)."""

    async def open_stream(self):
        await self.accept()
        await self.join()
        await self.greet({"type": "hello", "project": None, "you": self.user, "presence": [], "locks": []})
