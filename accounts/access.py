"""Who may do what: the permission matrix and `can(actor, permission, obj)`.

Every API view and page asks `can`. The answer is, in order:
1. the credential's scopes include the permission's scope (read / write / admin);
2. the actor's role (the project's role override when `obj` belongs to a project, else the
   organization role) is one of the roles the organization allows for the permission: its
   override (`OrganizationPermission`) or the default below;
3. the object rule registered for `obj`'s type, if any (project visibility, own annotations,
   workspace membership ...), agrees.

API views declare their permissions per HTTP method (`permissions = {"GET": "projects.view", ...}`)
and `MatrixPermission` checks steps 1-2 before the view runs; the view then calls `can` (or a
helper built on it) with the object for step 3. tests/test_permission_matrix.py walks every route
with every role against this table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

from django.core.cache import caches
from django.db import transaction
from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from accounts.models import ALL_SCOPES, Membership, OrganizationPermission, Role, Scope, User

OW, AD, MA, RE, AN = Role.OWNER, Role.ADMINISTRATOR, Role.MANAGER, Role.REVIEWER, Role.ANNOTATOR
ACTIVE_ROLES = (OW, AD, MA, RE, AN)
ADMINS = (OW, AD)
MANAGERS = (OW, AD, MA)
REVIEWERS = (OW, AD, MA, RE)


@dataclass(frozen=True)
class PermissionSpec:
    key: str
    group: str
    label: str
    scope: str
    default: tuple[str, ...]
    # Roles an organization may grant it to (LS's `options`); the default is always among them.
    options: tuple[str, ...] = ACTIVE_ROLES
    tooltip: str = ""
    # Roles an override can never remove (keeps an organization from locking itself out).
    always: tuple[str, ...] = ()


def _spec(key, group, label, scope, default, *, options=ACTIVE_ROLES, tooltip="", always=()) -> PermissionSpec:
    return PermissionSpec(key=key, group=group, label=label, scope=scope, default=tuple(default),
                          options=tuple(options), tooltip=tooltip, always=tuple(always))


R, W, A = Scope.READ.value, Scope.WRITE.value, Scope.ADMIN.value

PERMISSIONS: dict[str, PermissionSpec] = {spec.key: spec for spec in [
    # Organization
    _spec("organizations.view", "Organization", "See the organization", R, ACTIVE_ROLES),
    _spec("organizations.change", "Organization", "Change organization settings", A, ADMINS,
          options=MANAGERS, always=(OW,)),
    _spec("members.view", "Members", "See members and their roles", R, MANAGERS),
    _spec("members.change", "Members", "Change roles, tags; deactivate and remove members", A, ADMINS,
          options=ADMINS, always=(OW,),
          tooltip="Only an Owner makes an Owner; an Administrator cannot change an Owner."),
    _spec("members.owners", "Members", "Make, change, deactivate and remove Owners", A, (OW,),
          options=(OW,), always=(OW,)),
    _spec("members.invite", "Members", "Invite people", A, ADMINS, options=MANAGERS, always=(OW,)),
    _spec("permissions.view", "Organization", "See the permission matrix", R, ADMINS),
    _spec("permissions.change", "Organization", "Change the permission matrix", A, (OW,),
          options=ADMINS, always=(OW,)),
    _spec("session_policy.change", "Organization", "Change the session policy", A, ADMINS,
          options=ADMINS, always=(OW,)),
    _spec("sso.view", "Organization", "See single sign-on (SAML, SCIM) settings", R, ADMINS, options=ADMINS),
    _spec("sso.change", "Organization", "Change single sign-on settings and SCIM tokens", A, ADMINS,
          options=ADMINS, always=(OW,)),
    _spec("audit.view", "Organization", "Read the audit and activity logs", R, ADMINS, options=MANAGERS),
    _spec("billing.view", "Organization", "See the plan, usage and billing", R, ADMINS, options=ADMINS),
    _spec("billing.change", "Organization", "Change the plan and the payment method", A, (OW,), options=ADMINS,
          always=(OW,)),
    _spec("tokens.create", "API tokens", "Create personal API tokens", W, ACTIVE_ROLES),
    _spec("tokens.settings", "API tokens", "Change API token settings", A, ADMINS,
          options=ADMINS, always=(OW,)),
    _spec("users.view", "Members", "List the organization's users", R, MANAGERS),
    _spec("users.create", "Members", "Create users in the organization", A, ADMINS, options=ADMINS),
    _spec("users.change", "Members", "Change other users' profiles", A, ADMINS, options=ADMINS),
    _spec("profile.change", "Members", "Change your own profile, hotkeys and preferences", W, ACTIVE_ROLES),
    # Workspaces
    _spec("workspaces.view", "Workspaces", "See workspaces (members see theirs)", R, ACTIVE_ROLES),
    _spec("workspaces.view_all", "Workspaces", "See every workspace", R, ADMINS, options=MANAGERS),
    _spec("workspaces.create", "Workspaces", "Create workspaces", W, MANAGERS),
    _spec("workspaces.change", "Workspaces", "Rename, archive, manage members of workspaces", W, MANAGERS,
          options=MANAGERS),
    _spec("workspaces.delete", "Workspaces", "Delete workspaces", W, ADMINS, options=MANAGERS),
    # Projects
    _spec("projects.view", "Projects", "Open projects (members see theirs)", R, ACTIVE_ROLES),
    _spec("projects.view_all", "Projects", "See every project", R, ADMINS, options=MANAGERS),
    _spec("projects.create", "Projects", "Create projects", W, MANAGERS),
    _spec("projects.change", "Projects", "Change project settings and members", W, MANAGERS),
    _spec("projects.delete", "Projects", "Delete projects", W, MANAGERS),
    _spec("projects.roles", "Projects", "Override members' roles per project", A, ADMINS, options=MANAGERS),
    # Data
    _spec("tasks.view", "Data", "See tasks", R, ACTIVE_ROLES),
    _spec("tasks.import", "Data", "Import tasks, files and predictions", W, MANAGERS),
    _spec("tasks.change", "Data", "Change and assign tasks; run data manager actions", W, MANAGERS),
    _spec("tasks.delete", "Data", "Delete tasks", W, MANAGERS),
    _spec("exports.create", "Data", "Export annotations", W, MANAGERS),
    _spec("data_manager.views", "Data", "Keep personal data manager tabs", W, ACTIVE_ROLES),
    # Labeling
    _spec("annotations.view_all", "Labeling", "See other people's annotations when the project hides them",
          R, REVIEWERS),
    _spec("annotations.create", "Labeling", "Label tasks", W, ACTIVE_ROLES),
    _spec("annotations.change_any", "Labeling", "Change or delete anyone's annotations", W, MANAGERS),
    _spec("predictions.change", "Labeling", "Create and delete predictions", W, MANAGERS),
    _spec("annotations.delete_history", "Labeling", "Delete annotation history", W, ADMINS, options=MANAGERS),
    _spec("reviews.view", "Review", "See reviews", R, REVIEWERS),
    _spec("reviews.create", "Review", "Accept, reject and fix annotations", W, REVIEWERS),
    _spec("comments.create", "Review", "Comment on annotations", W, ACTIVE_ROLES),
    _spec("comments.change_any", "Review", "Resolve or delete anyone's comments", W, MANAGERS),
    # Integrations
    _spec("webhooks.view", "Integrations", "See webhooks", R, MANAGERS, options=MANAGERS),
    _spec("webhooks.change", "Integrations", "Create, change and delete webhooks", W, MANAGERS, options=MANAGERS),
    _spec("storages.view", "Integrations", "See cloud storages of projects", R, MANAGERS, options=MANAGERS),
    _spec("storages.change", "Integrations", "Connect, change, sync and delete cloud storages", W, MANAGERS,
          options=MANAGERS),
]}


class PermissionDenied(exceptions.PermissionDenied):
    """A `can` refusal, raised by views that check an object: the API answers 403 naming it."""

    def __init__(self, permission: str, detail: str | None = None):
        self.permission = permission
        super().__init__(detail or denial_message(permission))


def denial_message(permission: str) -> str:
    """The 403 text of a matrix refusal; tests/test_permission_matrix.py recognises it."""
    return f"Your role does not have the '{permission}' permission here."


# --- Organization overrides ------------------------------------------------------------------------

def _overrides_cache_key(organization_id: int) -> str:
    return f"permission-overrides:{organization_id}"


def overrides_of(organization_id: int) -> dict[str, frozenset[str]]:
    """The organization's overrides, cached until one changes (services call `overrides_changed`)."""
    key = _overrides_cache_key(organization_id)
    cached = caches["shared"].get(key)
    if cached is None:
        cached = {
            row.permission: list(row.roles)
            for row in OrganizationPermission.objects.filter(organization_id=organization_id)
        }
        caches["shared"].set(key, cached, 300)
    return {permission: frozenset(roles) for permission, roles in cached.items()}


def overrides_changed(organization_id: int) -> None:
    """Drop the cached overrides now and again after commit (a reader in between may have cached
    the old rows)."""
    key = _overrides_cache_key(organization_id)
    caches["shared"].delete(key)
    transaction.on_commit(lambda: caches["shared"].delete(key))


def roles_for(permission: str, overrides: Mapping[str, frozenset[str]]) -> frozenset[str]:
    spec = PERMISSIONS[permission]
    roles = overrides.get(permission)
    if roles is None:
        return frozenset(spec.default)
    return roles | frozenset(spec.always)


# --- The actor -------------------------------------------------------------------------------------

class Actor:
    """A membership plus the credential's scopes: who is asking, in which organization."""

    def __init__(self, *, membership: Membership, scopes: frozenset[str] | None = None):
        self.membership = membership
        self.user: User = membership.user
        self.organization_id: int = membership.organization_id
        self.role: str = membership.role
        self.scopes = frozenset(ALL_SCOPES) if scopes is None else frozenset(scopes)

    def __repr__(self) -> str:
        return f"Actor(user={self.user.pk}, role={self.role}, scopes={sorted(self.scopes)})"

    @cached_property
    def overrides(self) -> dict[str, frozenset[str]]:
        return overrides_of(self.organization_id)

    @cached_property
    def project_roles(self) -> dict[int, str]:
        """The actor's per-project role overrides in this organization (one query, when first needed)."""
        from labeling.models import ProjectRole

        return dict(ProjectRole.objects.filter(user_id=self.user.pk).values_list("project_id", "role"))

    def role_in(self, project_id: int | None) -> str:
        if project_id is None:
            return self.role
        return self.project_roles.get(project_id, self.role)

    def has_role_for(self, permission: str, *, project_id: int | None = None) -> bool:
        return self.role_in(project_id) in roles_for(permission, self.overrides)

    def could_anywhere(self, permission: str) -> bool:
        """Allowed by the organization role or by some project's role override: the view-level
        check, before the object (and so the project) is known."""
        allowed = roles_for(permission, self.overrides)
        return self.role in allowed or any(role in allowed for role in self.project_roles.values())


# Object rules: type -> fn(actor, permission, obj) -> bool. Apps register theirs at import
# (labeling.access, workspaces.access), so this module needs no knowledge of their models.
ObjectRule = Callable[["Actor", str, object], bool]
_OBJECT_RULES: dict[type, ObjectRule] = {}
_PROJECT_OF: dict[type, Callable[[object], int | None]] = {}


def register_object_rule(model: type, rule: ObjectRule, *, project_id_of: Callable[[object], int | None]) -> None:
    _OBJECT_RULES[model] = rule
    _PROJECT_OF[model] = project_id_of


def project_id_of(obj) -> int | None:
    if obj is None:
        return None
    getter = _PROJECT_OF.get(type(obj))
    return getter(obj) if getter else getattr(obj, "project_id", None)


def can(actor: Actor | None, permission: str, obj=None) -> bool:
    """May `actor` do `permission` (on `obj`)? The one answer every API view and page uses."""
    if actor is None or actor.role not in ACTIVE_ROLES:
        return False
    spec = PERMISSIONS[permission]
    if spec.scope not in actor.scopes:
        return False
    if not actor.has_role_for(permission, project_id=project_id_of(obj)):
        return False
    rule = _OBJECT_RULES.get(type(obj)) if obj is not None else None
    return rule(actor, permission, obj) if rule else True


def require(actor: Actor | None, permission: str, obj=None) -> None:
    """`can`, or PermissionDenied (the API's 403)."""
    if not can(actor, permission, obj):
        raise PermissionDenied(permission)


def actor_of(request) -> Actor | None:
    """The request's actor, built once per request (DRF or Django request)."""
    django_request = getattr(request, "_request", request)
    if hasattr(django_request, "actor"):
        return django_request.actor
    membership = getattr(django_request, "membership", None)
    actor = None
    if membership is not None:
        credential = getattr(django_request, "credential", None)
        actor = Actor(membership=membership, scopes=credential.scopes if credential is not None else None)
    django_request.actor = actor
    return actor


# --- DRF ----------------------------------------------------------------------------------------

def declared_permission(view, method: str) -> str | None:
    """The permission a view declares for an HTTP method (`permissions` dict; HEAD follows GET)."""
    declared = getattr(view, "permissions", None) or {}
    method = "GET" if method in ("HEAD", "OPTIONS") else method
    return declared.get(method)


class MatrixPermission(BasePermission):
    """Default DRF permission: an active member whose scopes and role (in the organization or in
    some project) allow the permission the view declares for this method. A method without a
    declared permission is refused: no route is open by omission."""

    message = "You do not have permission to perform this action."

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        actor = actor_of(request)
        if actor is None or actor.role not in ACTIVE_ROLES:
            self.message = "You are not an active member of this organization."
            return False
        permission = declared_permission(view, request.method)
        if permission is None:
            self.message = f"{type(view).__name__} declares no permission for {request.method}."
            return False
        spec = PERMISSIONS[permission]
        if spec.scope not in actor.scopes:
            self.message = f"This token lacks the '{spec.scope}' scope."
            return False
        if not actor.could_anywhere(permission):
            self.message = denial_message(permission)
            return False
        return True
