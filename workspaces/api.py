"""Workspaces API (Label Studio Enterprise shapes): workspaces, their members and their projects.

A workspace the actor may not see answers 404, as one of another organization does.
"""

from django.core.exceptions import ValidationError
from django.http import Http404
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import actor_of, declared_permission, require
from labeling.access import visible_projects
from labeling.api import body_project_or_400
from labeling.models import Project
from labeling.selectors import projects_with_counts
from labeling.serializers import project_payload
from platform_core.pagination import page_response
from platform_core.params import query_bool, query_ids, truthy
from platform_core.routing import route
from workspaces import selectors, services
from workspaces.access import workspace_visible
from workspaces.models import Workspace
from workspaces.serializers import WorkspaceInputSerializer, organization_user_payload, workspace_payload


def organization_of(request):
    return request._request.organization


# --- input helpers shared with labeling.api_members ------------------------------------------------

def _as_id(value, *, field: str) -> int:
    if isinstance(value, bool):
        raise ValidationError({field: "Must be an integer id."})
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError({field: "Must be an integer id."}) from None
    if number < 1:
        raise ValidationError({field: "Must be a positive integer id."})
    return number


def id_from(request, *names: str) -> int:
    """An id sent in the body or the query string under one of `names` (LS's clients use both:
    the SDK sends DELETE parameters in the query string, older clients in a JSON body)."""
    data = request.data if isinstance(request.data, dict) else {}
    for name in names:
        for source in (data, request.query_params):
            if source.get(name) not in (None, ""):
                return _as_id(source.get(name), field=name)
    raise ValidationError({names[0]: "Required."})


def ids_from(request, name: str) -> list[int] | None:
    """A list of ids from the body (JSON list) or the query string (`1,2`, `[1,2]` or repeated)."""
    data = request.data if isinstance(request.data, dict) else {}
    if name in data and data[name] is not None:
        value = data[name]
        values = value if isinstance(value, list) else [value]
        ids = [_as_id(item, field=name) for item in values]
        return ids
    ids = query_ids(request, name)
    if ids is not None:
        for item in ids:
            _as_id(item, field=name)
    return ids


def flag_from(request, name: str) -> bool | None:
    data = request.data if isinstance(request.data, dict) else {}
    value = data.get(name, request.query_params.get(name))
    return None if value is None else truthy(value)


USERS_PAGE_SIZE, USERS_MAX_PAGE_SIZE = 100, 1000


def paginated_users(request, users, *, extra=None) -> Response:
    """One page of users as LseUser; `extra(users_on_page) -> {user_id: {...}}` adds fields."""
    organization = organization_of(request)

    def serialize(page: list) -> list[dict]:
        additions = extra(page) if extra else {}
        return [organization_user_payload(user, organization=organization, extra=additions.get(user.pk))
                for user in page]

    return page_response(request, users, serialize=serialize, default_size=USERS_PAGE_SIZE,
                         max_size=USERS_MAX_PAGE_SIZE)


# --- workspaces ------------------------------------------------------------------------------------

def _ordered(workspaces, ordering: str | None):
    if not ordering:
        return workspaces.order_by("title", "id")
    if ordering.lstrip("-") not in selectors.WORKSPACE_ORDERINGS:
        raise ValidationError({"ordering": f"Order by one of {sorted(selectors.WORKSPACE_ORDERINGS)} "
                                           "(prefix '-' for descending)."})
    return workspaces.order_by(ordering, "id")


class WorkspaceApi(APIView):
    """Base of the views on one workspace: `workspace()` answers 404 unless the actor sees it, and
    checks the permission the view declares for this method."""

    def workspace(self, request, pk) -> Workspace:
        actor = actor_of(request)
        workspace = selectors.with_projects_count(Workspace.objects.filter(pk=pk)).first()
        if workspace is None or not workspace_visible(actor, workspace):
            raise Http404("No workspace with this id in this organization.")
        require(actor, declared_permission(self, request.method), workspace)
        return workspace

    def payload(self, request, workspace: Workspace) -> dict:
        actor = actor_of(request)
        return workspace_payload(workspace, member_of=selectors.workspace_ids_of(user_id=actor.user.pk),
                                 actor_id=actor.user.pk)


class WorkspaceListCreateApi(WorkspaceApi):
    permissions = {"GET": "workspaces.view", "POST": "workspaces.create"}

    def get(self, request):
        actor = actor_of(request)
        include_all = query_bool(request, "include_all_workspaces")
        workspaces = selectors.workspaces_visible_to(actor, include_all_personal=include_all)
        for name in ("is_archived", "is_personal"):
            if request.query_params.get(name) is not None:
                workspaces = workspaces.filter(**{name: query_bool(request, name)})
        workspaces = list(_ordered(workspaces, request.query_params.get("ordering")))
        creators = {}
        if include_all:
            creator_ids = {w.created_by_id for w in workspaces if w.is_personal}
            creators = {user.pk: user for user in selectors.organization_users(
                organization_id=actor.organization_id, with_deleted=True).filter(pk__in=creator_ids)}
        member_of = selectors.workspace_ids_of(user_id=actor.user.pk)
        return Response([workspace_payload(w, member_of=member_of, actor_id=actor.user.pk, creators=creators)
                         for w in workspaces])

    def post(self, request):
        serializer = WorkspaceInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        workspace = services.workspace_create(user=request.user, **serializer.validated_data)
        workspace = selectors.with_projects_count(Workspace.objects.filter(pk=workspace.pk)).get()
        return Response(self.payload(request, workspace), status=status.HTTP_201_CREATED)


class WorkspaceDetailApi(WorkspaceApi):
    permissions = {"GET": "workspaces.view", "PATCH": "workspaces.change", "DELETE": "workspaces.delete"}

    def get(self, request, pk):
        return Response(self.payload(request, self.workspace(request, pk)))

    def patch(self, request, pk):
        workspace = self.workspace(request, pk)
        serializer = WorkspaceInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.workspace_update(workspace=workspace, fields=dict(serializer.validated_data))
        return Response(self.payload(request, self.workspace(request, pk)))

    def delete(self, request, pk):
        services.workspace_delete(workspace=self.workspace(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- members ---------------------------------------------------------------------------------------

class WorkspaceMembershipsApi(WorkspaceApi):
    """GET the members (a plain list); POST {user} adds one; DELETE {user_id} (body or query) removes one."""

    permissions = {"GET": "workspaces.view", "POST": "workspaces.change", "DELETE": "workspaces.change"}

    def get(self, request, pk):
        workspace = self.workspace(request, pk)
        organization = organization_of(request)
        users = selectors.workspace_members(workspace=workspace, organization_id=organization.pk)
        return Response([{"user": organization_user_payload(user, organization=organization),
                          "workspace": workspace.pk} for user in users])

    def post(self, request, pk):
        workspace = self.workspace(request, pk)
        user_id = id_from(request, "user", "user_id")
        services.workspace_member_add(workspace=workspace, organization_id=organization_of(request).pk,
                                      user_id=user_id)
        return Response({"user": user_id, "workspace": workspace.pk})

    def delete(self, request, pk):
        workspace = self.workspace(request, pk)
        user_id = id_from(request, "user_id", "user")
        services.workspace_member_remove(workspace=workspace, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WorkspaceMembershipsBulkApi(WorkspaceApi):
    """POST {all, included, excluded} adds members; DELETE (same fields, body or query) removes them.
    Each writes with one statement."""

    permissions = {"POST": "workspaces.change", "DELETE": "workspaces.change"}

    def post(self, request, pk):
        workspace = self.workspace(request, pk)
        organization_id = organization_of(request).pk
        excluded = ids_from(request, "excluded") or []
        if flag_from(request, "all"):
            users = selectors.organization_users(organization_id=organization_id, active_only=True)
            user_ids = list(users.exclude(pk__in=excluded).values_list("pk", flat=True))
        else:
            user_ids = [i for i in self._included(request) if i not in excluded]
        added = services.workspace_members_add(workspace=workspace, organization_id=organization_id,
                                               user_ids=user_ids)
        return Response({"assignments": added})

    def delete(self, request, pk):
        workspace = self.workspace(request, pk)
        organization_id = organization_of(request).pk
        excluded = ids_from(request, "excluded") or []
        if flag_from(request, "all"):
            members = selectors.users_matching(
                selectors.workspace_members(workspace=workspace, organization_id=organization_id),
                request.query_params.get("search"),
            )
            user_ids = list(members.exclude(pk__in=excluded).values_list("pk", flat=True))
        else:
            user_ids = [i for i in self._included(request, also="ids") if i not in excluded]
            unknown = selectors.ids_not_in(organization_id=organization_id, user_ids=user_ids)
            if unknown:
                raise ValidationError({"included": f"Not users of this organization: {unknown[:50]}."})
        removed = services.workspace_members_remove(workspace=workspace, user_ids=user_ids)
        return Response({"unassignments": removed})

    @staticmethod
    def _included(request, *, also: str | None = None) -> list[int]:
        included = ids_from(request, "included")
        if included is None and also:
            included = ids_from(request, also)
        if included is None:
            raise ValidationError({"included": "Give the user ids in `included`, or `all: true`."})
        return included


class WorkspaceMembershipsPaginatedApi(WorkspaceApi):
    permissions = {"GET": "workspaces.view"}

    def get(self, request, pk):
        workspace = self.workspace(request, pk)
        users = selectors.workspace_members(workspace=workspace, organization_id=organization_of(request).pk)
        if (ids := query_ids(request, "ids")) is not None:
            users = users.filter(pk__in=ids)
        users = selectors.users_matching(users, request.query_params.get("search"))
        return paginated_users(request, users)


# --- projects --------------------------------------------------------------------------------------

class WorkspaceProjectsApi(WorkspaceApi):
    """GET the workspace's projects the actor can see; POST {project} moves one in; DELETE {project}
    (body or query) moves it out. Moving needs `projects.change` on the project."""

    permissions = {"GET": "workspaces.view", "POST": "workspaces.change", "DELETE": "workspaces.change"}

    def get(self, request, pk):
        workspace = self.workspace(request, pk)
        actor = actor_of(request)
        projects = list(visible_projects(actor, projects_with_counts().filter(workspace_id=workspace.pk))
                        .order_by("-created_at", "-id"))
        creators = {user.pk: user for user in selectors.organization_users(
            organization_id=actor.organization_id, with_deleted=True,
        ).filter(pk__in={p.created_by_id for p in projects if p.created_by_id})}
        return Response([project_payload(project, users=creators) for project in projects])

    def post(self, request, pk):
        workspace = self.workspace(request, pk)
        project = self._project(request)
        services.workspace_project_add(workspace=workspace, project=project)
        return Response({"workspace": workspace.pk, "project": project.pk}, status=status.HTTP_201_CREATED)

    def delete(self, request, pk):
        workspace = self.workspace(request, pk)
        services.workspace_project_remove(workspace=workspace, project=self._project(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @staticmethod
    def _project(request) -> Project:
        return body_project_or_400(actor_of(request), id_from(request, "project"), permission="projects.change")


urlpatterns = [
    route(r"workspaces", WorkspaceListCreateApi, "workspace-list"),
    route(r"workspaces/(?P<pk>\d+)", WorkspaceDetailApi, "workspace-detail"),
    route(r"workspaces/(?P<pk>\d+)/memberships", WorkspaceMembershipsApi),
    route(r"workspaces/(?P<pk>\d+)/memberships/bulk", WorkspaceMembershipsBulkApi),
    route(r"workspaces/(?P<pk>\d+)/memberships/paginated", WorkspaceMembershipsPaginatedApi),
    route(r"workspaces/(?P<pk>\d+)/projects", WorkspaceProjectsApi),
]
