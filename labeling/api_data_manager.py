"""Data manager API (Label Studio's /api/dm/...): views (tabs), actions on selected tasks, project state.

Views are shared by everyone in the project, as in Label Studio Community; changing or deleting
someone else's view and resetting a project's views need `tasks.change`, and each action needs its
own permission (data_manager.ACTIONS).
"""

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.response import Response

from accounts.access import actor_of, can, require
from labeling import access, data_manager
from labeling.api import LabelingApi, _project_or_404, object_or_404, own_annotations_only
from labeling.models import DataManagerView
from platform_core.params import query_int
from platform_core.routing import route


def _required_project(request, *, permission: str, body: bool = False):
    project_id = query_int(request, "project")
    if project_id is None and body and isinstance(request.data, dict):
        raw = request.data.get("project")
        if raw is not None:
            if isinstance(raw, bool) or not str(raw).isdigit():
                raise ValidationError({"project": f"Must be a project id, got {raw!r}."})
            project_id = int(raw)
    if project_id is None:
        raise ValidationError({"project": "Required: the project id (?project=ID)."})
    return _project_or_404(actor_of(request), project_id, permission=permission)


def _body(request) -> dict:
    if not isinstance(request.data, dict):
        raise ValidationError({"detail": "The body must be a JSON object."})
    return request.data


def _optional_int(body: dict, name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError({name: f"Must be an integer, got {value!r}."})
    return value


class ViewListCreateApi(LabelingApi):
    permissions = {"GET": "tasks.view", "POST": "data_manager.views"}

    def get(self, request):
        project_id = query_int(request, "project")
        if project_id is not None:
            _project_or_404(self.actor, project_id, permission="tasks.view")
        views = data_manager.views_of(project_id=project_id).filter(
            project__in=access.projects_permitting(self.actor, "tasks.view").values("pk"))
        return Response([data_manager.view_payload(view) for view in views])

    def post(self, request):
        body = _body(request)
        project = _required_project(request, permission="data_manager.views", body=True)
        view = data_manager.view_create(
            project=project, user=request.user, data=body.get("data"), ordering=body.get("ordering"),
            selected_items=body.get("selected_items"), order=_optional_int(body, "order"),
        )
        return Response(data_manager.view_payload(view), status=status.HTTP_201_CREATED)


class ViewDetailApi(LabelingApi):
    """Anyone in the project reads a tab; its author changes it, others need `tasks.change`."""

    permissions = {"GET": "tasks.view", "PATCH": "data_manager.views", "PUT": "data_manager.views",
                   "DELETE": "data_manager.views"}

    def _view(self, pk, permission: str) -> DataManagerView:
        return object_or_404(self.actor, DataManagerView.objects.select_related("project"),
                             permission=permission, pk=pk)

    def get(self, request, pk):
        return Response(data_manager.view_payload(self._view(pk, "tasks.view")))

    def patch(self, request, pk):
        view = self._view(pk, "data_manager.views")
        body = _body(request)
        if body.get("project") is not None and str(body["project"]) != str(view.project_id):
            raise ValidationError({"project": f"View {view.pk} belongs to project {view.project_id}."})
        view = data_manager.view_update(
            view=view, data=body.get("data"), ordering=body.get("ordering"),
            selected_items=body.get("selected_items"), order=_optional_int(body, "order"),
        )
        return Response(data_manager.view_payload(view))

    put = patch

    def delete(self, request, pk):
        data_manager.view_delete(view=self._view(pk, "data_manager.views"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ViewOrderApi(LabelingApi):
    permissions = {"POST": "data_manager.views"}

    def post(self, request):
        body = _body(request)
        project = _required_project(request, permission="data_manager.views", body=True)
        ids = body.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ValidationError({"ids": "Required: the project's view ids in their new order."})
        data_manager.views_reorder(project=project, ids=ids)
        return Response({"detail": "Views reordered."})


class ViewResetApi(LabelingApi):
    """DELETE every tab of a project, everyone's: `tasks.change`."""

    permissions = {"DELETE": "tasks.change"}

    def delete(self, request):
        data_manager.views_reset(project=_required_project(request, permission="tasks.change"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ActionListRunApi(LabelingApi):
    """GET the actions the caller may run; POST ?id=ACTION&project=ID runs one on the selection
    (`tasks.change` to run any, and the action's own permission)."""

    permissions = {"GET": "tasks.view", "POST": "tasks.change"}

    def get(self, request):
        project = _required_project(request, permission="tasks.view")
        return Response([action.payload(project) for action in data_manager.ACTIONS.values()
                         if can(self.actor, action.permission, project)])

    def post(self, request):
        body = _body(request)
        project = _required_project(request, permission="tasks.change", body=True)
        action_id = request.query_params.get("id") or body.get("id")
        require(self.actor, data_manager.action_get(action_id).permission, project)
        filters, ordering = body.get("filters"), body.get("ordering")
        selected_items = body.get("selectedItems", body.get("selected_items"))
        if (view_id := query_int(request, "view")) is not None:
            # The view wins over the body's filters and ordering (LS); its selection is the fallback.
            view = get_object_or_404(DataManagerView, pk=view_id, project=project)
            saved = data_manager.view_query(view)
            filters, ordering = saved["filters"], saved["ordering"]
            selected_items = selected_items or view.selected_items
        result = data_manager.action_run(
            action_id=action_id, project=project, user=request.user, filters=filters, ordering=ordering,
            selected_items=selected_items, params=body,
            annotations_of_user=own_annotations_only(self.actor, project),
        )
        return Response(result)


class ActionFormApi(LabelingApi):
    permissions = {"GET": "tasks.view"}

    def get(self, request, action_id):
        project = _required_project(request, permission="tasks.view")
        action = data_manager.ACTIONS.get(action_id)
        if action is None:
            return Response({"detail": f"No action {action_id!r}."}, status=status.HTTP_404_NOT_FOUND)
        return Response(action.form(project) if action.form else [])


class ProjectStateApi(LabelingApi):
    permissions = {"GET": "tasks.view"}

    def get(self, request):
        project = _required_project(request, permission="tasks.view")
        return Response(data_manager.project_state(
            project=project, may=lambda permission: can(self.actor, permission, project)))


urlpatterns = [
    route(r"dm/views", ViewListCreateApi, "dm-view-list"),
    route(r"dm/views/order", ViewOrderApi),
    route(r"dm/views/reset", ViewResetApi),
    route(r"dm/views/(?P<pk>\d+)", ViewDetailApi, "dm-view-detail"),
    route(r"dm/actions", ActionListRunApi, "dm-actions"),
    route(r"dm/actions/(?P<action_id>[A-Za-z0-9_-]+)/form", ActionFormApi),
    route(r"dm/project", ProjectStateApi),
]
