"""Reads of the realtime server. Each runs in the tenant's schema (the caller's tenant_context)."""

from django.utils import timezone

from accounts.access import Actor, can
from accounts.models import User
from labeling.models import Project, TaskLock
from realtime.events import user_brief

# Close codes of realtime/README.md.
NOT_ALLOWED = 4403
NO_SUCH_PROJECT = 4404


def stream_project(*, actor: Actor, project_id: int) -> tuple[Project | None, int | None]:
    """The project a stream asks for, or the close code refusing it (4404 none, 4403 hidden)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        return None, NO_SUCH_PROJECT
    if not can(actor, "projects.view", project):
        return None, NOT_ALLOWED
    return project, None


def users_brief(*, user_ids) -> dict[int, dict]:
    return {user.pk: user_brief(user) for user in User.objects.filter(pk__in=set(user_ids))}


def live_locks_of(*, project_id: int) -> list[dict]:
    """[{task, user, until}] of the project's unexpired locks."""
    rows = list(TaskLock.objects.filter(task__project_id=project_id, expires_at__gt=timezone.now())
                .order_by("task_id", "id").values_list("task_id", "user_id", "expires_at"))
    users = users_brief(user_ids=[user_id for _, user_id, _ in rows])
    return [{"task": task_id, "user": users[user_id], "until": until}
            for task_id, user_id, until in rows if user_id in users]


def lock_holders(*, task_id: int, except_user_id: int) -> list[dict]:
    """[{user, until}] of the other people's live locks on a task (why a `task.open` was refused)."""
    rows = list(TaskLock.objects.filter(task_id=task_id, expires_at__gt=timezone.now())
                .exclude(user_id=except_user_id).order_by("id").values_list("user_id", "expires_at"))
    users = users_brief(user_ids=[user_id for user_id, _ in rows])
    return [{"user": users[user_id], "until": until} for user_id, until in rows if user_id in users]
