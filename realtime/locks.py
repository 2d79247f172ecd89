"""Task locks over the websocket (`task.open`, `heartbeat`, `task.close`, closing the socket) and
the sweeper of expired locks.

The lock is labeling's TaskLock, taken, extended and released by labeling.services by the label
stream's rule (which also announces it after commit). What this adds: one person's tabs share
their lock, which ends when the last socket that has the task open closes it or goes away
(realtime.presence counts those sockets in Redis, across processes).

Everything here runs in the tenant's schema (the consumer's tenant_context) except the sweeper,
which enters each organization's schema itself.
"""

import time

from django.db import connection
from django_tenants.utils import tenant_context

from accounts.access import can
from labeling import services
from labeling.members import AnnotatorPaused
from labeling.models import Task
from realtime import events, presence, store
from realtime.presence import ProjectSocket
from realtime.selectors import lock_holders, users_brief
from tenants.models import Organization

# Tasks one socket may have open at once (a labeling tab has one).
MAX_OPEN_TASKS = 20
SWEEP_BATCH = 1000
# Bounds one sweep: rows whose expiry the database has not reached yet go back to the index.
SWEEP_MAX_BATCHES = 50


def error(*, code: str, detail: str) -> dict:
    return {"type": "error", "code": code, "detail": detail}


def _task_or_error(*, socket: ProjectSocket, task_id: int) -> tuple[Task | None, dict | None]:
    task = Task.objects.select_related("project").filter(project_id=socket.project_id, pk=task_id).first()
    if task is None:
        return None, error(code="not_found", detail=f"No task {task_id} in this project.")
    if not can(socket.actor, "annotations.create", task.project):
        return None, error(code="permission_denied", detail="Your role may not label tasks of this project.")
    return task, None


def task_open(*, socket: ProjectSocket, task_id: int) -> dict:
    """Take, or share with the person's other tabs, their lock on the task; the answer to send."""
    if task_id not in socket.open_tasks and len(socket.open_tasks) >= MAX_OPEN_TASKS:
        return error(code="too_many_tasks", detail=f"Close a task first: a socket has at most {MAX_OPEN_TASKS} open.")
    task, refusal = _task_or_error(socket=socket, task_id=task_id)
    if refusal:
        return refusal
    try:
        until = services.task_lock_take(task=task, user=socket.actor.user)
    except AnnotatorPaused as exc:
        return error(code="paused", detail=str(exc.detail))
    was_on = socket.task
    if task_id in socket.open_tasks:
        socket.open_tasks.remove(task_id)
    socket.open_tasks.append(task_id)
    presence.socket_moved(socket=socket, was_on=was_on)
    if until is None:
        return {"type": "task.lock_refused", "task": task_id,
                "holders": lock_holders(task_id=task_id, except_user_id=socket.actor.user.pk)}
    presence.opener_add(schema=socket.schema, task_id=task_id, user_id=socket.actor.user.pk, socket_id=socket.socket_id)
    return {"type": "task.lock_granted", "task": task_id, "until": until}


def task_heartbeat(*, socket: ProjectSocket, task_id: int) -> dict:
    """Extend the person's lock; one that ended meanwhile is taken again when the task has room."""
    if task_id not in socket.open_tasks:
        return task_open(socket=socket, task_id=task_id)
    task, refusal = _task_or_error(socket=socket, task_id=task_id)
    if refusal:
        return refusal
    until = services.task_lock_extend(task=task, user=socket.actor.user)
    if until is None:
        return task_open(socket=socket, task_id=task_id)
    return {"type": "task.lock_granted", "task": task_id, "until": until}


def _let_go(*, socket: ProjectSocket, task_id: int, reason: str) -> None:
    user = socket.actor.user
    still_open = presence.opener_remove(schema=socket.schema, task_id=task_id, user_id=user.pk,
                                        socket_id=socket.socket_id)
    if still_open == 0:
        services.task_lock_release(task_id=task_id, user=user, reason=reason)


def task_close(*, socket: ProjectSocket, task_id: int) -> None:
    """Release the person's lock unless another of their sockets still has the task open."""
    if task_id not in socket.open_tasks:
        return
    was_on = socket.task
    socket.open_tasks.remove(task_id)
    _let_go(socket=socket, task_id=task_id, reason="closed")
    presence.socket_moved(socket=socket, was_on=was_on)


def socket_closed(*, socket: ProjectSocket) -> None:
    """The socket went away: its tasks are let go (`disconnected`), its presence ends."""
    for task_id in socket.open_tasks:
        _let_go(socket=socket, task_id=task_id, reason="disconnected")
    socket.open_tasks.clear()
    presence.socket_left(socket=socket, was_on=socket.announced_task)


# --- the sweeper ---------------------------------------------------------------------------------

_SWEEP_SQL = """
WITH due(task_id, user_id) AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[]))
DELETE FROM labeling_tasklock l USING due, labeling_task t
WHERE l.task_id = due.task_id AND l.user_id = due.user_id AND t.id = l.task_id AND l.expires_at <= now()
RETURNING l.task_id, l.user_id, t.project_id
"""
_STILL_HELD_SQL = """
SELECT l.task_id, l.user_id, l.expires_at FROM labeling_tasklock l
JOIN unnest(%s::bigint[], %s::bigint[]) AS due(task_id, user_id)
  ON l.task_id = due.task_id AND l.user_id = due.user_id
"""


def _sweep_schema(*, schema: str, pairs: list[tuple[int, int]]) -> int:
    """In the organization's schema: delete the due locks, announce `task.lock_expired`, and put
    back in the index the ones a heartbeat extended meanwhile."""
    columns = [[task_id for task_id, _ in pairs], [user_id for _, user_id in pairs]]
    with connection.cursor() as cursor:
        cursor.execute(_SWEEP_SQL, columns)
        expired = cursor.fetchall()
        cursor.execute(_STILL_HELD_SQL, columns)
        held = {(task_id, user_id): until.timestamp() for task_id, user_id, until in cursor.fetchall()}
    store.lock_expiries_set(schema=schema, expiries=held)
    store.lock_expiry_forget(schema=schema, pairs=[pair for pair in pairs if pair not in held])
    users = users_brief(user_ids=[user_id for _, user_id, _ in expired])
    for task_id, user_id, project_id in expired:
        if user_id in users:
            events.lock_expired(project_id=project_id, task_id=task_id, user=users[user_id])
    return len(expired)


def expired_locks_sweep() -> int:
    """Announce and remove the locks whose TTL passed, of every organization; the work grows with
    the locks due (Redis's index of expiries), not with the organizations. Returns how many."""
    swept = 0
    for _ in range(SWEEP_MAX_BATCHES):
        due = store.lock_expiries_due(now=time.time(), limit=SWEEP_BATCH)
        if not due:
            break
        organizations = {organization.schema_name: organization for organization in
                         Organization.objects.filter(schema_name__in=list(due), deleted_at__isnull=True)}
        for schema, pairs in due.items():
            organization = organizations.get(schema)
            if organization is None:
                store.lock_expiry_forget(schema=schema, pairs=pairs)
                continue
            with tenant_context(organization):
                swept += _sweep_schema(schema=schema, pairs=pairs)
        if sum(len(pairs) for pairs in due.values()) < SWEEP_BATCH:
            break
    return swept
