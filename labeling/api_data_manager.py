"""Data manager API (Label Studio's /api/dm/...): views (tabs), actions on selected tasks, project state.

Views are shared by everyone in the project, as in Label Studio Community; changing or deleting
someone else's view, resetting a project's views and running actions need a manager role.
"""

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import data_manager
from labeling.api import MANAGERS, LabelingApi, _project_or_404, member_role, query_int
from labeling.models import DataManagerView
from platform_core.routing import route


def _required_project(request, *, body: bool = False):
    project_id = query_int(request, "project")
    if project_id is None and body and isinstance(request.data, dict):
        raw = request.data.get("project")
        if raw is not None:
            if isinstance(raw, bool) or not str(raw).isdigit():
                raise ValidationError({"project": f"Must be a project id, got {raw!r}."})
            project_id = int(raw)
    if project_id is None:
        raise ValidationError({"project": "Required: the project id (?project=ID)."})
    return _project_or_404(project_id)


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


class ViewListCreateApi(APIView):
    def get(self, request):
        project_id = query_int(request, "project")
        if project_id is not None:
            _project_or_404(project_id)
        return Response([data_manager.view_payload(view) for view in data_manager.views_of(project_id=project_id)])

    def post(self, request):
        body = _body(request)
        project = _required_project(request, body=True)
        view = data_manager.view_create(
            project=project, user=request.user, data=body.get("data"), ordering=body.get("ordering"),
            selected_items=body.get("selected_items"), order=_optional_int(body, "order"),
        )
        return Response(data_manager.view_payload(view), status=status.HTTP_201_CREATED)


class ViewDetailApi(APIView):
    def _view(self, request, pk, *, changing: bool) -> DataManagerView:
        view = get_object_or_404(DataManagerView, pk=pk)
        if changing and view.user_id != request.user.pk and member_role(request) not in MANAGERS:
            raise PermissionDenied("Only its author or a manager can change this view.")
        return view

    def get(self, request, pk):
        return Response(data_manager.view_payload(self._view(request, pk, changing=False)))

    def patch(self, request, pk):
        view = self._view(request, pk, changing=True)
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
        data_manager.view_delete(view=self._view(request, pk, changing=True))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ViewOrderApi(APIView):
    def post(self, request):
        body = _body(request)
        project = _required_project(request, body=True)
        ids = body.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ValidationError({"ids": "Required: the project's view ids in their new order."})
        data_manager.views_reorder(project=project, ids=ids)
        return Response({"detail": "Views reordered."})


class ViewResetApi(LabelingApi):
    def delete(self, request):
        data_manager.views_reset(project=_required_project(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ActionListRunApi(LabelingApi):
    """GET the actions the caller may run; POST ?id=ACTION&project=ID runs one on the selection."""

    def get(self, request):
        project = _required_project(request)
        if member_role(request) not in MANAGERS:
            return Response([])
        return Response([action.payload(project) for action in data_manager.ACTIONS.values()])

    def post(self, request):
        body = _body(request)
        project = _required_project(request, body=True)
        action_id = request.query_params.get("id") or body.get("id")
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
        )
        return Response(result)


class ActionFormApi(APIView):
    def get(self, request, action_id):
        project = _required_project(request)
        action = data_manager.ACTIONS.get(action_id)
        if action is None:
            return Response({"detail": f"No action {action_id!r}."}, status=status.HTTP_404_NOT_FOUND)
        return Response(action.form(project) if action.form else [])


class ProjectStateApi(APIView):
    def get(self, request):
        project = _required_project(request)
        return Response(data_manager.project_state(project=project, can_manage=member_role(request) in MANAGERS))


urlpatterns = [
    route(r"dm/views", ViewListCreateApi, "dm-view-list"),
    route(r"dm/views/order", ViewOrderApi),
    route(r"dm/views/reset", ViewResetApi),
    route(r"dm/views/(?P<pk>\d+)", ViewDetailApi, "dm-view-detail"),
    route(r"dm/actions", ActionListRunApi, "dm-actions"),
    route(r"dm/actions/(?P<action_id>[A-Za-z0-9_-]+)/form", ActionFormApi),
    route(r"dm/project", ProjectStateApi),
]
