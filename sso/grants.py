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

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django_tenants.utils import tenant_context

from accounts import audit
from accounts.models import INACTIVE_ROLES, Membership, Role, User
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


def _grants(*, organization: Organization, user: User, source: str) -> dict[tuple[str, int], SsoGrant]:
    rows = SsoGrant.objects.select_for_update().filter(organization=organization, user=user, source=source)
    return {(row.kind, row.target_id): row for row in rows}


def _grant(*, organization: Organization, user: User, source: str, kind: str, target_id: int = 0, role: str = "",
           replaced_role: str = "") -> None:
    SsoGrant.objects.update_or_create(
        organization=organization, user=user, source=source, kind=kind, target_id=target_id,
        defaults={"role": role, "replaced_role": replaced_role},
    )


def _sync_role(*, membership: Membership, organization: Organization, wanted: str | None, grant: SsoGrant | None,
               source: str, result: SyncResult) -> None:
    if membership.role == Role.OWNER:
        return
    current = membership.role
    if wanted is not None:
        if current != wanted:
            replaced = grant.replaced_role if grant is not None else current
            membership.role = wanted
            membership.save(update_fields=["role", "updated_at"])
            _grant(organization=organization, user=membership.user, source=source, kind=SsoGrant.Kind.ROLE,
                   role=wanted, replaced_role=replaced)
            result.role = {"from": current, "to": wanted}
        return
    if grant is None:
        return
    if current == grant.role:
        # Set by SSO and not changed by hand since: back to what the member had before.
        restored = grant.replaced_role or organization.default_role
        if restored in INACTIVE_ROLES or restored == Role.OWNER:
            restored = organization.default_role
        if restored != current:
            membership.role = restored
            membership.save(update_fields=["role", "updated_at"])
            result.role = {"from": current, "to": restored}
    grant.delete()


def _sync_workspaces(*, organization: Organization, user: User, wanted_titles: set[str],
                     grants: dict[tuple[str, int], SsoGrant], source: str, result: SyncResult) -> None:
    from workspaces.models import Workspace, WorkspaceMembership

    wanted = set(Workspace.objects.filter(title__in=wanted_titles, is_personal=False, is_archived=False)
                 .values_list("pk", flat=True)) if wanted_titles else set()
    granted = {target for kind, target in grants if kind == SsoGrant.Kind.WORKSPACE}
    current = set(WorkspaceMembership.objects.filter(user_id=user.pk, workspace_id__in=wanted | granted)
                  .values_list("workspace_id", flat=True))
    added = sorted(wanted - current)
    WorkspaceMembership.objects.bulk_create([WorkspaceMembership(workspace_id=pk, user_id=user.pk) for pk in added],
                                            ignore_conflicts=True)
    for pk in added:
        _grant(organization=organization, user=user, source=source, kind=SsoGrant.Kind.WORKSPACE, target_id=pk)
    removed = sorted(granted - wanted)
    if removed:
        WorkspaceMembership.objects.filter(user_id=user.pk, workspace_id__in=removed).delete()
        SsoGrant.objects.filter(pk__in=[grants[(SsoGrant.Kind.WORKSPACE, pk)].pk for pk in removed]).delete()
    result.workspaces_added = added
    result.workspaces_removed = sorted(set(removed) & current)


def _sync_projects(*, organization: Organization, user: User, wanted_roles: dict[int, str],
                   grants: dict[tuple[str, int], SsoGrant], source: str, result: SyncResult) -> None:
    from labeling.models import Project, ProjectMember, ProjectRole

    if wanted_roles:
        existing = set(Project.objects.filter(pk__in=wanted_roles).values_list("pk", flat=True))
        wanted_roles = {pk: role for pk, role in wanted_roles.items() if pk in existing}
    wanted = set(wanted_roles)
    granted = {target for kind, target in grants if kind == SsoGrant.Kind.PROJECT}
    granted_roles = {target for kind, target in grants if kind == SsoGrant.Kind.PROJECT_ROLE}
    involved = wanted | granted | granted_roles
    members = set(ProjectMember.objects.filter(user_id=user.pk, project_id__in=involved, enabled=True)
                  .values_list("project_id", flat=True))
    roles = dict(ProjectRole.objects.filter(user_id=user.pk, project_id__in=involved)
                 .values_list("project_id", "role"))

    added = sorted(wanted - members)
    for pk in added:
        ProjectMember.objects.update_or_create(project_id=pk, user_id=user.pk, defaults={"enabled": True})
        _grant(organization=organization, user=user, source=source, kind=SsoGrant.Kind.PROJECT, target_id=pk)
    removed = sorted(granted - wanted)
    if removed:
        ProjectMember.objects.filter(user_id=user.pk, project_id__in=removed).delete()
        SsoGrant.objects.filter(pk__in=[grants[(SsoGrant.Kind.PROJECT, pk)].pk for pk in removed]).delete()
    result.projects_added = added
    result.projects_removed = sorted(set(removed) & members)

    for pk in sorted(involved):
        role = wanted_roles.get(pk) or ""
        ours = pk in granted_roles
        if role and (pk not in roles or ours):
            if roles.get(pk) != role:
                ProjectRole.objects.update_or_create(project_id=pk, user_id=user.pk, defaults={"role": role})
                result.project_roles[pk] = role
            _grant(organization=organization, user=user, source=source, kind=SsoGrant.Kind.PROJECT_ROLE,
                   target_id=pk, role=role)
        elif not role and ours:
            if roles.get(pk) == grants[(SsoGrant.Kind.PROJECT_ROLE, pk)].role:
                ProjectRole.objects.filter(project_id=pk, user_id=user.pk).delete()
                result.project_roles[pk] = None
            grants[(SsoGrant.Kind.PROJECT_ROLE, pk)].delete()


def access_sync(*, organization: Organization, user: User, source: str, groups: Iterable[str],
                mappings: GroupMappings, create_membership: bool) -> SyncResult:
    """Give `user` what `groups` map to in `organization`, and take back what SSO (`source`: saml
    or scim) gave through groups they left. With `create_membership`, a person who is not a member
    yet joins with the mapped role (else the organization's default role); otherwise a non-member is
    left alone (result.membership None). A deactivated member gets nothing. One transaction;
    audited as "sso.access_synced" when anything changed."""
    groups = frozenset(group.strip() for group in groups if isinstance(group, str) and group.strip())
    result = SyncResult(membership=None)
    with transaction.atomic():
        membership = (Membership.objects.select_for_update().select_related("user")
                      .filter(user=user, organization=organization).first())
        wanted_role = strongest_role(mappings, groups)
        if membership is None:
            if not create_membership:
                return result
            role = wanted_role or organization.default_role
            membership = Membership.objects.create(user=user, organization=organization, role=role)
            result.created = True
            if wanted_role is not None and wanted_role != organization.default_role:
                _grant(organization=organization, user=user, source=source, kind=SsoGrant.Kind.ROLE,
                       role=wanted_role, replaced_role=organization.default_role)
        result.membership = membership
        if membership.role in INACTIVE_ROLES:
            return result
        grants = _grants(organization=organization, user=user, source=source)
        if not result.created:
            _sync_role(membership=membership, organization=organization, wanted=wanted_role,
                       grant=grants.get((SsoGrant.Kind.ROLE, 0)), source=source, result=result)
        with tenant_context(organization):
            _sync_workspaces(organization=organization, user=user,
                             wanted_titles={title for title, group in mappings.workspaces if group in groups},
                             grants=grants, source=source, result=result)
            wanted_projects: dict[int, str] = {}
            for project_id, group, role in mappings.projects:
                if group in groups:
                    # Two groups on one project: the stronger override wins (Reviewer over Annotator).
                    previous = wanted_projects.get(project_id)
                    wanted_projects[project_id] = role if previous in (None, "") or role == Role.REVIEWER \
                        else previous
            _sync_projects(organization=organization, user=user, wanted_roles=wanted_projects, grants=grants,
                           source=source, result=result)
        if result.changed:
            audit.record(organization=organization, actor=None, action="sso.access_synced", target=user,
                         details={"user_id": user.pk, "email": user.email, **result.details(source)})
    return result


def grants_forget(*, organization: Organization, user: User, source: str | None = None) -> int:
    """Drop the record of what SSO gave (all protocols, or one), e.g. when the member leaves; the
    memberships themselves are the caller's to remove."""
    rows = SsoGrant.objects.filter(organization=organization, user=user)
    if source is not None:
        rows = rows.filter(source=source)
    deleted, _ = rows.delete()
    return deleted
