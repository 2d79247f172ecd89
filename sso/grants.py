"""Group mappings: what an identity provider's groups give a member, applied again on every SAML
login and every SCIM change.

Both protocols keep Label Studio's three mappings (`roles_groups`, `workspaces_groups`,
`projects_groups`: see sso/models.py). `mappings_clean` validates them for the settings APIs;
`access_sync` applies them to one member:

- the organization role: the strongest role any of the member's groups maps to. When no group
  gives a role any more, the role SSO set goes back to what the member had before (the
  organization's default role for someone SSO brought in). An Owner's role is never changed: Owners
  are made and unmade by an Owner, by hand.
- workspace memberships, project memberships and project role overrides: added for mapped
  groups, taken away when the group no longer maps them.

Every change SSO makes is written down as an `SsoGrant`, per protocol, and only those are ever
taken back: a workspace an administrator added by hand stays when a group is removed in the IdP.
Workspaces and projects live in the organization's schema; grants hold their ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts import audit
from accounts.models import INACTIVE_ROLES, Membership, Role, User
from billing import limits as billing_limits
from sso.models import SsoGrant
from tenants.models import Organization

# Roles a group may give, strongest first. Owners are made by an Owner only.
MAPPABLE_ROLES = (Role.ADMINISTRATOR, Role.MANAGER, Role.REVIEWER, Role.ANNOTATOR)
_ROLE_BY_NAME = {**{str(role.label).lower(): str(role) for role in MAPPABLE_ROLES},
                 **{str(role).lower(): str(role) for role in MAPPABLE_ROLES}}
_ROLE_STRENGTH = {str(role): rank for rank, role in enumerate(MAPPABLE_ROLES)}
# A project mapping's role: Inherit (the organization role) or an override.
PROJECT_ROLES = {"inherit": "", "annotator": str(Role.ANNOTATOR), "reviewer": str(Role.REVIEWER)}
PROJECT_ROLE_NAMES = {"": "Inherit", str(Role.ANNOTATOR): "Annotator", str(Role.REVIEWER): "Reviewer"}
GROUP_MAX_LENGTH = 512
MAX_MAPPINGS = 1000


@dataclass(frozen=True)
class GroupMappings:
    """Cleaned mappings: (role code, group), (workspace title, group), (project id, group, project role)."""

    roles: tuple[tuple[str, str], ...] = ()
    workspaces: tuple[tuple[str, str], ...] = ()
    projects: tuple[tuple[int, str, str], ...] = ()

    @classmethod
    def of(cls, settings_row) -> GroupMappings:
        """The mappings stored on SamlSettings or ScimSettings (stored cleaned, LS's shapes)."""
        return cls(
            roles=tuple((_ROLE_BY_NAME[str(role).lower()], group) for role, group in settings_row.roles_groups or []
                        if str(role).lower() in _ROLE_BY_NAME),
            workspaces=tuple((title, group) for title, group in settings_row.workspaces_groups or []),
            projects=tuple((int(item["project_id"]), item["group"], PROJECT_ROLES.get(str(item["role"]).lower(), ""))
                           for item in settings_row.projects_groups or []),
        )

    def is_empty(self) -> bool:
        return not (self.roles or self.workspaces or self.projects)


# --- validation ------------------------------------------------------------------------------------

def _group(value, *, field: str, position: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError({field: f"Item {position}: the group must be a non-empty string."})
    if len(value) > GROUP_MAX_LENGTH:
        raise ValidationError({field: f"Item {position}: a group name has at most {GROUP_MAX_LENGTH} characters."})
    return value.strip()


def _pairs(value, *, field: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationError({field: "Must be a list."})
    if len(value) > MAX_MAPPINGS:
        raise ValidationError({field: f"At most {MAX_MAPPINGS} mappings."})
    return value


def _clean_roles_groups(value) -> list[list[str]]:
    cleaned = []
    for position, item in enumerate(_pairs(value, field="roles_groups")):
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise ValidationError({"roles_groups": f"Item {position}: give [role, group] pairs."})
        role, group = item
        code = _ROLE_BY_NAME.get(str(role).strip().lower()) if isinstance(role, str) else None
        if code is None:
            names = ", ".join(str(role.label) for role in MAPPABLE_ROLES)
            owner = " (Owners are made by an Owner, never by a group)" if str(role).strip().lower() in (
                "owner", "ow") else ""
            raise ValidationError({"roles_groups": f"Item {position}: unknown role {role!r}{owner}; "
                                                   f"map groups to {names}."})
        cleaned.append([str(Role(code).label), _group(group, field="roles_groups", position=position)])
    return cleaned


def _clean_workspaces_groups(value, *, organization: Organization) -> list[list[str]]:
    from workspaces.models import Workspace

    cleaned = []
    for position, item in enumerate(_pairs(value, field="workspaces_groups")):
        if not isinstance(item, list | tuple) or len(item) != 2 or not isinstance(item[0], str):
            raise ValidationError({"workspaces_groups": f"Item {position}: give [workspace title, group] pairs."})
        cleaned.append([item[0].strip(), _group(item[1], field="workspaces_groups", position=position)])
    titles = {title for title, _ in cleaned}
    if titles:
        with tenant_context(organization):
            found = set(Workspace.objects.filter(title__in=titles, is_personal=False, is_archived=False)
                        .values_list("title", flat=True))
        missing = sorted(titles - found)
        if missing:
            raise ValidationError({"workspaces_groups": f"No workspace titled {missing[0]!r} in this organization "
                                                        "(personal and archived workspaces cannot be mapped)."})
    return cleaned


def _clean_projects_groups(value, *, organization: Organization) -> list[dict]:
    from labeling.models import Project

    cleaned = []
    for position, item in enumerate(_pairs(value, field="projects_groups")):
        if not isinstance(item, dict) or set(item) - {"project_id", "group", "role"}:
            raise ValidationError({"projects_groups": f"Item {position}: give objects with project_id, group "
                                                      "and role."})
        project_id = item.get("project_id")
        if isinstance(project_id, bool) or not isinstance(project_id, int) or project_id < 1:
            raise ValidationError({"projects_groups": f"Item {position}: project_id must be a project id."})
        role = item.get("role", "Inherit")
        if not isinstance(role, str) or role.strip().lower() not in PROJECT_ROLES:
            raise ValidationError({"projects_groups": f"Item {position}: role must be Inherit, Annotator or "
                                                      "Reviewer."})
        code = PROJECT_ROLES[role.strip().lower()]
        cleaned.append({"project_id": project_id, "group": _group(item.get("group"), field="projects_groups",
                                                                  position=position),
                        "role": PROJECT_ROLE_NAMES[code]})
    ids = {item["project_id"] for item in cleaned}
    if ids:
        with tenant_context(organization):
            found = set(Project.objects.filter(pk__in=ids).values_list("pk", flat=True))
        missing = sorted(ids - found)
        if missing:
            raise ValidationError({"projects_groups": f"No project {missing[0]} in this organization."})
    return cleaned


MAPPING_FIELDS = ("roles_groups", "workspaces_groups", "projects_groups")


def mappings_clean(*, organization: Organization, data: dict) -> dict:
    """Validate the mapping fields present in `data` (any of MAPPING_FIELDS); returns them in
    Label Studio's shapes with role names spelled out. Raises ValidationError naming the field."""
    cleaned = {}
    if "roles_groups" in data:
        cleaned["roles_groups"] = _clean_roles_groups(data["roles_groups"])
    if "workspaces_groups" in data:
        cleaned["workspaces_groups"] = _clean_workspaces_groups(data["workspaces_groups"], organization=organization)
    if "projects_groups" in data:
        cleaned["projects_groups"] = _clean_projects_groups(data["projects_groups"], organization=organization)
    return cleaned


# --- applying them ---------------------------------------------------------------------------------

@dataclass
class SyncResult:
    membership: Membership | None
    created: bool = False
    role: dict | None = None  # {"from", "to"} when the role changed
    workspaces_added: list[int] = field(default_factory=list)
    workspaces_removed: list[int] = field(default_factory=list)
    projects_added: list[int] = field(default_factory=list)
    projects_removed: list[int] = field(default_factory=list)
    project_roles: dict[int, str | None] = field(default_factory=dict)  # project id -> role (None: removed)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.role or self.workspaces_added or self.workspaces_removed
                    or self.projects_added or self.projects_removed or self.project_roles)

    def details(self, source: str) -> dict:
        details = {"source": source}
        for name in ("role", "workspaces_added", "workspaces_removed", "projects_added", "projects_removed"):
            value = getattr(self, name)
            if value:
                details[name] = value
        if self.project_roles:
            details["project_roles"] = {str(k): v for k, v in self.project_roles.items()}
        return details


def strongest_role(mappings: GroupMappings, groups) -> str | None:
    """The strongest organization role any of `groups` maps to (a role code), or None."""
    groups = set(groups)
    roles = [role for role, group in mappings.roles if group in groups]
    return min(roles, key=_ROLE_STRENGTH.__getitem__) if roles else None


def _wanted_projects(mappings: GroupMappings, groups: frozenset[str]) -> dict[int, str]:
    """Project id -> the project role override the groups give ("" for Inherit)."""
    wanted: dict[int, str] = {}
    for project_id, group, role in mappings.projects:
        if group in groups:
            # Two groups on one project: the stronger override wins (Reviewer over Annotator).
            previous = wanted.get(project_id)
            wanted[project_id] = role if previous in (None, "") or role == Role.REVIEWER else previous
    return wanted


_DELETE_PAIRS_SQL = """
DELETE FROM {table} AS row USING unnest(%s::bigint[], %s::bigint[]) AS pair(user_id, target_id)
WHERE row.user_id = pair.user_id AND row.{column} = pair.target_id
"""


def _delete_pairs(model, *, column: str, pairs: list[tuple[int, int]]) -> None:
    """Delete the rows of `model` for each (user id, `column` value) pair, in one statement."""
    if pairs:
        with connection.cursor() as cursor:
            cursor.execute(_DELETE_PAIRS_SQL.format(table=model._meta.db_table, column=column),  # noqa: S608 - ours
                           [[user_id for user_id, _ in pairs], [target for _, target in pairs]])


class _Batch:
    """One sync of many members of one organization through one protocol: every read is a query per
    table for all of them, every write a statement per kind of change (a group of thousands joins in
    a handful of statements, not thousands)."""

    def __init__(self, *, organization: Organization, source: str, mappings: GroupMappings):
        self.organization, self.source, self.mappings = organization, source, mappings
        self.grants_to_write: list[SsoGrant] = []
        self.grants_to_delete: list[int] = []
        self.memberships_changed: list[Membership] = []

    def grant(self, *, user_id: int, kind: str, target_id: int = 0, role: str = "", replaced_role: str = "") -> None:
        self.grants_to_write.append(SsoGrant(organization=self.organization, user_id=user_id, source=self.source,
                                             kind=kind, target_id=target_id, role=role, replaced_role=replaced_role))

    def grants_of(self, user_ids) -> dict[int, dict[tuple[str, int], SsoGrant]]:
        found: dict[int, dict[tuple[str, int], SsoGrant]] = {user_id: {} for user_id in user_ids}
        rows = SsoGrant.objects.select_for_update().filter(organization=self.organization, source=self.source,
                                                          user_id__in=list(user_ids)).order_by("id")
        for row in rows:
            found[row.user_id][(row.kind, row.target_id)] = row
        return found

    # --- the organization role ---------------------------------------------------------------------

    def sync_role(self, *, membership: Membership, wanted: str | None, grant: SsoGrant | None,
                  result: SyncResult) -> None:
        if membership.role == Role.OWNER:
            return
        current = membership.role
        if wanted is not None:
            if current != wanted:
                self._set_role(membership, wanted, result)
                self.grant(user_id=membership.user_id, kind=SsoGrant.Kind.ROLE, role=wanted,
                           replaced_role=grant.replaced_role if grant is not None else current)
            return
        if grant is None:
            return
        if current == grant.role:
            # Set by SSO and not changed by hand since: back to what the member had before.
            restored = grant.replaced_role or self.organization.default_role
            if restored in INACTIVE_ROLES or restored == Role.OWNER:
                restored = self.organization.default_role
            if restored != current:
                self._set_role(membership, restored, result)
        self.grants_to_delete.append(grant.pk)

    def _set_role(self, membership: Membership, role: str, result: SyncResult) -> None:
        result.role = {"from": membership.role, "to": role}
        membership.role = role
        membership.updated_at = timezone.now()  # bulk_update leaves auto_now alone
        self.memberships_changed.append(membership)

    # --- workspaces --------------------------------------------------------------------------------

    def sync_workspaces(self, *, wanted_titles: dict[int, set[str]], grants, results: dict[int, SyncResult]) -> None:
        from workspaces.models import Workspace, WorkspaceMembership

        titles = set().union(*wanted_titles.values()) if wanted_titles else set()
        ids_by_title: dict[str, list[int]] = {}
        for pk, title in (Workspace.objects.filter(title__in=titles, is_personal=False, is_archived=False)
                          .values_list("pk", "title") if titles else []):
            ids_by_title.setdefault(title, []).append(pk)
        wanted = {user_id: {pk for title in user_titles for pk in ids_by_title.get(title, [])}
                  for user_id, user_titles in wanted_titles.items()}
        granted = {user_id: {target for kind, target in grants[user_id] if kind == SsoGrant.Kind.WORKSPACE}
                   for user_id in wanted}
        involved = set().union(*wanted.values(), *granted.values())
        current: dict[int, set[int]] = {user_id: set() for user_id in wanted}
        if involved:
            for user_id, workspace_id in WorkspaceMembership.objects.filter(
                    user_id__in=list(wanted), workspace_id__in=involved).values_list("user_id", "workspace_id"):
                current[user_id].add(workspace_id)
        adds, removals = [], []
        for user_id in wanted:
            added = sorted(wanted[user_id] - current[user_id])
            removed = sorted(granted[user_id] - wanted[user_id])
            adds += [WorkspaceMembership(workspace_id=pk, user_id=user_id) for pk in added]
            for pk in added:
                self.grant(user_id=user_id, kind=SsoGrant.Kind.WORKSPACE, target_id=pk)
            removals += [(user_id, pk) for pk in removed]
            self.grants_to_delete += [grants[user_id][(SsoGrant.Kind.WORKSPACE, pk)].pk for pk in removed]
            results[user_id].workspaces_added = added
            results[user_id].workspaces_removed = sorted(set(removed) & current[user_id])
        WorkspaceMembership.objects.bulk_create(adds, ignore_conflicts=True)
        _delete_pairs(WorkspaceMembership, column="workspace_id", pairs=removals)

    # --- projects and project roles ----------------------------------------------------------------

    def sync_projects(self, *, wanted_roles: dict[int, dict[int, str]], grants, results: dict[int, SyncResult]) -> None:
        from labeling.models import Project, ProjectMember, ProjectRole

        mapped = set().union(*(set(roles) for roles in wanted_roles.values())) if wanted_roles else set()
        existing = set(Project.objects.filter(pk__in=mapped).values_list("pk", flat=True)) if mapped else set()
        involved: dict[int, set[int]] = {}
        for user_id, roles in wanted_roles.items():
            wanted_roles[user_id] = {pk: role for pk, role in roles.items() if pk in existing}
            involved[user_id] = set(wanted_roles[user_id]) | {
                target for kind, target in grants[user_id]
                if kind in (SsoGrant.Kind.PROJECT, SsoGrant.Kind.PROJECT_ROLE)}
        projects = set().union(*involved.values()) if involved else set()
        members: dict[int, set[int]] = {user_id: set() for user_id in wanted_roles}
        overrides: dict[int, dict[int, str]] = {user_id: {} for user_id in wanted_roles}
        if projects:
            users = list(wanted_roles)
            for user_id, project_id in ProjectMember.objects.filter(
                    user_id__in=users, project_id__in=projects, enabled=True).values_list("user_id", "project_id"):
                members[user_id].add(project_id)
            for user_id, project_id, role in ProjectRole.objects.filter(
                    user_id__in=users, project_id__in=projects).values_list("user_id", "project_id", "role"):
                overrides[user_id][project_id] = role

        member_adds, member_removals, role_sets, role_removals = [], [], [], []
        for user_id, roles in wanted_roles.items():
            user_grants, result = grants[user_id], results[user_id]
            granted = {target for kind, target in user_grants if kind == SsoGrant.Kind.PROJECT}
            granted_roles = {target for kind, target in user_grants if kind == SsoGrant.Kind.PROJECT_ROLE}
            added = sorted(set(roles) - members[user_id])
            removed = sorted(granted - set(roles))
            member_adds += [ProjectMember(project_id=pk, user_id=user_id, enabled=True) for pk in added]
            for pk in added:
                self.grant(user_id=user_id, kind=SsoGrant.Kind.PROJECT, target_id=pk)
            member_removals += [(user_id, pk) for pk in removed]
            self.grants_to_delete += [user_grants[(SsoGrant.Kind.PROJECT, pk)].pk for pk in removed]
            result.projects_added = added
            result.projects_removed = sorted(set(removed) & members[user_id])
            for pk in sorted(involved[user_id]):
                role, ours = roles.get(pk) or "", pk in granted_roles
                current = overrides[user_id].get(pk)
                if role and (current is None or ours):
                    if current != role:
                        role_sets.append(ProjectRole(project_id=pk, user_id=user_id, role=role))
                        result.project_roles[pk] = role
                    self.grant(user_id=user_id, kind=SsoGrant.Kind.PROJECT_ROLE, target_id=pk, role=role)
                elif not role and ours:
                    grant = user_grants[(SsoGrant.Kind.PROJECT_ROLE, pk)]
                    if current == grant.role:
                        role_removals.append((user_id, pk))
                        result.project_roles[pk] = None
                    self.grants_to_delete.append(grant.pk)
        ProjectMember.objects.bulk_create(member_adds, update_conflicts=True, unique_fields=["project", "user"],
                                          update_fields=["enabled"])
        _delete_pairs(ProjectMember, column="project_id", pairs=member_removals)
        ProjectRole.objects.bulk_create(role_sets, update_conflicts=True, unique_fields=["project", "user"],
                                        update_fields=["role", "updated_at"])
        _delete_pairs(ProjectRole, column="project_id", pairs=role_removals)

    # --- writing it down ---------------------------------------------------------------------------

    def flush(self) -> None:
        Membership.objects.bulk_update(self.memberships_changed, ["role", "updated_at"])
        if self.grants_to_delete:
            # One statement (the ORM's delete() collects and deletes in chunks of a hundred).
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {SsoGrant._meta.db_table} WHERE id = ANY(%s)",  # noqa: S608 - ours
                               [self.grants_to_delete])
        SsoGrant.objects.bulk_create(
            self.grants_to_write, update_conflicts=True,
            unique_fields=["organization", "user", "source", "kind", "target_id"],
            update_fields=["role", "replaced_role", "updated_at"],
        )


def access_sync_many(*, organization: Organization, source: str, groups_of: Mapping[User, Iterable[str]],
                     mappings: GroupMappings, create_membership: bool = False) -> dict[int, SyncResult]:
    """Give each user what their `groups` map to in `organization`, and take back what SSO
    (`source`: saml or scim) gave through groups they left; results by user id. With
    `create_membership`, a person who is not a member yet joins with the mapped role (else the
    organization's default role); otherwise non-members are left alone (their result's membership
    is None). Deactivated members get nothing. One transaction, a statement or two per table
    whatever the number of users; audited as "sso.access_synced" for each member whose access
    changed."""
    users = {user.pk: user for user in groups_of}
    groups = {user.pk: frozenset(group.strip() for group in user_groups if isinstance(group, str) and group.strip())
              for user, user_groups in groups_of.items()}
    results = {user_id: SyncResult(membership=None) for user_id in users}
    batch = _Batch(organization=organization, source=source, mappings=mappings)
    with transaction.atomic():
        memberships = {row.user_id: row for row in Membership.objects.select_for_update()
                       .filter(organization=organization, user_id__in=list(users)).order_by("user_id")}
        wanted_roles = {user_id: strongest_role(mappings, groups[user_id]) for user_id in users}
        joining = [Membership(user=users[user_id], organization=organization,
                              role=wanted_roles[user_id] or organization.default_role)
                   for user_id in users if user_id not in memberships and create_membership]
        billing_limits.seats_take(organization_id=organization.pk, roles=[joiner.role for joiner in joining])
        for membership in Membership.objects.bulk_create(joining):
            memberships[membership.user_id] = membership
            results[membership.user_id].created = True
            wanted = wanted_roles[membership.user_id]
            if wanted is not None and wanted != organization.default_role:
                batch.grant(user_id=membership.user_id, kind=SsoGrant.Kind.ROLE, role=wanted,
                            replaced_role=organization.default_role)
        for user_id, membership in memberships.items():
            membership.user = users[user_id]
            results[user_id].membership = membership
        active = [user_id for user_id, membership in memberships.items() if membership.role not in INACTIVE_ROLES]
        grants = batch.grants_of(active)
        for user_id in active:
            if not results[user_id].created:
                batch.sync_role(membership=memberships[user_id], wanted=wanted_roles[user_id],
                                grant=grants[user_id].get((SsoGrant.Kind.ROLE, 0)), result=results[user_id])
        with tenant_context(organization):
            batch.sync_workspaces(
                wanted_titles={user_id: {title for title, group in mappings.workspaces if group in groups[user_id]}
                               for user_id in active},
                grants=grants, results=results)
            batch.sync_projects(wanted_roles={user_id: _wanted_projects(mappings, groups[user_id])
                                              for user_id in active},
                                grants=grants, results=results)
        batch.flush()
        changed = [user_id for user_id in active if results[user_id].changed] + [
            user_id for user_id in users if user_id not in active and results[user_id].created]
        audit.record_many(organization=organization, actor=None, action="sso.access_synced", entries=[
            (users[user_id], {"user_id": user_id, "email": users[user_id].email, **results[user_id].details(source)})
            for user_id in changed])
    return results


def access_sync(*, organization: Organization, user: User, source: str, groups: Iterable[str],
                mappings: GroupMappings, create_membership: bool) -> SyncResult:
    """`access_sync_many` for one person (a SAML login)."""
    return access_sync_many(organization=organization, source=source, groups_of={user: groups},
                            mappings=mappings, create_membership=create_membership)[user.pk]


def grants_forget(*, organization: Organization, user: User, source: str | None = None) -> int:
    """Drop the record of what SSO gave (all protocols, or one), e.g. when the member leaves; the
    memberships themselves are the caller's to remove."""
    rows = SsoGrant.objects.filter(organization=organization, user=user)
    if source is not None:
        rows = rows.filter(source=source)
    deleted, _ = rows.delete()
    return deleted
