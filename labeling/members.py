"""Who works in a project: explicit members, per-project role overrides and annotator pauses.

Services (writes) and selectors (reads) of /api/projects/{pk}/members/, .../pauses/ and
/api/projects/roles/. Users are public-schema rows: every user id is checked against the
organization's memberships before it is written into the project's schema.

A paused user gets no task from the label stream and cannot submit annotations in the project
until the pause is deleted (`ensure_not_paused`, called by labeling.services).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Case, CharField, F, Q, QuerySet, Value, When
from rest_framework.exceptions import APIException

from accounts import audit
from accounts.access import ACTIVE_ROLES, Actor, PermissionDenied, overrides_of, roles_for
from accounts.models import User
from labeling.models import AnnotatorPause, Project, ProjectMember, ProjectRole, TaskLock
from workspaces import selectors as workspace_selectors
from workspaces.models import WorkspaceMembership

# Roles a project override may give, strongest first.
PROJECT_ROLES = tuple(str(role) for role in ACTIVE_ROLES)
MEMBER_ORDERINGS = {"id", "email", "first_name", "last_name", "username", "last_activity", "role", "date_joined"}
PAUSE_ORDERINGS = {"id", "created_at", "updated_at", "reason"}

_ADD_MEMBERS_SQL = """
INSERT INTO labeling_projectmember (project_id, user_id, enabled, created_at)
SELECT %(project)s, user_id, true, now() FROM unnest(%(users)s::bigint[]) AS user_id
ON CONFLICT (project_id, user_id) DO UPDATE SET enabled = true WHERE NOT labeling_projectmember.enabled
RETURNING user_id
"""
_REMOVE_MEMBERS_SQL = """
DELETE FROM labeling_projectmember WHERE project_id = %(project)s AND user_id = ANY(%(users)s::bigint[])
"""
_SET_ROLES_SQL = """
INSERT INTO labeling_projectrole (project_id, user_id, role, created_at, updated_at)
SELECT %(project)s, user_id, role, now(), now()
FROM unnest(%(users)s::bigint[], %(roles)s::varchar[]) AS given(user_id, role)
ON CONFLICT (project_id, user_id) DO UPDATE SET role = EXCLUDED.role, updated_at = now()
"""


class AnnotatorPaused(APIException):
    """409: the user is paused in this project (the label stream and submits refuse them)."""

    status_code = 409
    default_code = "annotator_paused"

    def __init__(self, pause: AnnotatorPause):
        reason = f": {pause.verbose_reason}" if pause.verbose_reason else ""
        super().__init__(f"You are paused in this project{reason}. Ask a project manager to resume you.")
        self.pause = pause


def active_pause(*, project_id: int, user_id: int) -> AnnotatorPause | None:
    return AnnotatorPause.objects.filter(project_id=project_id, user_id=user_id).order_by("-created_at", "-id").first()


def ensure_not_paused(*, project_id: int, user) -> None:
    """Raise AnnotatorPaused (409) when the user is paused in the project."""
    pause = active_pause(project_id=project_id, user_id=user.pk)
    if pause is not None:
        raise AnnotatorPaused(pause)


# --- checks ----------------------------------------------------------------------------------------

def _check_active_members(*, organization_id: int, user_ids, field: str) -> None:
    unknown = workspace_selectors.ids_not_active_in(organization_id=organization_id, user_ids=user_ids)
    if unknown:
        raise ValidationError({field: f"Not active members of this organization: {unknown[:50]}."})


def _check_roles(roles) -> None:
    wrong = sorted({role for role in roles if role not in PROJECT_ROLES}, key=str)
    if wrong:
        raise ValidationError({"role": f"Not a project role: {wrong}; use one of {list(PROJECT_ROLES)}."})


# --- members: selectors ----------------------------------------------------------------------------

def explicit_member_ids(*, project: Project, among: list[int] | None = None) -> set[int]:
    """The project's enabled members (only those `among` the given users, when given)."""
    members = ProjectMember.objects.filter(project=project, enabled=True)
    if among is not None:
        members = members.filter(user_id__in=among)
    return set(members.values_list("user_id", flat=True))


def role_overrides(*, project: Project) -> dict[int, str]:
    return dict(ProjectRole.objects.filter(project=project).values_list("user_id", "role"))


def explicit_members(*, project: Project, organization_id: int) -> QuerySet[User]:
    ids = ProjectMember.objects.filter(project=project, enabled=True).values("user_id")
    return workspace_selectors.organization_users(organization_id=organization_id).filter(pk__in=ids).order_by("id")


def _effective_role(overrides: dict[int, str]):
    """The project role when overridden, else the organization role (as an SQL expression)."""
    by_role: dict[str, list[int]] = {}
    for user_id, role in overrides.items():
        by_role.setdefault(role, []).append(user_id)
    whens = [When(pk__in=user_ids, then=Value(role)) for role, user_ids in by_role.items()]
    return Case(*whens, default=F("org_role"), output_field=CharField()) if whens else F("org_role")


def project_members(*, project: Project, organization_id: int, implicit: bool | None = None,
                    roles: list[str] | None = None, no_annotators: bool = False, search: str | None = None,
                    tag_ids: list[int] | None = None, user_ids: list[int] | None = None,
                    last_activity_gte=None, last_activity_lte=None, with_deleted: bool = False,
                    ordering: str | None = None) -> QuerySet[User]:
    """Everyone who works in the project, annotated with `effective_role`: explicit members and
    implicit ones (through the project's workspace, a role override, or an organization role that
    sees every project). `implicit` True keeps only implicit members, False only explicit ones."""
    # Subqueries, not id lists: the cost of a page must not grow with the number of members.
    explicit = ProjectMember.objects.filter(project=project, enabled=True).values("user_id")
    overrides = role_overrides(project=project)
    through = Q(pk__in=explicit) | Q(pk__in=list(overrides))
    if project.created_by_id:
        through |= Q(pk=project.created_by_id)
    if project.workspace_id is not None:
        through |= Q(pk__in=WorkspaceMembership.objects.filter(workspace_id=project.workspace_id).values("user_id"))
    sees_all = roles_for("projects.view_all", overrides_of(organization_id))
    users = workspace_selectors.organization_users(organization_id=organization_id, with_deleted=with_deleted)
    users = users.filter(org_role__in=ACTIVE_ROLES).filter(through | Q(org_role__in=sees_all))
    users = users.annotate(effective_role=_effective_role(overrides))
    if implicit is True:
        users = users.exclude(pk__in=explicit)
    elif implicit is False:
        users = users.filter(pk__in=explicit)
    if roles:
        users = users.filter(effective_role__in=roles)
    if no_annotators:
        users = users.exclude(effective_role="AN")
    if user_ids is not None:
        users = users.filter(pk__in=user_ids)
    if tag_ids:
        users = workspace_selectors.users_tagged(users, organization_id=organization_id, tag_ids=tag_ids)
    if last_activity_gte is not None:
        users = users.filter(last_activity__gte=last_activity_gte)
    if last_activity_lte is not None:
        users = users.filter(last_activity__lte=last_activity_lte)
    users = workspace_selectors.users_matching(users, search)
    if not ordering:
        return users.order_by("id")
    field = ordering.lstrip("-")
    if field not in MEMBER_ORDERINGS:
        raise ValidationError({"ordering": f"Order by one of {sorted(MEMBER_ORDERINGS)} (prefix '-' for descending)."})
    column = "effective_role" if field == "role" else field
    return users.order_by(f"-{column}" if ordering.startswith("-") else column, "id")


def pauses_by_user(*, project: Project, user_ids) -> dict[int, AnnotatorPause]:
    """The latest pause of each of these users in the project (one query)."""
    latest: dict[int, AnnotatorPause] = {}
    for pause in (AnnotatorPause.objects.filter(project=project, user_id__in=list(user_ids))
                  .order_by("user_id", "-created_at", "-id").distinct("user_id")):
        latest[pause.user_id] = pause
    return latest


# --- members: services -----------------------------------------------------------------------------

@transaction.atomic
def project_member_add(*, project: Project, organization_id: int, user_id: int) -> None:
    _check_active_members(organization_id=organization_id, user_ids=[user_id], field="user")
    project_members_add(project=project, organization_id=organization_id, user_ids=[user_id])


@transaction.atomic
def project_members_add(*, project: Project, organization_id: int, user_ids: list[int]) -> list[int]:
    """Add (or re-enable) members in one statement; returns the ids that were not members yet."""
    _check_active_members(organization_id=organization_id, user_ids=user_ids, field="included")
    if not user_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_ADD_MEMBERS_SQL, {"project": project.pk, "users": sorted(set(user_ids))})
        return sorted(row[0] for row in cursor.fetchall())


@transaction.atomic
def project_members_bulk_add(*, actor: Actor, project: Project, user_ids: list[int], roles: dict[int, str],
                             request=None) -> list[int]:
    """Add members and give some of them project roles, all or nothing; returns the new members."""
    added = project_members_add(project=project, organization_id=actor.organization_id,
                                user_ids=sorted(set(user_ids) | set(roles)))
    project_roles_set(actor=actor, project=project, roles=roles, request=request)
    return added


@transaction.atomic
def project_member_remove(*, project: Project, user_id: int) -> None:
    if project_members_remove(project=project, user_ids=[user_id]) == 0:
        raise ValidationError({"user": f"User {user_id} is not a member of this project."})


@transaction.atomic
def project_members_remove(*, project: Project, user_ids: list[int]) -> int:
    """Remove explicit members in one statement (access through the workspace or a role stays)."""
    with connection.cursor() as cursor:
        cursor.execute(_REMOVE_MEMBERS_SQL, {"project": project.pk, "users": user_ids})
        return cursor.rowcount


# --- project roles ---------------------------------------------------------------------------------

def _audit_roles(*, actor: Actor, project: Project, changes: dict[int, tuple[str | None, str | None]],
                 request=None) -> None:
    """One audit event per call: {user id: [previous role, new role]} (None = no override)."""
    if changes:
        audit.record(organization=actor.organization_id, actor=actor, action="project.role_changed",
                     target=project, request=request,
                     details={"project": project.pk,
                              "roles": {str(user_id): list(change) for user_id, change in changes.items()}})


@transaction.atomic
def project_role_set(*, actor: Actor, project: Project, user_id: int, role: str, request=None,
                     ) -> tuple[ProjectRole, bool]:
    """Give the user `role` in the project (create or change the override); returns (row, created)."""
    existed = ProjectRole.objects.filter(project=project, user_id=user_id).exists()
    project_roles_set(actor=actor, project=project, roles={user_id: role}, request=request)
    return ProjectRole.objects.get(project=project, user_id=user_id), not existed


def _current_roles(*, project: Project, organization_id: int, user_ids) -> dict[int, str]:
    """Each user's role in the project now: the override, else the organization role."""
    org_roles = dict(workspace_selectors.organization_users(organization_id=organization_id, with_deleted=True)
                     .filter(pk__in=list(user_ids)).values_list("pk", "org_role"))
    return {**org_roles, **dict(ProjectRole.objects.filter(project=project, user_id__in=list(user_ids))
                                .values_list("user_id", "role"))}


def _check_not_above_actor(*, actor: Actor, project: Project, roles: dict[int, str | None]) -> None:
    """Nobody grants more than they have, nor changes someone above them: an Administrator cannot
    make project Owners, nor demote an Owner in a project."""
    own = actor.role_in(project.pk)

    def rank(role: str | None) -> int:
        return PROJECT_ROLES.index(role) if role in PROJECT_ROLES else len(PROJECT_ROLES)

    current = _current_roles(project=project, organization_id=actor.organization_id, user_ids=roles)
    above = sorted({role for role in [*roles.values(), *current.values()] if rank(role) < rank(own)}, key=rank)
    if above:
        raise PermissionDenied("projects.roles", f"Your role in this project ({own}) cannot give or change "
                                                 f"the roles {above}.")


@transaction.atomic
def project_roles_set(*, actor: Actor, project: Project, roles: dict[int, str], request=None) -> None:
    """Create or change many overrides in one statement, audited as one event."""
    if not roles:
        return
    _check_roles(roles.values())
    _check_not_above_actor(actor=actor, project=project, roles=roles)
    _check_active_members(organization_id=actor.organization_id, user_ids=roles.keys(), field="user")
    previous = dict(ProjectRole.objects.filter(project=project, user_id__in=list(roles))
                    .values_list("user_id", "role"))
    user_ids = sorted(roles)
    with connection.cursor() as cursor:
        cursor.execute(_SET_ROLES_SQL, {"project": project.pk, "users": user_ids,
                                        "roles": [roles[user_id] for user_id in user_ids]})
    changes = {user_id: (previous.get(user_id), roles[user_id]) for user_id in user_ids
               if previous.get(user_id) != roles[user_id]}
    _audit_roles(actor=actor, project=project, changes=changes, request=request)


@transaction.atomic
def project_role_delete(*, actor: Actor, project_role: ProjectRole, request=None) -> None:
    project = project_role.project
    _check_not_above_actor(actor=actor, project=project, roles={project_role.user_id: None})
    changes = {project_role.user_id: (project_role.role, None)}
    project_role.delete()
    _audit_roles(actor=actor, project=project, changes=changes, request=request)


# --- pauses ----------------------------------------------------------------------------------------

def _check_reason(reason) -> None:
    if reason not in AnnotatorPause.Reason.values:
        raise ValidationError({"reason": f"Must be one of {AnnotatorPause.Reason.values}."})


@transaction.atomic
def pause_create(*, project: Project, user_id: int, paused_by: User, reason: str,
                 verbose_reason: str | None = None) -> AnnotatorPause:
    """Pause the user in the project; the tasks the label stream had reserved for them are freed."""
    _check_reason(reason)
    pause = AnnotatorPause.objects.create(project=project, user_id=user_id, paused_by=paused_by, reason=reason,
                                          verbose_reason=verbose_reason or "")
    TaskLock.objects.filter(task__project=project, user_id=user_id).delete()
    return pause


@transaction.atomic
def pause_update(*, pause: AnnotatorPause, fields: dict) -> AnnotatorPause:
    if "reason" in fields:
        _check_reason(fields["reason"])
        pause.reason = fields["reason"]
    if "verbose_reason" in fields:
        pause.verbose_reason = fields["verbose_reason"] or ""
    pause.save()
    return pause


@transaction.atomic
def pause_delete(*, pause: AnnotatorPause) -> None:
    """Resume: the user gets tasks and may submit again (unless another pause remains)."""
    pause.delete()
