"""Organization administration pages (`/o/<slug>/settings/...`, `/o/<slug>/projects/<id>/members`).

The pages are thin: they check `can` (a member without the permission gets the 403 page, and the
buttons they may not use are not rendered), render what is simple server-side, and leave every
change to the organization's JSON API, which small scripts call with the session cookie and the
CSRF token. So one set of rules (the API's) decides every write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import wraps

from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import re_path
from django.views.decorators.csrf import ensure_csrf_cookie

from accounts import audit
from accounts.access import ACTIVE_ROLES, PERMISSIONS, Actor, actor_of, can, denial_message, overrides_of, roles_for
from accounts.models import Invite, Role, Scope

AUDIT_PAGE_SIZE = 50
# Audit action families offered as filters: the prefix before the dot ("invite.sent" -> "invite").
AUDIT_FAMILIES = {"member": "Members", "member_tag": "Member tags", "invite": "Invites", "token": "Tokens",
                  "workspace": "Workspaces", "project": "Projects", "session_policy": "Session policy",
                  "permission": "Permissions", "organization": "Organization", "sso": "Single sign-on access",
                  "saml": "SAML", "scim": "SCIM", "scim_token": "SCIM tokens"}


@dataclass(frozen=True)
class Section:
    key: str
    label: str
    path: str
    permission: str
    # Organization administration, as opposed to the member's own settings (API tokens).
    administration: bool = True


SECTIONS = [
    Section("members", "Members", "settings/members", "members.view"),
    Section("invites", "Invites", "settings/invites", "members.invite"),
    Section("workspaces", "Workspaces", "settings/workspaces", "workspaces.change"),
    Section("session-policy", "Session policy", "settings/session-policy", "session_policy.change"),
    Section("permissions", "Permissions", "settings/permissions", "permissions.view"),
    # Pages of sso/views_admin.py.
    Section("sso", "Single sign-on", "settings/sso", "sso.view"),
    Section("scim", "SCIM provisioning", "settings/scim", "sso.view"),
    Section("audit", "Audit log", "settings/audit", "audit.view"),
    # billing/views.py.
    Section("billing", "Plan and billing", "settings/billing", "billing.view"),
    Section("tokens", "API tokens", "settings/tokens", "tokens.create", administration=False),
]
SECTION_BY_KEY = {section.key: section for section in SECTIONS}


def sections_for(actor: Actor | None) -> list[Section]:
    """The settings pages this actor may open, in navigation order."""
    return [section for section in SECTIONS if can(actor, section.permission)]


def _refused(request, permission: str):
    return render(request, "tenants/refused.html", {"status": 403, "detail": denial_message(permission)},
                  status=403)


def _not_found(request):
    # Another organization's id and an invisible object look the same: no hint that it exists.
    return render(request, "tenants/refused.html", {"status": 404, "detail": "Not found."}, status=404)


def render_settings(request, template: str, *, section: str | None, context: dict):
    """A settings page: the navigation of the sections the actor may use around `template`."""
    actor = actor_of(request)
    organization = request.organization
    return render(request, template, {
        "sections": sections_for(actor),
        "current_section": section,
        "api_base": f"{_prefix(request)}api",
        "org_base": _prefix(request),
        "organization_id": organization.pk,
        "me": request.user,
        "role_labels": {code: label for code, label in Role.choices},
        **context,
    })


def _prefix(request) -> str:
    """`/o/<slug>/`: the organization's page prefix, for links and API calls."""
    return f"/o/{request.organization.slug}/"


def settings_page(section_key: str):
    """A page of one settings section: 403 page unless the actor may use it."""
    permission = SECTION_BY_KEY[section_key].permission

    def decorator(view):
        @ensure_csrf_cookie
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not can(actor_of(request), permission):
                return _refused(request, permission)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


# --- Reads the pages need (organization-filtered public tables, the tenant's own tables) --------

def _role_choices(*, include_inactive: bool) -> list[tuple[str, str]]:
    codes = [*ACTIVE_ROLES, Role.DEACTIVATED] if include_inactive else list(ACTIVE_ROLES)
    return [(code, Role(code).label) for code in codes]


def _active_users(organization) -> list:
    """The organization's active members, for the "add a member" choosers."""
    from workspaces.selectors import organization_users

    return list(organization_users(organization_id=organization.pk, active_only=True).order_by("email"))


def _pending_invites(organization) -> list[Invite]:
    """Invites sent to an address and neither accepted nor revoked (the shareable link aside)."""
    return list(
        Invite.objects.filter(organization=organization, revoked_at__isnull=True, accepted_at__isnull=True)
        .exclude(email="").select_related("created_by").order_by("-created_at", "-id")
    )


def _visible_projects(actor: Actor):
    from labeling.access import visible_projects
    from labeling.models import Project

    return visible_projects(actor, Project.objects.order_by("title", "id")).only("id", "title", "workspace_id")


def _visible_workspaces(actor: Actor) -> list:
    from workspaces.selectors import workspaces_visible_to

    return list(workspaces_visible_to(actor).filter(is_archived=False).order_by("title", "id"))


# --- Pages --------------------------------------------------------------------------------------

def settings_index(request):
    """`settings/`: the first section the member may use."""
    sections = sections_for(actor_of(request))
    if not sections:
        return _refused(request, "members.view")
    return redirect(f"{_prefix(request)}{sections[0].path}")


@settings_page("members")
def members_page(request):
    actor = actor_of(request)
    return render_settings(request, "accounts/admin/members.html", section="members", context={
        "can_change": can(actor, "members.change"),
        "role_filters": _role_choices(include_inactive=True) + [(Role.NOT_ACTIVATED, Role.NOT_ACTIVATED.label)],
        "role_choices": _role_choices(include_inactive=True),
    })


@settings_page("invites")
def invites_page(request):
    actor = actor_of(request)
    return render_settings(request, "accounts/admin/invites.html", section="invites", context={
        "invites": _pending_invites(request.organization),
        "role_choices": _role_choices(include_inactive=False),
        "projects": list(_visible_projects(actor)),
        "workspaces": _visible_workspaces(actor),
    })


@settings_page("workspaces")
def workspaces_page(request):
    actor = actor_of(request)
    return render_settings(request, "accounts/admin/workspaces.html", section="workspaces", context={
        "can_create": can(actor, "workspaces.create"),
        "sees_all": can(actor, "workspaces.view_all"),
    })


@settings_page("workspaces")
def workspace_page(request, pk: int):
    from workspaces.models import Workspace

    actor = actor_of(request)
    workspace = Workspace.objects.filter(pk=pk).first()
    if workspace is None or not can(actor, "workspaces.view", workspace):
        return _not_found(request)
    if not can(actor, "workspaces.change", workspace):
        return _refused(request, "workspaces.change")
    return render_settings(request, "accounts/admin/workspace.html", section="workspaces", context={
        "workspace": workspace,
        "can_delete": can(actor, "workspaces.delete", workspace),
        "users": _active_users(request.organization),
        "projects": list(_visible_projects(actor)),
    })


@ensure_csrf_cookie
def project_members_page(request, pk: int):
    from labeling.models import AnnotatorPause, Project

    actor = actor_of(request)
    project = Project.objects.filter(pk=pk).only("id", "title", "workspace_id", "created_by_id").first()
    if project is None or not can(actor, "projects.view", project):
        return _not_found(request)
    if not can(actor, "projects.change", project):
        return _refused(request, "projects.change")
    return render_settings(request, "accounts/admin/project_members.html", section=None, context={
        "project": project,
        "users": _active_users(request.organization),
        "pause_reasons": AnnotatorPause.Reason.choices,
    })


@settings_page("session-policy")
def session_policy_page(request):
    return render_settings(request, "accounts/admin/session_policy.html", section="session-policy", context={})


@settings_page("tokens")
def tokens_page(request):
    return render_settings(request, "accounts/admin/tokens.html", section="tokens", context={
        "scopes": Scope.choices,
        "can_change_settings": can(actor_of(request), "tokens.settings"),
    })


@dataclass(frozen=True)
class MatrixRow:
    key: str
    label: str
    tooltip: str
    overridden: bool
    cells: list[dict]


def _permission_matrix(organization_id: int) -> list[tuple[str, list[MatrixRow]]]:
    """Permissions grouped as PERMISSIONS lists them, each with a cell per active role."""
    overrides = overrides_of(organization_id)
    groups: dict[str, list[MatrixRow]] = {}
    for key, spec in PERMISSIONS.items():
        granted = roles_for(key, overrides)
        cells = [{
            "role": role,
            "label": Role(role).label,
            "granted": role in granted,
            "locked": role in spec.always or role not in spec.options,
        } for role in ACTIVE_ROLES]
        groups.setdefault(spec.group, []).append(MatrixRow(
            key=key, label=spec.label, tooltip=spec.tooltip, overridden=key in overrides, cells=cells,
        ))
    return list(groups.items())


@settings_page("permissions")
def permissions_page(request):
    return render_settings(request, "accounts/admin/permissions.html", section="permissions", context={
        "groups": _permission_matrix(request.organization.pk),
        "roles": _role_choices(include_inactive=False),
        "can_change": can(actor_of(request), "permissions.change"),
    })


def _detail_text(value) -> str:
    """One audit detail as text: a {"from", "to"} change reads "old → new"."""
    if isinstance(value, dict) and set(value) == {"from", "to"}:
        return f"{_detail_text(value['from'])} → {_detail_text(value['to'])}"
    return value if isinstance(value, str) else json.dumps(value, default=str)


@settings_page("audit")
def audit_page(request):
    family = request.GET.get("action", "")
    events = audit.events_of(organization=request.organization,
                             action=f"{family}." if family in AUDIT_FAMILIES else None)
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    for event in page:
        event.detail_lines = [(key, _detail_text(value)) for key, value in (event.details or {}).items()]
    return render_settings(request, "accounts/admin/audit.html", section="audit", context={
        "page": page,
        "families": AUDIT_FAMILIES.items(),
        "family": family if family in AUDIT_FAMILIES else "",
    })


def _slash_optional(pattern: str, view, name: str):
    return re_path(rf"^{pattern}/?$", view, name=name)


page_urlpatterns = [
    _slash_optional("settings", settings_index, "settings"),
    _slash_optional("settings/members", members_page, "settings-members"),
    _slash_optional("settings/invites", invites_page, "settings-invites"),
    _slash_optional("settings/workspaces", workspaces_page, "settings-workspaces"),
    _slash_optional(r"settings/workspaces/(?P<pk>\d+)", workspace_page, "settings-workspace"),
    _slash_optional(r"projects/(?P<pk>\d+)/members", project_members_page, "project-members"),
    _slash_optional("settings/session-policy", session_policy_page, "settings-session-policy"),
    _slash_optional("settings/tokens", tokens_page, "settings-tokens"),
    _slash_optional("settings/permissions", permissions_page, "settings-permissions"),
    _slash_optional("settings/audit", audit_page, "settings-audit"),
]
