"""This process's sockets on the channel layer: one channel per process, not one per socket.

A Channels consumer that joins a group gets each group message on a channel of its own and
dispatches it through its own receive loop: for one event on a project with 500 sockets in this
process, 500 channel-layer deliveries, 500 decodes, 500 tasks woken. Events here are the same text
for everyone, so the hub joins each group once, on the process's channel, and writes what arrives
to the local sockets of that group itself (realtime.consumers.MemberStream.deliver). A group send
is then one PUBLISH (RedisPubSubChannelLayer) read once by each process.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from channels.layers import get_channel_layer

from realtime import wire

logger = logging.getLogger(__name__)


class Hub:
    def __init__(self):
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.members: dict[str, set] = defaultdict(set)
        self.lock = asyncio.Lock()
        self.reader: asyncio.Task | None = None

    async def join(self, group: str, socket) -> None:
        async with self.lock:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
                self.reader = asyncio.create_task(self._read())
            if not self.members[group]:
                await self.layer.group_add(group, self.channel)
            self.members[group].add(socket)

    async def leave(self, group: str, socket) -> None:
        async with self.lock:
            members = self.members.get(group)
            if members is None or socket not in members:
                return
            members.discard(socket)
            if not members:
                del self.members[group]
                await self.layer.group_discard(group, self.channel)

    async def _read(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("realtime: the channel layer failed; reading again in a second")
                await asyncio.sleep(1)
                continue
            message["frame"] = wire.frame_of(message["text"])  # once for all the sockets (realtime.wire)
            for socket in list(self.members.get(message.get("group"), ())):
                try:
                    await socket.deliver(message)
                except Exception:
                    logger.exception("realtime: could not deliver to a socket")


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


def hub() -> Hub:
    """The hub of the running event loop (daphne has one)."""
    loop = asyncio.get_running_loop()
    if loop not in _hubs:
        _hubs[loop] = Hub()
    return _hubs[loop]
