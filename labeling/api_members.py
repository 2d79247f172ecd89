"""Project members, annotator pauses and per-project roles (Label Studio Enterprise shapes).

A project the actor cannot see answers 404, as one of another organization does; so does a user
who is not in the organization, and a pause or role that is not in the path's project.
"""

from django.core.exceptions import ValidationError
from django.http import Http404
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import actor_of, declared_permission, require
from labeling import members
from labeling.access import project_visible, visible_projects
from labeling.api import _project_or_404, body_project_or_400
from labeling.models import AnnotatorPause, Project, ProjectRole
from labeling.serializers import user_simple
from platform_core.params import query_bool, query_datetime, query_ids
from platform_core.routing import route
from workspaces import selectors as workspace_selectors
from workspaces.api import flag_from, id_from, ids_from, organization_of, paginated_users
from workspaces.serializers import organization_user_payload


class ProjectScopedApi(APIView):
    """`project()`: the path's project (404 unless visible), with the declared permission checked
    on it (the role there, a project role override included)."""

    def project(self, request, pk) -> Project:
        return _project_or_404(actor_of(request), pk, permission=declared_permission(self, request.method))


def _roles_param(request) -> list[str] | None:
    value = request.query_params.get("role")
    if not value:
        return None
    roles = [role.strip().upper() for role in value.split(",") if role.strip()]
    if unknown := [role for role in roles if role not in members.PROJECT_ROLES]:
        raise ValidationError({"role": f"Unknown roles {unknown}; use {list(members.PROJECT_ROLES)}."})
    return roles


def _member_filters(request) -> dict:
    """The filters LS's member endpoints share (query string)."""
    return {
        "roles": _roles_param(request),
        "search": request.query_params.get("search"),
        "tag_ids": query_ids(request, "tags"),
        "last_activity_gte": query_datetime(request, "last_activity__gte"),
        "last_activity_lte": query_datetime(request, "last_activity__lte"),
    }


# --- members ---------------------------------------------------------------------------------------

class ProjectMembersApi(ProjectScopedApi):
    """GET the explicit members (LseUser list, `user_ids` filter); POST {user} adds one; DELETE
    {user} (query or body) removes one."""

    permissions = {"GET": "projects.view", "POST": "projects.change", "DELETE": "projects.change"}

    def get(self, request, pk):
        project = self.project(request, pk)
        organization = organization_of(request)
        users = members.explicit_members(project=project, organization_id=organization.pk)
        if (user_ids := query_ids(request, "user_ids")) is not None:
            users = users.filter(pk__in=user_ids)
        return Response([organization_user_payload(user, organization=organization) for user in users])

    def post(self, request, pk):
        project = self.project(request, pk)
        user_id = id_from(request, "user")
        members.project_member_add(project=project, organization_id=organization_of(request).pk, user_id=user_id)
        return Response({"user": user_id}, status=status.HTTP_201_CREATED)

    def delete(self, request, pk):
        project = self.project(request, pk)
        members.project_member_remove(project=project, user_id=id_from(request, "user", "user_id"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectMembersBulkApi(ProjectScopedApi):
    """POST {all, included, excluded, roles: [{user_id, role}]} adds members (and sets role
    overrides, which needs `projects.roles`); DELETE (same fields, query or body) removes members.
    With all=true the query filters (role, search, tags, last_activity__gte/lte) pick the users."""

    permissions = {"POST": "projects.change", "DELETE": "projects.change"}

    def post(self, request, pk):
        project = self.project(request, pk)
        organization_id = organization_of(request).pk
        roles = self._roles(request)
        if roles:
            require(actor_of(request), "projects.roles", project)
        excluded = set(ids_from(request, "excluded") or [])
        if flag_from(request, "all"):
            users = self._filtered(request, workspace_selectors.organization_users(
                organization_id=organization_id, active_only=True))
            user_ids = [i for i in users.values_list("pk", flat=True) if i not in excluded]
        else:
            user_ids = [i for i in self._included(request) if i not in excluded]
        added = members.project_members_bulk_add(actor=actor_of(request), project=project, user_ids=user_ids,
                                                 roles=roles, request=request)
        skipped = sorted((set(user_ids) | set(roles)) - set(added))
        return Response({"assignments": len(added), "skipped_user_ids": skipped})

    def delete(self, request, pk):
        project = self.project(request, pk)
        organization_id = organization_of(request).pk
        excluded = set(ids_from(request, "excluded") or [])
        if flag_from(request, "all"):
            users = self._filtered(request, members.explicit_members(project=project, organization_id=organization_id))
            user_ids = [i for i in users.values_list("pk", flat=True) if i not in excluded]
        else:
            user_ids = [i for i in self._included(request) if i not in excluded]
            if unknown := workspace_selectors.ids_not_in(organization_id=organization_id, user_ids=user_ids):
                raise ValidationError({"included": f"Not users of this organization: {unknown[:50]}."})
        return Response({"unassignments": members.project_members_remove(project=project, user_ids=user_ids)})

    @staticmethod
    def _included(request) -> list[int]:
        included = ids_from(request, "included")
        if included is None:
            raise ValidationError({"included": "Give the user ids in `included`, or `all: true`."})
        return included

    @staticmethod
    def _filtered(request, users):
        filters = _member_filters(request)
        if filters["roles"]:
            users = users.filter(org_role__in=filters["roles"])
        if filters["tag_ids"]:
            users = workspace_selectors.users_tagged(users, organization_id=organization_of(request).pk,
                                                     tag_ids=filters["tag_ids"])
        if filters["last_activity_gte"]:
            users = users.filter(last_activity__gte=filters["last_activity_gte"])
        if filters["last_activity_lte"]:
            users = users.filter(last_activity__lte=filters["last_activity_lte"])
        return workspace_selectors.users_matching(users, filters["search"])

    @staticmethod
    def _roles(request) -> dict[int, str]:
        given = request.data.get("roles") if isinstance(request.data, dict) else None
        if not given:
            return {}
        if not isinstance(given, list) or not all(isinstance(item, dict) for item in given):
            raise ValidationError({"roles": "Must be a list of {user_id, role}."})
        roles = {}
        for item in given:
            user_id, role = item.get("user_id"), item.get("role")
            if not isinstance(user_id, int) or isinstance(user_id, bool) or not isinstance(role, str):
                raise ValidationError({"roles": f"Each item needs an integer user_id and a role, got {item!r}."})
            roles[user_id] = role
        return roles


class ProjectMembersPaginatedApi(ProjectScopedApi):
    """Everyone working in the project, explicit and implicit (PaginatedProjectMember)."""

    permissions = {"GET": "projects.view"}

    def get(self, request, pk):
        project = self.project(request, pk)
        organization_id = organization_of(request).pk
        implicit = request.query_params.get("implicit")
        users = members.project_members(
            project=project, organization_id=organization_id,
            implicit=None if implicit is None else query_bool(request, "implicit"),
            no_annotators=query_bool(request, "no_annotators"), user_ids=query_ids(request, "ids"),
            with_deleted=query_bool(request, "with_deleted"), ordering=request.query_params.get("ordering"),
            **_member_filters(request),
        )
        overrides = members.role_overrides(project=project)

        def extra(page):
            user_ids = [user.pk for user in page]
            explicit = members.explicit_member_ids(project=project, among=user_ids)
            tags = workspace_selectors.tags_of_users(organization_id=organization_id, user_ids=user_ids)
            pauses = members.pauses_by_user(project=project, user_ids=user_ids)
            users = {pause.paused_by_id: None for pause in pauses.values()}
            users = {user.pk: user for user in workspace_selectors.organization_users(
                organization_id=organization_id, with_deleted=True).filter(pk__in=users)}
            return {user.pk: {
                "implicit_member": user.pk not in explicit,
                "project_role": overrides.get(user.pk),
                "project_role_source": "manual" if user.pk in overrides else None,
                "tags": tags.get(user.pk, []),
                "pause": pause_payload(pauses[user.pk], users=users) if user.pk in pauses else None,
            } for user in page}

        return paginated_users(request, users, extra=extra)


# --- pauses ----------------------------------------------------------------------------------------

def pause_payload(pause: AnnotatorPause, *, users: dict) -> dict:
    paused_by = user_simple(pause.paused_by_id, users)
    if paused_by is not None:
        paused_by["username"] = users[pause.paused_by_id].username or users[pause.paused_by_id].email
    return {
        "id": pause.pk,
        "project": pause.project_id,
        "user": pause.user_id,
        "paused_by": paused_by,
        "reason": pause.reason,
        "verbose_reason": pause.verbose_reason,
        "created_at": pause.created_at,
        "updated_at": pause.updated_at,
        # Resuming deletes the pause: there are no soft-deleted ones to show.
        "deleted_at": None,
        "deleted_by": None,
    }


class PauseApi(ProjectScopedApi):
    def member(self, request, pk, user_pk):
        """The project and the path's user (404 unless they belong to the organization)."""
        project = self.project(request, pk)
        user = workspace_selectors.organization_user_get(organization_id=organization_of(request).pk,
                                                         user_id=user_pk)
        if user is None:
            raise Http404("No user with this id in this organization.")
        return project, user

    def respond(self, request, pause: AnnotatorPause, *, status_code: int = status.HTTP_200_OK) -> Response:
        users = {user.pk: user for user in workspace_selectors.organization_users(
            organization_id=organization_of(request).pk, with_deleted=True).filter(pk=pause.paused_by_id)}
        return Response(pause_payload(pause, users=users), status=status_code)

    @staticmethod
    def fields(request, *, partial: bool) -> dict:
        data = request.data if isinstance(request.data, dict) else {}
        fields = {name: data[name] for name in ("reason", "verbose_reason") if name in data}
        if not partial and "reason" not in fields:
            raise ValidationError({"reason": "Required."})
        verbose_reason = fields.get("verbose_reason")
        if verbose_reason is not None and not isinstance(verbose_reason, str):
            raise ValidationError({"verbose_reason": "Must be text."})
        return fields


class PauseListCreateApi(PauseApi):
    """GET the user's pauses in the project; POST {reason, verbose_reason} pauses them."""

    permissions = {"GET": "projects.change", "POST": "projects.change"}

    def get(self, request, pk, user_pk):
        project, user = self.member(request, pk, user_pk)
        ordering = request.query_params.get("ordering") or "-created_at"
        if ordering.lstrip("-") not in members.PAUSE_ORDERINGS:
            raise ValidationError({"ordering": f"Order by one of {sorted(members.PAUSE_ORDERINGS)}."})
        pauses = list(AnnotatorPause.objects.filter(project=project, user=user).order_by(ordering, "-id"))
        users = {u.pk: u for u in workspace_selectors.organization_users(
            organization_id=organization_of(request).pk, with_deleted=True,
        ).filter(pk__in={p.paused_by_id for p in pauses})}
        return Response([pause_payload(pause, users=users) for pause in pauses])

    def post(self, request, pk, user_pk):
        project, user = self.member(request, pk, user_pk)
        pause = members.pause_create(project=project, user_id=user.pk, paused_by=request.user,
                                     **self.fields(request, partial=False))
        return self.respond(request, pause, status_code=status.HTTP_201_CREATED)


class PauseDetailApi(PauseApi):
    permissions = {"GET": "projects.change", "PATCH": "projects.change", "PUT": "projects.change",
                   "DELETE": "projects.change"}

    def pause(self, request, pk, user_pk, pause_pk) -> AnnotatorPause:
        project, user = self.member(request, pk, user_pk)
        pause = AnnotatorPause.objects.filter(pk=pause_pk, project=project, user=user).first()
        if pause is None:
            raise Http404("No such pause of this user in this project.")
        return pause

    def get(self, request, pk, user_pk, pause_pk):
        return self.respond(request, self.pause(request, pk, user_pk, pause_pk))

    def patch(self, request, pk, user_pk, pause_pk):
        pause = self.pause(request, pk, user_pk, pause_pk)
        pause = members.pause_update(pause=pause, fields=self.fields(request, partial=True))
        return self.respond(request, pause)

    def put(self, request, pk, user_pk, pause_pk):
        pause = self.pause(request, pk, user_pk, pause_pk)
        pause = members.pause_update(pause=pause, fields=self.fields(request, partial=False))
        return self.respond(request, pause)

    def delete(self, request, pk, user_pk, pause_pk):
        members.pause_delete(pause=self.pause(request, pk, user_pk, pause_pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- project roles ---------------------------------------------------------------------------------

def project_role_payload(row: ProjectRole) -> dict:
    return {"id": row.pk, "project": row.project_id, "user": row.user_id, "role": row.role,
            "role_source": "manual"}


class ProjectRoleListCreateApi(APIView):
    """GET the caller's own project roles (`ids`: project ids); POST {project, user, role} sets a
    user's role in a project (creates or changes the override)."""

    permissions = {"GET": "projects.view", "POST": "projects.roles"}

    def get(self, request):
        actor = actor_of(request)
        rows = ProjectRole.objects.filter(user_id=actor.user.pk, project__in=visible_projects(actor))
        if (ids := query_ids(request, "ids")) is not None:
            rows = rows.filter(project_id__in=ids)
        ordering = request.query_params.get("ordering") or "id"
        if ordering.lstrip("-") not in {"id", "project", "role", "created_at", "updated_at"}:
            raise ValidationError({"ordering": "Order by id, project, role, created_at or updated_at."})
        return Response([project_role_payload(row) for row in rows.order_by(ordering, "id")])

    def post(self, request):
        actor = actor_of(request)
        project = body_project_or_400(actor, id_from(request, "project"), permission="projects.roles")
        user_id = id_from(request, "user")
        role = request.data.get("role") if isinstance(request.data, dict) else None
        if not isinstance(role, str):
            raise ValidationError({"role": f"Required: one of {list(members.PROJECT_ROLES)}."})
        row, created = members.project_role_set(actor=actor, project=project, user_id=user_id, role=role,
                                                request=request)
        return Response(project_role_payload(row),
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ProjectRoleDetailApi(APIView):
    permissions = {"GET": "projects.roles", "DELETE": "projects.roles"}

    def project_role(self, request, pk) -> ProjectRole:
        actor = actor_of(request)
        row = ProjectRole.objects.select_related("project").filter(pk=pk).first()
        if row is None or not project_visible(actor, row.project):
            raise Http404("No project role with this id in this organization.")
        require(actor, declared_permission(self, request.method), row.project)
        return row

    def get(self, request, pk):
        return Response(project_role_payload(self.project_role(request, pk)))

    def delete(self, request, pk):
        members.project_role_delete(actor=actor_of(request), project_role=self.project_role(request, pk),
                                    request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectRolesOfProjectApi(ProjectScopedApi):
    """GET every role override in the project."""

    permissions = {"GET": "projects.roles"}

    def get(self, request, pk):
        project = self.project(request, pk)
        return Response([project_role_payload(row) for row in ProjectRole.objects.filter(project=project)
                         .order_by("id")])


urlpatterns = [
    route(r"projects/(?P<pk>\d+)/members", ProjectMembersApi),
    route(r"projects/(?P<pk>\d+)/members/bulk", ProjectMembersBulkApi),
    route(r"projects/(?P<pk>\d+)/members/paginated", ProjectMembersPaginatedApi),
    route(r"projects/(?P<pk>\d+)/members/(?P<user_pk>\d+)/pauses", PauseListCreateApi),
    route(r"projects/(?P<pk>\d+)/members/(?P<user_pk>\d+)/pauses/(?P<pause_pk>\d+)", PauseDetailApi),
    route(r"projects/roles", ProjectRoleListCreateApi),
    route(r"projects/roles/(?P<pk>\d+)", ProjectRoleDetailApi),
    route(r"projects/(?P<pk>\d+)/roles", ProjectRolesOfProjectApi),
]
