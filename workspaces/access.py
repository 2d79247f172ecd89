"""The object rule of workspaces for accounts.access.can.

A shared workspace is visible to its members and to roles with `workspaces.view_all`; a personal
workspace to its owner and to roles with `workspaces.view_all`. Every permission on a workspace
(view, change, delete) needs it visible; the role check is `can`'s.
"""

from accounts.access import Actor, can, register_object_rule
from workspaces.models import Workspace, WorkspaceMembership


def workspace_visible(actor: Actor, workspace: Workspace) -> bool:
    if can(actor, "workspaces.view_all"):
        return True
    if workspace.is_personal:
        return workspace.created_by_id == actor.user.pk
    return WorkspaceMembership.objects.filter(workspace=workspace, user_id=actor.user.pk).exists()


def _workspace_rule(actor: Actor, permission: str, workspace: Workspace) -> bool:
    return workspace_visible(actor, workspace)


# Workspaces are not inside a project: the organization role decides.
register_object_rule(Workspace, _workspace_rule, project_id_of=lambda workspace: None)
