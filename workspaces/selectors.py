"""Reads about workspaces, and about the organization's users that workspaces and projects list.

Users live in the public schema and are shared by every organization: every user query here is
narrowed to one organization's memberships (tenant isolation), and a user of another organization
is treated as unknown.
"""

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accounts.access import ACTIVE_ROLES, Actor, can
from accounts.models import Membership, MemberTagAssignment, User
from labeling.models import Project
from workspaces.models import Workspace, WorkspaceMembership

# --- the organization's users ------------------------------------------------------------------


def organization_users(*, organization_id: int, active_only: bool = False, with_deleted: bool = False,
                       ) -> QuerySet[User]:
    """Users with a membership in the organization, annotated with their `org_role`."""
    org_role = Membership.objects.filter(user=OuterRef("pk"), organization_id=organization_id).values("role")[:1]
    users = User.objects.annotate(org_role=Subquery(org_role)).filter(org_role__isnull=False)
    if active_only:
        users = users.filter(org_role__in=ACTIVE_ROLES, is_active=True, deleted_at__isnull=True)
    elif not with_deleted:
        users = users.filter(deleted_at__isnull=True)
    return users


def organization_user_get(*, organization_id: int, user_id) -> User | None:
    """A user of the organization (any role), or None: another organization's user is unknown here."""
    return organization_users(organization_id=organization_id, with_deleted=True).filter(pk=user_id).first()


def ids_not_active_in(*, organization_id: int, user_ids) -> list[int]:
    """The ids among `user_ids` that are not active members of the organization (one query)."""
    wanted = set(user_ids)
    active = set(
        organization_users(organization_id=organization_id, active_only=True)
        .filter(pk__in=wanted).values_list("pk", flat=True)
    )
    return sorted(wanted - active)


def ids_not_in(*, organization_id: int, user_ids) -> list[int]:
    """The ids among `user_ids` that have no membership (of any role) in the organization."""
    wanted = set(user_ids)
    known = set(
        organization_users(organization_id=organization_id, with_deleted=True)
        .filter(pk__in=wanted).values_list("pk", flat=True)
    )
    return sorted(wanted - known)


def users_matching(users: QuerySet[User], term: str | None) -> QuerySet[User]:
    """LS's `search`: a piece of the email, a name or the username."""
    term = (term or "").strip()
    if not term:
        return users
    return users.filter(Q(email__icontains=term) | Q(first_name__icontains=term) | Q(last_name__icontains=term)
                        | Q(username__icontains=term))


def users_tagged(users: QuerySet[User], *, organization_id: int, tag_ids: list[int]) -> QuerySet[User]:
    """Users whose membership in the organization carries one of the member tags."""
    tagged = MemberTagAssignment.objects.filter(
        tag_id__in=tag_ids, tag__organization_id=organization_id, membership__organization_id=organization_id,
    ).values("membership__user_id")
    return users.filter(pk__in=tagged)


def tags_of_users(*, organization_id: int, user_ids) -> dict[int, list[dict]]:
    """Member tags of each user in the organization (one query)."""
    tags: dict[int, list[dict]] = {}
    rows = (MemberTagAssignment.objects.filter(membership__organization_id=organization_id,
                                               membership__user_id__in=list(user_ids))
            .values_list("membership__user_id", "tag_id", "tag__label").order_by("tag__label", "tag_id"))
    for user_id, tag_id, label in rows:
        tags.setdefault(user_id, []).append({"id": tag_id, "label": label})
    return tags


# --- workspaces -----------------------------------------------------------------------------------

WORKSPACE_ORDERINGS = {"id", "title", "created_at", "updated_at", "projects_count"}


def workspace_ids_of(*, user_id: int) -> frozenset[int]:
    return frozenset(WorkspaceMembership.objects.filter(user_id=user_id).values_list("workspace_id", flat=True))


def with_projects_count(workspaces: QuerySet[Workspace]) -> QuerySet[Workspace]:
    counts = (Project.objects.filter(workspace_id=OuterRef("pk")).order_by()
              .values("workspace_id").annotate(n=Count("id")).values("n"))
    return workspaces.annotate(
        projects_count=Coalesce(Subquery(counts, output_field=IntegerField()), Value(0)),
    )


def workspaces_visible_to(actor: Actor, *, include_all_personal: bool = False) -> QuerySet[Workspace]:
    """Workspaces the actor may see. With `workspaces.view_all`: every shared workspace, and others'
    personal ones only when asked (`include_all_personal`); otherwise the workspaces the actor is a
    member of. The actor's own personal workspace always."""
    workspaces = Workspace.objects.all()
    own_personal = Q(is_personal=True, created_by_id=actor.user.pk)
    if can(actor, "workspaces.view_all"):
        if not include_all_personal:
            workspaces = workspaces.filter(Q(is_personal=False) | own_personal)
    else:
        member_of = WorkspaceMembership.objects.filter(user_id=actor.user.pk).values("workspace_id")
        workspaces = workspaces.filter((Q(pk__in=member_of) & Q(is_personal=False)) | own_personal)
    return with_projects_count(workspaces)


def workspace_members(*, workspace: Workspace, organization_id: int) -> QuerySet[User]:
    """The workspace's members who belong to the organization (any role: a deactivated member stays
    listed so that an administrator can remove them)."""
    member_ids = WorkspaceMembership.objects.filter(workspace=workspace).values("user_id")
    return organization_users(organization_id=organization_id).filter(pk__in=member_ids).order_by("id")


def workspace_project_ids(*, workspace: Workspace, limit: int = 20) -> list[int]:
    return list(Project.objects.filter(workspace_id=workspace.pk).order_by("id").values_list("pk", flat=True)[:limit])
