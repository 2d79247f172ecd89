"""Who is connected to a project and on which task, and which sockets of a person have a task
open: in Redis, so every daphne process sees every socket.

Per project (keys carry the schema): a hash socket -> {"user": brief, "task": id | null} and a
sorted set socket -> last heard from, and per person a sorted set of their sockets there. Per task
and person, the sorted set of their sockets that have the task open: the lock is theirs until the
last of those closes. Sockets count while heard from within REALTIME_IDLE_TIMEOUT_SECONDS, so the
sockets of a process that died stop counting on their own.
"""

import json
import time
from dataclasses import dataclass, field

from django.conf import settings

from accounts.access import Actor
from realtime import events, store

# Keys outlive their sockets by this much at most (a process that died never removes its own).
KEY_TTL_SECONDS = 24 * 3600


def _sockets_key(schema: str, project_id: int) -> str:
    return store.key(schema, "project", project_id, "sockets")


def _heard_key(schema: str, project_id: int) -> str:
    return store.key(schema, "project", project_id, "heard")


def _person_key(schema: str, project_id: int, user_id: int) -> str:
    return store.key(schema, "project", project_id, "person", user_id)


def _openers_key(schema: str, task_id: int, user_id: int) -> str:
    return store.key(schema, "task", task_id, "openers", user_id)


def _live_since(now: float) -> float:
    return now - settings.REALTIME_IDLE_TIMEOUT_SECONDS


# --- presence ------------------------------------------------------------------------------------

def presence_join(*, schema: str, project_id: int, socket_id: str, user: dict) -> bool:
    """Count the socket on the project; True when it is the person's first live one there."""
    now = time.time()
    person = _person_key(schema, project_id, user["id"])
    pipe = store.client().pipeline(transaction=True)
    pipe.hset(_sockets_key(schema, project_id), socket_id, json.dumps({"user": user, "task": None}))
    pipe.zadd(_heard_key(schema, project_id), {socket_id: now})
    pipe.zremrangebyscore(person, "-inf", _live_since(now))
    pipe.zadd(person, {socket_id: now})
    pipe.zcard(person)
    for name in (_sockets_key(schema, project_id), _heard_key(schema, project_id), person):
        pipe.expire(name, KEY_TTL_SECONDS)
    return pipe.execute()[4] == 1


def presence_move(*, schema: str, project_id: int, socket_id: str, user: dict, task_id: int | None) -> None:
    store.client().hset(_sockets_key(schema, project_id), socket_id, json.dumps({"user": user, "task": task_id}))


def presence_leave(*, schema: str, project_id: int, socket_id: str, user_id: int) -> bool:
    """Forget the socket; True when the person has no live socket left on the project."""
    now = time.time()
    person = _person_key(schema, project_id, user_id)
    pipe = store.client().pipeline(transaction=True)
    pipe.hdel(_sockets_key(schema, project_id), socket_id)
    pipe.zrem(_heard_key(schema, project_id), socket_id)
    pipe.zrem(person, socket_id)
    pipe.zcount(person, _live_since(now), "+inf")
    return pipe.execute()[3] == 0


def heard_from(*, schema: str, project_id: int | None, socket_id: str, user_id: int, task_ids) -> None:
    """The socket spoke: it counts as live for presence and for the tasks it has open."""
    now = time.time()
    pipe = store.client().pipeline(transaction=False)
    if project_id is not None:
        pipe.zadd(_heard_key(schema, project_id), {socket_id: now})
        pipe.zadd(_person_key(schema, project_id, user_id), {socket_id: now})
    for task_id in task_ids:
        pipe.zadd(_openers_key(schema, task_id, user_id), {socket_id: now}, xx=True)
    pipe.execute()


def presence_of(*, schema: str, project_id: int) -> list[dict]:
    """[{user, task}] of the live sockets, one entry per person and task (task null when a person
    has none open); sockets no longer heard from are dropped on the way."""
    client = store.client()
    live_since = _live_since(time.time())
    stale = client.zrangebyscore(_heard_key(schema, project_id), "-inf", live_since)
    if stale:
        pipe = client.pipeline(transaction=False)
        pipe.hdel(_sockets_key(schema, project_id), *stale)
        pipe.zrem(_heard_key(schema, project_id), *stale)
        pipe.execute()
    on_tasks: dict[int, dict] = {}
    tasks_of: dict[int, set] = {}
    for raw in client.hvals(_sockets_key(schema, project_id)):
        entry = json.loads(raw)
        user_id = entry["user"]["id"]
        on_tasks[user_id] = entry["user"]
        tasks_of.setdefault(user_id, set()).add(entry["task"])
    entries = []
    for user_id, user in on_tasks.items():
        tasks = sorted(task for task in tasks_of[user_id] if task is not None) or [None]
        entries.extend({"user": user, "task": task} for task in tasks)
    return entries


# --- the sockets of a person that have a task open -----------------------------------------------

def opener_add(*, schema: str, task_id: int, user_id: int, socket_id: str) -> None:
    name = _openers_key(schema, task_id, user_id)
    pipe = store.client().pipeline(transaction=True)
    pipe.zadd(name, {socket_id: time.time()})
    pipe.expire(name, KEY_TTL_SECONDS)
    pipe.execute()


def opener_remove(*, schema: str, task_id: int, user_id: int, socket_id: str) -> int:
    """Forget that this socket has the task open; how many live sockets of the person still do."""
    name = _openers_key(schema, task_id, user_id)
    pipe = store.client().pipeline(transaction=True)
    pipe.zrem(name, socket_id)
    pipe.zcount(name, _live_since(time.time()), "+inf")
    return pipe.execute()[1]


# --- one socket on a project ---------------------------------------------------------------------

@dataclass
class ProjectSocket:
    """What the server knows of one open project stream. Its consumer handles one message at a
    time, so `open_tasks` is never changed by two threads at once."""

    schema: str
    project_id: int
    socket_id: str
    actor: Actor
    user: dict  # the person's brief shape
    open_tasks: list[int] = field(default_factory=list)  # in the order opened; the last is "their task"
    announced_task: int | None = None  # the task the project last heard the socket is on

    @property
    def task(self) -> int | None:
        return self.open_tasks[-1] if self.open_tasks else None


def socket_joined(*, socket: ProjectSocket) -> None:
    if presence_join(schema=socket.schema, project_id=socket.project_id, socket_id=socket.socket_id, user=socket.user):
        events.presence_changed(schema=socket.schema, project_id=socket.project_id, kind="joined", user=socket.user,
                                socket_id=socket.socket_id)


def socket_moved(*, socket: ProjectSocket, was_on: int | None) -> None:
    """After `open_tasks` changed: note the socket's task at once (a newcomer's hello shows it);
    the project hears of it from `socket_move_announce`, a moment later."""
    if socket.task != was_on:
        presence_move(schema=socket.schema, project_id=socket.project_id, socket_id=socket.socket_id,
                      user=socket.user, task_id=socket.task)


def socket_move_announce(*, socket: ProjectSocket) -> None:
    """The project hears the socket's task when it differs from what it last heard."""
    if socket.task == socket.announced_task:
        return
    socket.announced_task = socket.task
    events.presence_changed(schema=socket.schema, project_id=socket.project_id, kind="moved", user=socket.user,
                            task=socket.task, socket_id=socket.socket_id)


def person_task(*, schema: str, project_id: int, user_id: int) -> int | None:
    """The task a person's live sockets on the project are on (the highest id when several)."""
    tasks = [entry["task"] for entry in presence_of(schema=schema, project_id=project_id)
             if entry["user"]["id"] == user_id and entry["task"] is not None]
    return max(tasks, default=None)


def socket_left(*, socket: ProjectSocket, was_on: int | None) -> None:
    """`was_on`: the task the project last heard the socket is on. When the person stays (another
    tab), the project hears where they are now, or it would keep showing them on that task."""
    if presence_leave(schema=socket.schema, project_id=socket.project_id, socket_id=socket.socket_id,
                      user_id=socket.user["id"]):
        events.presence_changed(schema=socket.schema, project_id=socket.project_id, kind="left", user=socket.user,
                                socket_id=socket.socket_id)
    elif was_on is not None:
        now_on = person_task(schema=socket.schema, project_id=socket.project_id, user_id=socket.user["id"])
        if now_on != was_on:
            events.presence_changed(schema=socket.schema, project_id=socket.project_id, kind="moved",
                                    user=socket.user, task=now_on, socket_id=socket.socket_id)
