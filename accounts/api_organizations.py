"""Organization administration API (Label Studio Enterprise's /api/organizations/...): the
caller's organizations, settings and default role, members and their roles, member tags and
permission overrides.

Every `{pk}` must be the request's own organization (another id answers 404, never data), so the
public-schema rows read here are always those of the organization the credential is bound to.
"""

from django.core.exceptions import ValidationError
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import organizations as services
from accounts import organizations_selectors as selectors
from accounts.access import PERMISSIONS, PermissionSpec, actor_of
from accounts.models import Membership, MemberTag, OrganizationPermission, Role
from accounts.serializers import profile_payload
from platform_core.pagination import page_response
from platform_core.params import body_ids, query_bool, query_datetime, query_ids, truthy
from platform_core.routing import route
from tenants.models import Organization

MEMBERS_PAGE_SIZE, MEMBERS_MAX_PAGE_SIZE = 30, 1000
TAGS_PAGE_SIZE, TAGS_MAX_PAGE_SIZE = 30, 100


# --- Payloads (Label Studio's shapes) ------------------------------------------------------------

def organization_id_payload(organization: Organization) -> dict:
    """OrganizationId."""
    return {"id": organization.pk, "title": organization.title, "contact_info": organization.contact_info,
            "created_at": organization.created_at}


def organization_payload(organization: Organization) -> dict:
    """LseOrganization. The organization's invite token is not part of it: invites have their own API."""
    return {
        "id": organization.pk,
        "title": organization.title,
        "created_at": organization.created_at,
        "contact_info": organization.contact_info,
        "default_role": organization.default_role,
        "external_id": organization.external_id,
        "embed_domains": organization.embed_domains,
        "embed_settings": organization.embed_settings,
        "token": None,
        "custom_scripts_enabled": False,
        "email_notification_settings": None,
        "billing": {
            "enforce_session_concurrency": False,
            "manual_role_management": False,
            "manual_workspace_management": False,
            "max_parallel_sessions": None,
            "session_concurrency_window_seconds": None,
        },
    }


def default_role_payload(organization: Organization) -> dict:
    """DefaultRole."""
    return {
        "organization": organization.pk,
        "default_role": organization.default_role,
        "external_id": organization.external_id,
        "embed_domains": organization.embed_domains,
        "embed_settings": organization.embed_settings,
        "email_notification_settings": None,
        "extra_data_on_activity_logs": False,
        "annotator_reviewer_firewall_enabled_at": None,
        "custom_scripts_enabled_at": None,
        "label_stream_navigation_disabled_at": None,
        "read_only_quick_view_enabled_at": None,
    }


def member_list_user_payload(user) -> dict:
    """LseUserOrganizationMemberList: another person's profile, without their private settings."""
    return {
        **profile_payload(user),
        "date_joined": user.date_joined,
        "last_activity": user.last_activity,
        "active_organization": user.active_organization_id,
        "allow_newsletters": None,
        "custom_hotkeys": None,
        "pause": None,
        "lse_fields": None,
        "created_projects": None,
        "contributed_to_projects": None,
    }


def member_payload(membership: Membership, *, tags: list[dict], projects: selectors.MemberProjects | None) -> dict:
    """LseOrganizationMemberList."""
    user_id = membership.user_id
    return {
        "id": membership.pk,
        "organization": membership.organization_id,
        "role": membership.role,
        "user": member_list_user_payload(membership.user),
        "tags": tags,
        "concurrency": None,
        "created_projects": None if projects is None else projects.created.get(user_id, []),
        "contributed_to_projects": None if projects is None else projects.contributed.get(user_id, []),
    }


def member_detail_payload(membership: Membership, *, stats: selectors.MemberStats,
                          projects: selectors.MemberProjects | None) -> dict:
    """OrganizationMember."""
    user_id = membership.user_id
    return {
        "user": user_id,
        "organization": membership.organization_id,
        "role": membership.role,
        "created_at": membership.created_at,
        "annotations_count": stats.annotations_count,
        "contributed_projects_count": stats.contributed_projects_count,
        "created_projects": None if projects is None else projects.created.get(user_id, []),
        "contributed_to_projects": None if projects is None else projects.contributed.get(user_id, []),
    }


def member_tag_payload(tag: MemberTag) -> dict:
    """OrganizationMemberTag (tags come from selectors.member_tags_of, with member_count)."""
    creator = tag.created_by
    return {
        "id": tag.pk,
        "label": tag.label,
        "organization": tag.organization_id,
        "member_count": getattr(tag, "member_count", None),
        "created_at": tag.created_at,
        "updated_at": tag.updated_at,
        "created_by": None if creator is None else {
            "id": creator.pk, "email": creator.email, "first_name": creator.first_name,
            "last_name": creator.last_name, "avatar": "",
        },
    }


def permission_option_payload(spec: PermissionSpec) -> dict:
    """ConfigurablePermissionOption."""
    return {"permission": spec.key, "label": spec.label, "group": spec.group, "tooltip": spec.tooltip,
            "default": list(spec.default), "options": list(spec.options)}


def permission_override_payload(override: OrganizationPermission) -> dict:
    """OrganizationPermission: the override with what the permission is."""
    spec = PERMISSIONS.get(override.permission)
    described = permission_option_payload(spec) if spec else {
        "permission": override.permission, "label": None, "group": None, "tooltip": None, "default": [],
        "options": []}
    return {**described, "id": override.pk, "organization": override.organization_id, "roles": override.roles}


# --- Request parsing -----------------------------------------------------------------------------

def _query_number(request, name: str) -> int | None:
    """An id in the query string; the SDK types some as floats (`3.0`)."""
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except ValueError:
        raise ValidationError({name: f"Must be an integer, got {value!r}."}) from None
    if not number.is_integer() or abs(number) >= 2**63:
        raise ValidationError({name: f"Must be an integer id, got {value!r}."})
    return int(number)


def _query_roles(request) -> tuple[str, ...]:
    roles = tuple(part.strip() for value in request.query_params.getlist("role") for part in value.split(",")
                  if part.strip())
    unknown = [role for role in roles if role not in Role.values]
    if unknown:
        raise ValidationError({"role": f"Unknown role(s) {unknown}; roles are {', '.join(Role.values)}."})
    return roles


def member_filters(request) -> selectors.MemberFilters:
    return selectors.MemberFilters(
        roles=_query_roles(request),
        search=request.query_params.get("search", "").strip(),
        tag_ids=tuple(query_ids(request, "tags") or ()),
        exclude_project_id=_query_number(request, "exclude_project_id"),
        exclude_workspace_id=_query_number(request, "exclude_workspace_id"),
        last_activity_gte=query_datetime(request, "user__last_activity__gte"),
        last_activity_lte=query_datetime(request, "user__last_activity__lte"),
        deleted_only=query_bool(request, "is_deleted"),
    )


def body(request) -> dict:
    """The request body, which must be an object (JSON or a form)."""
    if not isinstance(request.data, dict):
        raise ValidationError({"body": "Send an object (JSON or form fields)."})
    return request.data


def _body_int(request, name: str) -> int:
    value = body(request).get(name)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError({name: "Give an integer id." if value is None else f"Must be an integer, got {value!r}."})
    return value


# --- Views ---------------------------------------------------------------------------------------

class OrganizationScopedApi(APIView):
    """A route under /api/organizations/{pk}/: only the request's own organization answers."""

    def organization(self, request, pk) -> Organization:
        organization = request._request.organization
        if int(pk) != organization.pk:
            raise NotFound("No organization with this id here.")
        return organization


class OrganizationListApi(APIView):
    permissions = {"GET": "organizations.view"}

    def get(self, request):
        organizations = selectors.organizations_of_user(user=request.user,
                                                        ordering=request.query_params.get("ordering"))
        return Response([organization_id_payload(organization) for organization in organizations])


class OrganizationDetailApi(OrganizationScopedApi):
    permissions = {"GET": "organizations.view", "PATCH": "organizations.change"}

    def get(self, request, pk):
        return Response(organization_payload(self.organization(request, pk)))

    def patch(self, request, pk):
        organization = self.organization(request, pk)
        data = body(request)
        changes = {name: data[name] for name in services.ORGANIZATION_SETTINGS if name in data}
        services.organization_update(organization=organization, actor=actor_of(request), changes=changes,
                                     request=request)
        return Response(organization_payload(organization))


class DefaultRoleApi(OrganizationScopedApi):
    permissions = {"PATCH": "organizations.change"}
    changeable = ("default_role", "external_id", "embed_domains", "embed_settings")

    def patch(self, request, pk):
        organization = self.organization(request, pk)
        data = body(request)
        changes = {name: data[name] for name in self.changeable if name in data}
        services.organization_update(organization=organization, actor=actor_of(request), changes=changes,
                                     request=request)
        return Response(default_role_payload(organization))


def _projects_if_asked(request, *, user_ids: list[int]) -> selectors.MemberProjects | None:
    """The members' created and contributed-to projects, with `?contributed_to_projects=true`."""
    if not query_bool(request, "contributed_to_projects"):
        return None
    if not user_ids:
        return selectors.MemberProjects(created={}, contributed={})
    return selectors.projects_of_members(actor=actor_of(request), user_ids=user_ids)


def _member_response(request, membership: Membership) -> Response:
    tags = selectors.tags_by_membership(membership_ids=[membership.pk])
    return Response(member_payload(membership, tags=tags.get(membership.pk, []), projects=None))


class MembershipListApi(OrganizationScopedApi):
    permissions = {"GET": "members.view", "PATCH": "members.change"}

    def get(self, request, pk):
        organization = self.organization(request, pk)
        memberships = selectors.memberships_of(organization=organization, filters=member_filters(request),
                                               ordering=request.query_params.get("ordering"))

        def serialize(rows: list[Membership]) -> list[dict]:
            tags = selectors.tags_by_membership(membership_ids=[m.pk for m in rows]) if rows else {}
            projects = _projects_if_asked(request, user_ids=[m.user_id for m in rows])
            return [member_payload(m, tags=tags.get(m.pk, []), projects=projects) for m in rows]

        return page_response(request, memberships, serialize=serialize, pager=selectors.page_of,
                             default_size=MEMBERS_PAGE_SIZE, max_size=MEMBERS_MAX_PAGE_SIZE)

    def patch(self, request, pk):
        """Change one member's role: {"user_id": ..., "role": ...}."""
        organization = self.organization(request, pk)
        user_id = _body_int(request, "user_id")
        role = body(request).get("role")
        if role is None:
            raise ValidationError({"role": "Give the member's new role."})
        membership = selectors.membership_of_user(organization=organization, user_id=user_id)
        if membership is None:
            raise NotFound(f"User {user_id} is not a member of this organization.")
        membership = services.membership_role_change(organization=organization, actor=actor_of(request),
                                                     membership=membership, role=role, request=request)
        return _member_response(request, membership)


class MembershipDetailApi(OrganizationScopedApi):
    permissions = {"GET": "members.view", "DELETE": "members.change"}

    def membership(self, organization, user_pk) -> Membership:
        membership = selectors.membership_of_user(organization=organization, user_id=int(user_pk))
        if membership is None:
            raise NotFound("No member with this user id in this organization.")
        return membership

    def get(self, request, pk, user_pk):
        membership = self.membership(self.organization(request, pk), user_pk)
        projects = _projects_if_asked(request, user_ids=[membership.user_id])
        stats = selectors.member_stats(user_id=membership.user_id)
        return Response(member_detail_payload(membership, stats=stats, projects=projects))

    def delete(self, request, pk, user_pk):
        organization = self.organization(request, pk)
        membership = self.membership(organization, user_pk)
        try:
            services.membership_remove(organization=organization, actor=actor_of(request),
                                       membership=membership, request=request)
        except services.SelfRemovalError as exc:
            return Response({"detail": exc.messages[0]}, status=status.HTTP_405_METHOD_NOT_ALLOWED)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberTagListApi(OrganizationScopedApi):
    permissions = {"GET": "members.view", "POST": "members.change"}

    def get(self, request, pk):
        organization = self.organization(request, pk)
        tags = selectors.member_tags_of(organization=organization, search=request.query_params.get("search", ""),
                                        ordering=request.query_params.get("ordering"))
        return page_response(request, tags, serialize=lambda rows: [member_tag_payload(tag) for tag in rows],
                             pager=selectors.page_of, default_size=TAGS_PAGE_SIZE, max_size=TAGS_MAX_PAGE_SIZE)

    def post(self, request, pk):
        organization = self.organization(request, pk)
        tag = services.member_tag_create(organization=organization, actor=actor_of(request),
                                         label=body(request).get("label"), request=request)
        tag = selectors.member_tag_get(organization=organization, tag_id=tag.pk)
        return Response(member_tag_payload(tag), status=status.HTTP_201_CREATED)


class MemberTagDetailApi(OrganizationScopedApi):
    permissions = {"GET": "members.view", "PATCH": "members.change", "DELETE": "members.change"}

    def tag(self, request, pk, tag_pk) -> MemberTag:
        tag = selectors.member_tag_get(organization=self.organization(request, pk), tag_id=int(tag_pk))
        if tag is None:
            raise NotFound("No member tag with this id in this organization.")
        return tag

    def get(self, request, pk, tag_pk):
        return Response(member_tag_payload(self.tag(request, pk, tag_pk)))

    def patch(self, request, pk, tag_pk):
        tag, data = self.tag(request, pk, tag_pk), body(request)
        if "label" in data:
            services.member_tag_update(tag=tag, actor=actor_of(request), label=data["label"], request=request)
        return Response(member_tag_payload(tag))

    def delete(self, request, pk, tag_pk):
        services.member_tag_delete(tag=self.tag(request, pk, tag_pk), actor=actor_of(request), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberTagBulkApi(OrganizationScopedApi):
    permissions = {"POST": "members.change", "DELETE": "members.change"}

    def post(self, request, pk):
        created = services.member_tags_bulk_create(organization=self.organization(request, pk),
                                                   actor=actor_of(request), labels=body(request).get("labels"),
                                                   request=request)
        return Response({"created": created}, status=status.HTTP_201_CREATED)

    def delete(self, request, pk):
        """Tag ids in `?ids=1,2` (the SDK), or a JSON body with `ids` or `labels`."""
        organization, data = self.organization(request, pk), body(request)
        tag_ids = query_ids(request, "ids")
        labels = None
        if tag_ids is None and "ids" in data:
            tag_ids = body_ids(data["ids"], field="ids")
        if tag_ids is None and "labels" in data:
            labels = data["labels"]
            if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
                raise ValidationError({"labels": "Must be a list of labels."})
        deleted = services.member_tags_bulk_delete(organization=organization, actor=actor_of(request),
                                                   tag_ids=tag_ids, labels=labels, request=request)
        return Response({"deleted": deleted})


class MemberTagAssignmentApi(OrganizationScopedApi):
    """POST assigns `tags` to members, DELETE takes them off: the members are `included` user ids,
    or `all` members matching the query-string filters of the member list, minus `excluded`."""

    permissions = {"POST": "members.change", "DELETE": "members.change"}

    def targets(self, request, organization):
        data = body(request)
        if "all" not in data:
            raise ValidationError({"all": "Say whether to act on all members (true) or on `included` (false)."})
        included = body_ids(data["included"], field="included") if "included" in data else None
        excluded = body_ids(data["excluded"], field="excluded") if "excluded" in data else None
        return selectors.memberships_for_bulk(
            organization=organization, all_members=truthy(data["all"]), included=included, excluded=excluded,
            filters=member_filters(request))

    def post(self, request, pk):
        organization, data = self.organization(request, pk), body(request)
        assigned = services.member_tags_assign(
            organization=organization, actor=actor_of(request), memberships=self.targets(request, organization),
            tag_ids=data.get("tags", []), overwrite=truthy(data.get("overwrite", False)), request=request)
        return Response({"assigned": assigned})

    def delete(self, request, pk):
        organization = self.organization(request, pk)
        unassigned = services.member_tags_unassign(
            organization=organization, actor=actor_of(request), memberships=self.targets(request, organization),
            tag_ids=body(request).get("tags", []), request=request)
        return Response({"unassigned": unassigned})


class PermissionListApi(OrganizationScopedApi):
    permissions = {"GET": "permissions.view", "POST": "permissions.change"}

    def get(self, request, pk):
        overrides = selectors.permission_overrides_of(organization=self.organization(request, pk),
                                                      ordering=request.query_params.get("ordering"))
        return Response([permission_override_payload(override) for override in overrides])

    def post(self, request, pk):
        organization, data = self.organization(request, pk), body(request)
        override = services.permission_override_create(
            organization=organization, actor=actor_of(request), permission=data.get("permission"),
            roles=data.get("roles"), request=request)
        return Response(permission_override_payload(override))


class PermissionOptionsApi(OrganizationScopedApi):
    permissions = {"GET": "permissions.view"}
    orderings = {"permission": "key", "group": "group", "label": "label"}

    def get(self, request, pk):
        self.organization(request, pk)
        ordering = request.query_params.get("ordering") or "permission"
        attribute = self.orderings.get(ordering.lstrip("-"))
        if attribute is None:
            raise ValidationError({"ordering": f"Cannot order by {ordering!r}; use one of {list(self.orderings)}."})
        options = sorted(PERMISSIONS.values(), key=lambda spec: (getattr(spec, attribute), spec.key),
                         reverse=ordering.startswith("-"))
        return Response([permission_option_payload(spec) for spec in options])


class PermissionDetailApi(OrganizationScopedApi):
    permissions = {"GET": "permissions.view", "PUT": "permissions.change", "PATCH": "permissions.change",
                   "DELETE": "permissions.change"}

    def known(self, permission: str) -> str:
        if permission not in PERMISSIONS:
            raise NotFound(f"Unknown permission {permission!r}; GET .../permissions/options lists them.")
        return permission

    def override(self, organization, permission) -> OrganizationPermission:
        override = selectors.permission_override_get(organization=organization, permission=self.known(permission))
        if override is None:
            raise NotFound(f"{permission!r} has no override in this organization; its default roles apply.")
        return override

    def get(self, request, pk, permission):
        return Response(permission_override_payload(self.override(self.organization(request, pk), permission)))

    def put(self, request, pk, permission):
        return self.save(request, pk, permission, partial=False)

    def patch(self, request, pk, permission):
        return self.save(request, pk, permission, partial=True)

    def save(self, request, pk, permission, *, partial: bool) -> Response:
        """PUT sets the roles; PATCH too, keeping the current (or default) roles when none are
        given. Either creates the override if there is none yet."""
        organization, data = self.organization(request, pk), body(request)
        permission = self.known(permission)
        named = data.get("permission", permission)
        if named != permission:
            raise ValidationError({"permission": f"The body names {named!r} but the path {permission!r}; "
                                                 "an override cannot be renamed."})
        if "roles" in data:
            roles = data["roles"]
        elif partial:
            current = selectors.permission_override_get(organization=organization, permission=permission)
            roles = list(current.roles) if current else list(PERMISSIONS[permission].default)
        else:
            raise ValidationError({"roles": "Give the roles the permission is granted to."})
        override = services.permission_override_set(organization=organization, actor=actor_of(request),
                                                    permission=permission, roles=roles, request=request)
        return Response(permission_override_payload(override))

    def delete(self, request, pk, permission):
        organization = self.organization(request, pk)
        services.permission_override_delete(organization=organization, actor=actor_of(request),
                                            override=self.override(organization, permission), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


ORGANIZATION = r"organizations/(?P<pk>\d+)"

# Mounted under /api/ by the tenant URLconf.
urlpatterns = [
    route(r"organizations", OrganizationListApi),
    route(ORGANIZATION, OrganizationDetailApi),
    route(rf"{ORGANIZATION}/set-default-role", DefaultRoleApi),
    route(rf"{ORGANIZATION}/memberships", MembershipListApi),
    route(rf"{ORGANIZATION}/memberships/(?P<user_pk>\d+)", MembershipDetailApi),
    route(rf"{ORGANIZATION}/member-tags", MemberTagListApi),
    route(rf"{ORGANIZATION}/member-tags/bulk", MemberTagBulkApi),
    route(rf"{ORGANIZATION}/member-tags/assignments", MemberTagAssignmentApi),
    route(rf"{ORGANIZATION}/member-tags/(?P<tag_pk>\d+)", MemberTagDetailApi),
    route(rf"{ORGANIZATION}/permissions", PermissionListApi),
    route(rf"{ORGANIZATION}/permissions/options", PermissionOptionsApi),
    route(rf"{ORGANIZATION}/permissions/(?P<permission>[\w.:-]+)", PermissionDetailApi),
]
