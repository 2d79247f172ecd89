"""The realtime server's shared state in Redis: one client per process and the key names.

Every daphne process and Celery worker sees the same state: which sockets are on a project
(presence), which sockets of a person have a task open (two tabs share a lock), the index of lock
expiries the sweeper reads, and tickets. Keys carry CACHE_KEY_PREFIX (deployments or test runs
sharing one Redis) and, for organization data, the schema name.
"""

from functools import cache

import redis
from django.conf import settings


@cache
def client() -> redis.Redis:
    # redis-py's pool notices a fork and reconnects, so a module-level client is fork-safe.
    return redis.Redis.from_url(settings.REDIS_URL, decode_responses=True, health_check_interval=30)


def key(*parts) -> str:
    return ":".join([f"{settings.CACHE_KEY_PREFIX}realtime", *(str(part) for part in parts)])


# --- the lock-expiry index (one sorted set for every organization) -------------------------------
# Members are "<schema>:<task id>:<user id>", scored by the lock's expiry (Unix seconds), so the
# sweeper's work grows with the number of locks due, never with the number of organizations.

def _expiry_member(*, schema: str, task_id: int, user_id: int) -> str:
    return f"{schema}:{task_id}:{user_id}"


def lock_expiry_set(*, schema: str, task_id: int, user_id: int, expires_at: float) -> None:
    client().zadd(key("lock-expiries"), {_expiry_member(schema=schema, task_id=task_id, user_id=user_id): expires_at})


def lock_expiries_set(*, schema: str, expiries: dict[tuple[int, int], float]) -> None:
    if expiries:
        client().zadd(key("lock-expiries"), {
            _expiry_member(schema=schema, task_id=task_id, user_id=user_id): moment
            for (task_id, user_id), moment in expiries.items()
        })


def lock_expiry_forget(*, schema: str, pairs: list[tuple[int, int]]) -> None:
    if pairs:
        client().zrem(key("lock-expiries"), *[
            _expiry_member(schema=schema, task_id=task_id, user_id=user_id) for task_id, user_id in pairs
        ])


def lock_expiries_due(*, now: float, limit: int) -> dict[str, list[tuple[int, int]]]:
    """Locks whose expiry has passed, by schema: {schema: [(task id, user id), ...]}."""
    due: dict[str, list[tuple[int, int]]] = {}
    for member in client().zrangebyscore(key("lock-expiries"), "-inf", now, start=0, num=limit):
        schema, task_id, user_id = member.rsplit(":", 2)
        due.setdefault(schema, []).append((int(task_id), int(user_id)))
    return due
