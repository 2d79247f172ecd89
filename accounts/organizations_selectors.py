"""Reads about organization administration: the caller's organizations, members (filters, pages,
tags, projects), member tags and permission overrides.

Members, tags and overrides are public-schema rows: every read here is filtered by the
organization it is given. Projects and annotations live in the organization's schema: the
functions that read them expect the connection to be on that schema (a request to the
organization, or `tenant_context`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When, Window

from accounts.access import Actor, overrides_of, roles_for
from accounts.models import INACTIVE_ROLES, Membership, MemberTag, MemberTagAssignment, OrganizationPermission, Role
from platform_core.pagination import Page
from tenants.models import Organization

# The order an organization chart reads in: Owners first, deactivated last.
ROLE_RANK = {role: rank for rank, role in enumerate(
    [Role.OWNER, Role.ADMINISTRATOR, Role.MANAGER, Role.REVIEWER, Role.ANNOTATOR, Role.NOT_ACTIVATED,
     Role.DEACTIVATED])}

ORGANIZATION_ORDERINGS = {"id": "id", "title": "title", "created_at": "created_at"}
MEMBER_ORDERINGS = {
    "id": "id",
    "role": "role_rank",
    "created_at": "created_at",
    "email": "user__email",
    "first_name": "user__first_name",
    "last_name": "user__last_name",
    "username": "user__username",
    "last_activity": "user__last_activity",
    "date_joined": "user__date_joined",
}
TAG_ORDERINGS = {"id": "id", "label": "label", "created_at": "created_at", "updated_at": "updated_at",
                 "member_count": "member_count"}
PERMISSION_ORDERINGS = {"id": "id", "permission": "permission", "created_at": "created_at",
                        "updated_at": "updated_at"}


def order_fields(ordering: str | None, allowed: dict[str, str], *, default: list[str]) -> list[str]:
    """`?ordering=a,-b` (LS accepts `user__email` as well as `email`) as ORM order_by fields."""
    if not ordering:
        return default
    fields = []
    for item in (part.strip() for part in ordering.split(",")):
        if not item:
            continue
        descending, name = item.startswith("-"), item.lstrip("-")
        if name not in allowed:
            name = name.removeprefix("user__")
        if name not in allowed:
            raise ValidationError({"ordering": f"Cannot order by {name!r}; use one of {sorted(allowed)}."})
        fields.append(("-" if descending else "") + allowed[name])
    return fields + [field for field in default if field.lstrip("-") not in {f.lstrip("-") for f in fields}]


def page_of(queryset: QuerySet, *, page: int, page_size: int) -> Page:
    """platform_core.pagination.page_of in one query (a window count); a page past the end is
    empty, so the SDK's pagers stop there instead of failing."""
    offset = (page - 1) * page_size
    rows = list(queryset.annotate(total_count=Window(Count("pk")))[offset:offset + page_size])
    if rows:
        return Page(rows=rows, count=rows[0].total_count)
    return Page(rows=[], count=queryset.count() if page > 1 else 0)


# --- Organizations -------------------------------------------------------------------------------

def organizations_of_user(*, user, ordering: str | None = None) -> QuerySet:
    """Every live organization the user is an active member of."""
    active = Membership.objects.filter(user=user).exclude(role__in=INACTIVE_ROLES)
    return (
        Organization.objects.filter(pk__in=active.values("organization_id"), deleted_at__isnull=True)
        .order_by(*order_fields(ordering, ORGANIZATION_ORDERINGS, default=["title", "id"]))
    )


# --- Members -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemberFilters:
    """LS's membership filters (query string of the member list and of bulk tag assignment)."""

    roles: tuple[str, ...] = ()
    search: str = ""
    tag_ids: tuple[int, ...] = ()
    exclude_project_id: int | None = None
    exclude_workspace_id: int | None = None
    last_activity_gte: datetime | None = None
    last_activity_lte: datetime | None = None
    deleted_only: bool = False


def memberships_of(*, organization: Organization, filters: MemberFilters = MemberFilters(),
                   ordering: str | None = None) -> QuerySet:
    """The organization's memberships (every role, deactivated included) with their users."""
    memberships = Membership.objects.filter(organization=organization).select_related("user")
    if filters.deleted_only:
        # Removal deletes the membership row: there are no soft-deleted members to show.
        return memberships.none()
    if filters.roles:
        memberships = memberships.filter(role__in=filters.roles)
    if filters.search:
        term = filters.search.strip()
        memberships = memberships.filter(
            Q(user__email__icontains=term) | Q(user__first_name__icontains=term)
            | Q(user__last_name__icontains=term) | Q(user__username__icontains=term)
        )
    if filters.tag_ids:
        memberships = memberships.filter(
            pk__in=MemberTagAssignment.objects.filter(
                tag_id__in=filters.tag_ids, tag__organization=organization,
            ).values("membership_id")
        )
    if filters.last_activity_gte:
        memberships = memberships.filter(user__last_activity__gte=filters.last_activity_gte)
    if filters.last_activity_lte:
        memberships = memberships.filter(user__last_activity__lte=filters.last_activity_lte)
    if filters.exclude_project_id is not None:
        memberships = _without_people_of_project(memberships, organization, filters.exclude_project_id)
    if filters.exclude_workspace_id is not None:
        memberships = _without_people_of_workspace(memberships, organization, filters.exclude_workspace_id)
    rank = Case(*[When(role=role, then=Value(number)) for role, number in ROLE_RANK.items()],
                default=Value(len(ROLE_RANK)), output_field=IntegerField())
    return memberships.annotate(role_rank=rank).order_by(
        *order_fields(ordering, MEMBER_ORDERINGS, default=["id"]))


def _without_people_of_project(memberships: QuerySet, organization: Organization, project_id: int) -> QuerySet:
    """Leave out who can already open the project: as in labeling.access.visible_projects, its
    creator, direct members, role overrides, its workspace's members, and the roles that see
    every project."""
    from labeling.models import Project, ProjectMember, ProjectRole
    from workspaces.models import WorkspaceMembership

    project = Project.objects.filter(pk=project_id).values("created_by_id", "workspace_id").first()
    if project is None:
        raise ValidationError({"exclude_project_id": f"No project {project_id} in this organization."})
    people = Q(user_id__in=ProjectMember.objects.filter(project_id=project_id, enabled=True).values("user_id"))
    people |= Q(user_id__in=ProjectRole.objects.filter(project_id=project_id).values("user_id"))
    if project["created_by_id"]:
        people |= Q(user_id=project["created_by_id"])
    if project["workspace_id"]:
        people |= Q(user_id__in=WorkspaceMembership.objects.filter(
            workspace_id=project["workspace_id"]).values("user_id"))
    people |= Q(role__in=roles_for("projects.view_all", overrides_of(organization.pk)))
    return memberships.exclude(people)


def _without_people_of_workspace(memberships: QuerySet, organization: Organization, workspace_id: int) -> QuerySet:
    from workspaces.models import Workspace, WorkspaceMembership

    if not Workspace.objects.filter(pk=workspace_id).exists():
        raise ValidationError({"exclude_workspace_id": f"No workspace {workspace_id} in this organization."})
    return memberships.exclude(
        Q(user_id__in=WorkspaceMembership.objects.filter(workspace_id=workspace_id).values("user_id"))
        | Q(role__in=roles_for("workspaces.view_all", overrides_of(organization.pk)))
    )


def membership_of_user(*, organization: Organization, user_id: int) -> Membership | None:
    return Membership.objects.filter(organization=organization, user_id=user_id).select_related("user").first()


def tags_by_membership(*, membership_ids) -> dict[int, list[dict]]:
    """{membership id: [{"id", "label"}, ...]} in one query."""
    tags = defaultdict(list)
    rows = (MemberTagAssignment.objects.filter(membership_id__in=list(membership_ids))
            .order_by("tag__label", "tag_id").values_list("membership_id", "tag_id", "tag__label"))
    for membership_id, tag_id, label in rows:
        tags[membership_id].append({"id": tag_id, "label": label})
    return tags


@dataclass(frozen=True)
class MemberProjects:
    created: dict[int, list[dict]]
    contributed: dict[int, list[dict]]


def projects_of_members(*, actor: Actor, user_ids) -> MemberProjects:
    """Projects the users created and annotated in (one query each), limited to the projects the
    actor may see: a project's title is not shown to someone who cannot open it."""
    from labeling.access import visible_projects
    from labeling.models import Annotation, Project

    user_ids = list(user_ids)
    visible = visible_projects(actor, Project.objects.all())
    created, contributed = defaultdict(list), defaultdict(list)
    for project_id, title, user_id in (visible.filter(created_by_id__in=user_ids).order_by("id")
                                       .values_list("id", "title", "created_by_id")):
        created[user_id].append({"id": project_id, "title": title})
    rows = (Annotation.objects.filter(completed_by_id__in=user_ids, project__in=visible.values("pk"))
            .values_list("completed_by_id", "project_id", "project__title").distinct()
            .order_by("completed_by_id", "project_id"))
    for user_id, project_id, title in rows:
        contributed[user_id].append({"id": project_id, "title": title})
    return MemberProjects(created=created, contributed=contributed)


@dataclass(frozen=True)
class MemberStats:
    annotations_count: int
    contributed_projects_count: int


def member_stats(*, user_id: int) -> MemberStats:
    """The member's annotations in this organization's schema, in one aggregate."""
    from labeling.models import Annotation

    totals = Annotation.objects.filter(completed_by_id=user_id).aggregate(
        annotations=Count("id"), projects=Count("project_id", distinct=True))
    return MemberStats(annotations_count=totals["annotations"], contributed_projects_count=totals["projects"])


def owner_count(*, organization: Organization) -> int:
    return Membership.objects.filter(organization=organization, role=Role.OWNER).count()


# --- Member tags ---------------------------------------------------------------------------------

def member_tags_of(*, organization: Organization, search: str = "", ordering: str | None = None) -> QuerySet:
    tags = (MemberTag.objects.filter(organization=organization).select_related("created_by")
            .annotate(member_count=Count("assignments")))
    if search:
        tags = tags.filter(label__icontains=search.strip())
    return tags.order_by(*order_fields(ordering, TAG_ORDERINGS, default=["label", "id"]))


def member_tag_get(*, organization: Organization, tag_id: int) -> MemberTag | None:
    return member_tags_of(organization=organization).filter(pk=tag_id).first()


# --- Permission overrides ------------------------------------------------------------------------

def permission_overrides_of(*, organization: Organization, ordering: str | None = None) -> QuerySet:
    return OrganizationPermission.objects.filter(organization=organization).order_by(
        *order_fields(ordering, PERMISSION_ORDERINGS, default=["permission", "id"]))


def permission_override_get(*, organization: Organization, permission: str) -> OrganizationPermission | None:
    return OrganizationPermission.objects.filter(organization=organization, permission=permission).first()


def memberships_for_bulk(*, organization: Organization, all_members: bool, included: list[int] | None,
                         excluded: list[int] | None, filters: MemberFilters = MemberFilters()) -> QuerySet:
    """The memberships a bulk action targets: every member matching `filters` (`all_members`),
    or the members whose user ids are `included`; minus the `excluded` user ids."""
    if all_members:
        memberships = memberships_of(organization=organization, filters=filters)
    else:
        if not included:
            raise ValidationError({"included": "Give the user ids to act on, or set `all` to true."})
        memberships = Membership.objects.filter(organization=organization, user_id__in=included)
        found = set(memberships.values_list("user_id", flat=True))
        missing = sorted(set(included) - found)
        if missing:
            raise ValidationError({"included": f"User(s) {missing} are not members of this organization."})
    if excluded:
        memberships = memberships.exclude(user_id__in=excluded)
    return memberships
