"""Realtime events (realtime/README.md): built here, published once the transaction that made them
commits, to channel-layer groups named with the organization's schema.

Domain services call these inside their transaction (as labeling.webhooks.emit is called): a
rolled-back write publishes nothing. Outside a transaction an event goes at once. The callbacks
are robust: Redis being down costs the live updates, never the write that made them.

Sending. Each event is serialized once, here, and travels as text; each process reads it once
from the channel layer and writes it to its sockets of the group as it is (realtime.hub).
Callers run on request threads, Celery tasks and consumers' worker threads; one event-loop
thread per process (`_Publisher`) sends their group messages in order, so no caller waits on
Redis and no call opens a connection.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import threading
from datetime import datetime

from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from realtime import store

logger = logging.getLogger(__name__)

# The close code after `member.removed` (realtime/README.md: 4403 not allowed).
CLOSE_NOT_ALLOWED = 4403
UNLOCK_REASONS = frozenset({"submitted", "skipped", "closed", "disconnected", "released"})


# --- groups and shapes ---------------------------------------------------------------------------

def project_group(*, schema: str, project_id: int) -> str:
    return f"{schema}.project.{project_id}"


def user_group(*, schema: str, user_id: int) -> str:
    return f"{schema}.user.{user_id}"


def user_brief(user) -> dict:
    return {"id": user.pk, "email": user.email, "first_name": user.first_name, "last_name": user.last_name}


def as_text(event: dict) -> str:
    return json.dumps(event, cls=DjangoJSONEncoder, separators=(",", ":"))


# --- publishing ----------------------------------------------------------------------------------

class _Publisher:
    """A daemon thread running an event loop that sends queued group messages one after another."""

    def __init__(self):
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, name="realtime-publisher", daemon=True).start()
        self.ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.queue: asyncio.Queue = asyncio.Queue()
        self.loop.call_soon(self.ready.set)
        self.loop.run_until_complete(self._drain())

    async def _drain(self) -> None:
        layer = get_channel_layer()
        while True:
            group, message = await self.queue.get()
            try:
                await layer.group_send(group, message)
            except Exception:
                logger.exception("realtime: could not publish to %s", group)
            finally:
                self.queue.task_done()

    def send(self, group: str, message: dict) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (group, message))

    def flush(self, timeout: float) -> None:
        """Wait until every queued message has gone (tests; process exit)."""
        try:
            asyncio.run_coroutine_threadsafe(self.queue.join(), self.loop).result(timeout)
        except TimeoutError:
            logger.warning("realtime: %s events still unsent at exit", self.queue.qsize())


_publisher: _Publisher | None = None
_publisher_lock = threading.Lock()


def _the_publisher() -> _Publisher:
    global _publisher
    # A forked process (a Celery pool child) has the object but not the thread: start its own.
    if _publisher is None or _publisher.pid != os.getpid():
        with _publisher_lock:
            if _publisher is None or _publisher.pid != os.getpid():
                _publisher = _Publisher()
    return _publisher


def flush(timeout: float = 5) -> None:
    if _publisher is not None and _publisher.pid == os.getpid():
        _publisher.flush(timeout)


atexit.register(flush, 2)


def publish(*, group: str, event: dict, close_code: int | None = None, except_socket: str | None = None) -> None:
    """Send `event` to the sockets of `group` after the current transaction commits; with
    `close_code`, each socket closes with it right after the event; the socket named by
    `except_socket` (the one the event is about) does not get it."""
    message = {"type": "realtime.event", "group": group, "text": as_text(event)}
    if close_code is not None:
        message["close"] = close_code
    if except_socket is not None:
        message["except"] = except_socket
    transaction.on_commit(lambda: _the_publisher().send(group, message), robust=True)


def _to_project(project_id: int, event: dict) -> None:
    publish(group=project_group(schema=connection.schema_name, project_id=project_id), event=event)


# --- task locks ----------------------------------------------------------------------------------
# Called by labeling.services in the tenant's schema, inside the transaction that took or ended the
# lock; the expiry index (store) follows the same commit.

def lock_taken(*, project_id: int, task_id: int, user, until: datetime) -> None:
    schema = connection.schema_name
    # The news first: on-commit callbacks run in order, and the index can wait a Redis round trip.
    _to_project(project_id, {"type": "task.locked", "task": task_id, "user": user_brief(user), "until": until})
    transaction.on_commit(lambda: store.lock_expiry_set(schema=schema, task_id=task_id, user_id=user.pk,
                                                        expires_at=until.timestamp()), robust=True)


def lock_extended(*, task_id: int, user_id: int, until: datetime) -> None:
    """A heartbeat or the label stream kept a lock: only the sweeper needs to know."""
    schema = connection.schema_name
    transaction.on_commit(lambda: store.lock_expiry_set(schema=schema, task_id=task_id, user_id=user_id,
                                                        expires_at=until.timestamp()), robust=True)


def lock_released(*, project_id: int, task_id: int, user, reason: str) -> None:
    assert reason in UNLOCK_REASONS, reason
    schema = connection.schema_name
    _to_project(project_id, {"type": "task.unlocked", "task": task_id, "user": user_brief(user), "reason": reason})
    transaction.on_commit(lambda: store.lock_expiry_forget(schema=schema, pairs=[(task_id, user.pk)]), robust=True)


def lock_expired(*, project_id: int, task_id: int, user: dict) -> None:
    """The sweeper removed a lock whose TTL passed; `user` in its brief shape."""
    _to_project(project_id, {"type": "task.lock_expired", "task": task_id, "user": user})


# --- presence ------------------------------------------------------------------------------------

def presence_changed(*, schema: str, project_id: int, kind: str, user: dict, task: int | None = None,
                     socket_id: str) -> None:
    """`kind`: joined, left or moved; `user` already in its brief shape; `socket_id`: the socket that
    moved (it knows)."""
    event = {"type": f"presence.{kind}", "user": user}
    if kind == "moved":
        event["task"] = task
    publish(group=project_group(schema=schema, project_id=project_id), event=event, except_socket=socket_id)


# --- annotations and reviews ---------------------------------------------------------------------

def _counts_of(task_ids) -> dict[int, dict]:
    from labeling.models import Task

    return {
        row["id"]: {"total_annotations": row["total_annotations"],
                    "cancelled_annotations": row["cancelled_annotations"], "is_labeled": row["is_labeled"]}
        for row in Task.objects.filter(pk__in=list(task_ids)).values(
            "id", "total_annotations", "cancelled_annotations", "is_labeled")
    }


def annotation_changed(*, annotation, action: str, user) -> None:
    """`action`: created or updated. Call after the task's counters were recounted."""
    counts = _counts_of([annotation.task_id]).get(annotation.task_id)
    _to_project(annotation.project_id, {
        "type": f"annotation.{action}", "annotation": annotation.pk, "task": annotation.task_id,
        "user": user_brief(user), "was_cancelled": annotation.was_cancelled, "task_counts": counts,
    })


def annotations_bulk_created(*, project_id: int, annotation_ids: list[int], task_ids: list[int], user) -> None:
    _to_project(project_id, {
        "type": "annotation.bulk_created", "annotations": annotation_ids, "tasks": sorted(task_ids),
        "user": user_brief(user), "task_counts": _counts_of(task_ids),
    })


# --- tasks -----------------------------------------------------------------------------------------

def tasks_created(*, project_id: int, count: int) -> None:
    """Tasks imported (the API, an import job's batch, a storage sync's batch), after commit."""
    _to_project(project_id, {"type": "tasks.created", "count": count})


def tasks_deleted(*, project_id: int, count: int) -> None:
    _to_project(project_id, {"type": "tasks.deleted", "count": count})


def annotations_deleted(*, project_id: int, annotation_ids: list[int], task_ids: list[int]) -> None:
    _to_project(project_id, {
        "type": "annotation.deleted", "annotations": annotation_ids, "tasks": sorted(task_ids),
        "task_counts": _counts_of(task_ids),
    })


def review_created(*, review, annotation, user) -> None:
    _to_project(annotation.project_id, {
        "type": "review.created", "review": review.pk, "annotation": annotation.pk, "task": annotation.task_id,
        "accepted": review.accepted, "user": user_brief(user),
    })


# --- long work -----------------------------------------------------------------------------------

JOB_KINDS = frozenset({"import", "export", "storage_sync"})


def job_progress(*, project_id: int, kind: str, job_id: int, status: str, done: int, total: int | None,
                 percent: float | None = None) -> None:
    """Progress of an import, an export snapshot or a storage sync (issue 7) of a project. `percent`
    defaults to done/total (100 once completed)."""
    assert kind in JOB_KINDS, kind
    if percent is None and status == "completed":
        percent = 100.0
    elif percent is None:
        percent = round(100.0 * done / total, 1) if total else 0.0
    _to_project(project_id, {
        "type": "job.progress", "job": {"kind": kind, "id": job_id}, "status": status,
        "percent": percent, "done": done, "total": total,
    })


# --- membership ----------------------------------------------------------------------------------

def member_removed(*, organization, user) -> None:
    """A member removed or deactivated: their sockets on this organization hear it, then close."""
    publish(group=user_group(schema=organization.schema_name, user_id=user.pk),
            event={"type": "member.removed", "user": user_brief(user)}, close_code=CLOSE_NOT_ALLOWED)
