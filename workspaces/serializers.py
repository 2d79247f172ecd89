"""Label Studio shapes: Workspace, WorkspaceMemberList, and LseUser as member lists show it."""

from rest_framework import serializers

from accounts.models import Membership, User
from accounts.serializers import member_user_payload
from workspaces.models import Workspace


class WorkspaceInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=1000, min_length=1)
    description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
    color = serializers.CharField(max_length=16, required=False, allow_blank=True, allow_null=True)
    is_archived = serializers.BooleanField(required=False)
    is_personal = serializers.BooleanField(required=False)


def _creator_payload(user: User | None) -> dict | None:
    if user is None:
        return None
    return {"id": user.pk, "email": user.email, "first_name": user.first_name, "last_name": user.last_name,
            "username": user.username or user.email}


def workspace_payload(workspace: Workspace, *, member_of: frozenset[int], actor_id: int,
                      creators: dict | None = None) -> dict:
    """`membership` is the asking user's own membership (null when they are not a member);
    `created_by_user` is filled for personal workspaces when `creators` are given (LS shows it
    when listing with include_all_workspaces)."""
    creator = _creator_payload((creators or {}).get(workspace.created_by_id)) if workspace.is_personal else None
    return {
        "id": workspace.pk,
        "title": workspace.title,
        "description": workspace.description,
        "color": workspace.color,
        "is_personal": workspace.is_personal,
        "is_archived": workspace.is_archived,
        "created_by": workspace.created_by_id,
        "created_by_user": creator,
        "membership": {"user": actor_id, "workspace": workspace.pk} if workspace.pk in member_of else None,
        "projects_count": getattr(workspace, "projects_count", None),
        "created_at": workspace.created_at,
        "updated_at": workspace.updated_at,
    }


def organization_user_payload(user: User, *, organization, extra: dict | None = None) -> dict:
    """A user annotated with `org_role` (workspaces.selectors.organization_users) as LS's LseUser,
    with their membership in this organization only."""
    membership = Membership(user=user, organization_id=organization.pk, role=user.org_role)
    return {**member_user_payload(membership=membership, organization=organization), **(extra or {})}
