"""Writes of workspaces: the workspaces themselves, their members and which projects they hold.

Deleting a workspace that still holds projects is refused (400 naming them): moving them out
silently would change who sees them, so the caller decides where they go first.
"""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from accounts.access import Actor
from accounts.models import User
from labeling.models import Project
from workspaces import selectors
from workspaces.access import workspace_visible
from workspaces.models import Workspace, WorkspaceMembership

PERSONAL_WORKSPACE_TITLE = "Personal"
WORKSPACE_FIELDS = ("title", "description", "color", "is_archived")

_ADD_MEMBERS_SQL = """
INSERT INTO workspaces_workspacemembership (workspace_id, user_id, created_at)
SELECT %(workspace)s, user_id, now() FROM unnest(%(users)s::bigint[]) AS user_id
ON CONFLICT (workspace_id, user_id) DO NOTHING
RETURNING user_id
"""
_REMOVE_MEMBERS_SQL = """
DELETE FROM workspaces_workspacemembership
WHERE workspace_id = %(workspace)s
  AND (%(users)s::bigint[] IS NULL OR user_id = ANY(%(users)s::bigint[]))
  AND NOT (user_id = ANY(%(keep)s::bigint[]))
"""


def personal_workspace_for(user: User) -> Workspace:
    """The user's personal workspace in the current organization, created on first need."""
    workspace = Workspace.objects.filter(is_personal=True, created_by=user).first()
    if workspace is not None:
        return workspace
    try:
        with transaction.atomic():
            workspace = Workspace.objects.create(title=PERSONAL_WORKSPACE_TITLE, is_personal=True, created_by=user)
            WorkspaceMembership.objects.create(workspace=workspace, user=user)
    except IntegrityError:
        # Another request created it first (one personal workspace per user is a constraint).
        workspace = Workspace.objects.get(is_personal=True, created_by=user)
    return workspace


def workspace_for_project(*, actor: Actor, workspace_id: int | None) -> Workspace:
    """The workspace a project being created (or moved) goes to: the one named, which the actor
    must see (else 400 naming `workspace`), or the actor's personal workspace when none is named."""
    if workspace_id is None:
        return personal_workspace_for(actor.user)
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None or not workspace_visible(actor, workspace):
        raise ValidationError({"workspace": f"No workspace {workspace_id} in this organization that you can see."})
    return workspace


@transaction.atomic
def workspace_create(*, user: User, title: str, description: str = "", color: str | None = None,
                     is_archived: bool = False, is_personal: bool = False) -> Workspace:
    """A workspace whose creator is its first member. A personal one is the creator's only one."""
    if is_personal and Workspace.objects.filter(is_personal=True, created_by=user).exists():
        raise ValidationError({"is_personal": "You already have a personal workspace."})
    workspace = Workspace(title=title, description=description or "", is_archived=is_archived,
                          is_personal=is_personal, created_by=user)
    if color:
        workspace.color = color
    try:
        with transaction.atomic():
            workspace.save()
    except IntegrityError:
        raise ValidationError({"is_personal": "You already have a personal workspace."}) from None
    WorkspaceMembership.objects.create(workspace=workspace, user=user)
    return workspace


@transaction.atomic
def workspace_update(*, workspace: Workspace, fields: dict) -> Workspace:
    if "is_personal" in fields and fields.pop("is_personal") != workspace.is_personal:
        raise ValidationError({"is_personal": "A workspace cannot become personal or stop being personal."})
    if fields.get("description", "") is None:
        fields["description"] = ""
    if "color" in fields and not fields["color"]:
        fields["color"] = Workspace._meta.get_field("color").default
    for name in WORKSPACE_FIELDS:
        if name in fields:
            setattr(workspace, name, fields[name])
    workspace.save()
    return workspace


@transaction.atomic
def workspace_delete(*, workspace: Workspace) -> None:
    project_ids = selectors.workspace_project_ids(workspace=workspace)
    if project_ids:
        raise ValidationError({"projects": f"This workspace holds projects {project_ids}; move them to another "
                                           "workspace or delete them first."})
    workspace.delete()


# --- members ---------------------------------------------------------------------------------------

def _check_can_have_members(workspace: Workspace, *, field: str) -> None:
    if workspace.is_personal:
        raise ValidationError({field: "A personal workspace has no other members."})


def _check_active_members(*, organization_id: int, user_ids, field: str) -> None:
    unknown = selectors.ids_not_active_in(organization_id=organization_id, user_ids=user_ids)
    if unknown:
        raise ValidationError({field: f"Not active members of this organization: {unknown[:50]}."})


def _insert_members(*, workspace: Workspace, user_ids: list[int]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(_ADD_MEMBERS_SQL, {"workspace": workspace.pk, "users": sorted(set(user_ids))})
        return len(cursor.fetchall())


@transaction.atomic
def workspace_member_add(*, workspace: Workspace, organization_id: int, user_id: int) -> None:
    _check_can_have_members(workspace, field="user")
    _check_active_members(organization_id=organization_id, user_ids=[user_id], field="user")
    _insert_members(workspace=workspace, user_ids=[user_id])


@transaction.atomic
def workspace_members_add(*, workspace: Workspace, organization_id: int, user_ids: list[int]) -> int:
    """Add many members in one statement; returns how many were not members yet."""
    _check_can_have_members(workspace, field="included")
    _check_active_members(organization_id=organization_id, user_ids=user_ids, field="included")
    return _insert_members(workspace=workspace, user_ids=user_ids) if user_ids else 0


@transaction.atomic
def workspace_member_remove(*, workspace: Workspace, user_id: int) -> None:
    if workspace_members_remove(workspace=workspace, user_ids=[user_id]) == 0:
        raise ValidationError({"user": f"User {user_id} is not a member of this workspace."})


@transaction.atomic
def workspace_members_remove(*, workspace: Workspace, user_ids: list[int] | None = None,
                             keep_ids: list[int] | None = None) -> int:
    """Remove the members `user_ids` (all of them when None), except `keep_ids`, in one statement."""
    keep = list(keep_ids or [])
    if workspace.is_personal:
        # The owner of a personal workspace stays in it.
        keep.append(workspace.created_by_id)
    with connection.cursor() as cursor:
        cursor.execute(_REMOVE_MEMBERS_SQL, {"workspace": workspace.pk, "users": user_ids, "keep": keep})
        return cursor.rowcount


# --- projects --------------------------------------------------------------------------------------

@transaction.atomic
def workspace_project_add(*, workspace: Workspace, project: Project) -> Project:
    """Move a project into the workspace (out of the one it was in)."""
    Project.objects.filter(pk=project.pk).update(workspace_id=workspace.pk)
    project.workspace_id = workspace.pk
    return project


@transaction.atomic
def workspace_project_remove(*, workspace: Workspace, project: Project) -> Project:
    """Move a project out of the workspace: it then belongs to no workspace, and stays visible to
    its members, its creator and roles that see every project."""
    if project.workspace_id != workspace.pk:
        raise ValidationError({"project": f"Project {project.pk} is not in this workspace."})
    Project.objects.filter(pk=project.pk).update(workspace_id=None)
    project.workspace_id = None
    return project
