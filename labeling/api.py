"""Labeling API (Label Studio compatible): projects, import, tasks, annotations, predictions, export."""

import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, Sum
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import PERMISSIONS, Actor, PermissionDenied, actor_of, can, project_id_of, require
from accounts.models import Scope, User
from labeling import access, data_manager, exports, selectors, services, uploads
from labeling.access import project_visible, sees_others_annotations
from labeling.importing import ImportFormatError, ParsedImport, parse_json_payload
from labeling.label_config import TEMPLATES, LabelConfigError, parse_label_config
from labeling.models import (
    Annotation,
    AnnotationDraft,
    AnnotationReview,
    Comment,
    DataManagerView,
    ExportSnapshot,
    ExportStatus,
    ImportJob,
    Prediction,
    Project,
    Task,
)
from labeling.serializers import (
    AnnotationInputSerializer,
    PredictionInputSerializer,
    ProjectInputSerializer,
    TaskInputSerializer,
    annotation_payload,
    draft_payload,
    export_payload,
    prediction_payload,
    project_payload,
    task_payload,
)
from platform_core.api import validation_error_response
from platform_core.params import query_bool, query_ids, query_int, truthy
from storages.selectors import Resolver
from workspaces.services import workspace_for_project


def _users_by_id(ids) -> dict:
    ids = {i for i in ids if i}
    return {user.pk: user for user in User.objects.filter(pk__in=ids)} if ids else {}


# What lets someone change such an object that is not theirs (labeling.access's authored rules).
_CHANGE_ANY = {Annotation: "annotations.change_any", Comment: "comments.change_any", DataManagerView: "tasks.change"}


def _project_of(obj) -> Project | None:
    if isinstance(obj, Project):
        return obj
    if isinstance(obj, AnnotationDraft):
        return obj.task.project
    if isinstance(obj, AnnotationReview):
        return obj.annotation.project
    return obj.project  # None for an organization-wide webhook


def visible_or_404(actor: Actor, obj, *, permission: str):
    """`obj`, if the actor may do `permission` on it.

    Absent, in a project the actor cannot see, or refused a read (someone else's annotation in a
    project that hides them): 404, as if it did not exist. Refused a change: 403 naming the
    permission that is missing (for someone else's annotation, comment or tab: the "any" one)."""
    if obj is None:
        raise Http404("Not found in this organization.")
    project = _project_of(obj)
    if project is not None and not project_visible(actor, project):
        raise Http404("Not found in this organization.")
    if can(actor, permission, obj):
        return obj
    if PERMISSIONS[permission].scope == Scope.READ:
        raise Http404("Not found in this organization.")
    if type(obj) in _CHANGE_ANY and actor.has_role_for(permission, project_id=project_id_of(obj)):
        raise PermissionDenied(_CHANGE_ANY[type(obj)])
    raise PermissionDenied(permission)


def object_or_404(actor: Actor, queryset, *, permission: str, **lookup):
    """The object of `queryset` matching `lookup`, through `visible_or_404`."""
    return visible_or_404(actor, queryset.filter(**lookup).first(), permission=permission)


def _project_or_404(actor: Actor, pk, *, permission: str = "projects.view", with_counts: bool = False) -> Project:
    """The project, if the actor can see it (else 404) and may do `permission` in it (else 403).
    LS's counters only when the response shows them: they scan its tasks."""
    project = selectors.project_get(pk=pk) if with_counts else Project.objects.filter(pk=pk).first()
    return visible_or_404(actor, project, permission=permission)


def body_project_or_400(actor: Actor, project_id: int, *, permission: str) -> Project:
    """The project a request body names: 400 naming `project` unless the actor can see it, 403
    unless they may do `permission` in it."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None or not project_visible(actor, project):
        raise ValidationError({"project": f"No project {project_id} in this organization that you can see."})
    require(actor, permission, project)
    return project


class LabelingApi(APIView):
    """A labeling endpoint: `permissions` names the permission of each HTTP method it implements
    (accounts.access.MatrixPermission checks the role and scope; the view checks the object)."""

    permissions: dict[str, str] = {}

    @property
    def actor(self) -> Actor:
        return actor_of(self.request)


class ProjectPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class ProjectListCreateApi(LabelingApi):
    permissions = {"GET": "projects.view", "POST": "projects.create"}

    def get(self, request):
        queryset = access.projects_permitting(self.actor, "projects.view", selectors.projects_with_counts())
        queryset = queryset.order_by("-pinned_at", "-created_at", "-id")
        if (ids := query_ids(request, "ids")) is not None:
            queryset = queryset.filter(pk__in=ids)
        if title := request.query_params.get("title") or request.query_params.get("search"):
            queryset = queryset.filter(title__icontains=title)
        if (workspaces := query_ids(request, "workspaces")) is not None:
            queryset = queryset.filter(workspace_id__in=workspaces)
        paginator = ProjectPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        users = _users_by_id(project.created_by_id for project in page)
        return paginator.get_paginated_response([project_payload(project, users=users) for project in page])

    def post(self, request):
        require(self.actor, "projects.create")
        serializer = ProjectInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.to_fields()
        # A project lives in a workspace the creator can see; by default their personal one.
        fields["workspace_id"] = workspace_for_project(actor=self.actor, workspace_id=fields.get("workspace_id")).pk
        project = services.project_create(user=request.user, fields=fields)
        project = selectors.project_get(pk=project.pk)
        return Response(project_payload(project, users=_users_by_id([project.created_by_id])),
                        status=status.HTTP_201_CREATED)


class ProjectDetailApi(LabelingApi):
    permissions = {"GET": "projects.view", "PATCH": "projects.change", "PUT": "projects.change",
                   "DELETE": "projects.delete"}

    def get(self, request, pk):
        project = _project_or_404(self.actor, pk, with_counts=True)
        return Response(project_payload(project, users=_users_by_id([project.created_by_id])))

    def patch(self, request, pk):
        project = _project_or_404(self.actor, pk, permission="projects.change")
        serializer = ProjectInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        force = query_bool(request, "force") or truthy(request.data.get("force", ""))
        fields = serializer.to_fields()
        if fields.get("workspace_id") is not None:
            fields["workspace_id"] = workspace_for_project(actor=self.actor, workspace_id=fields["workspace_id"]).pk
        services.project_update(project=project, fields=fields, force=force)
        project = selectors.project_get(pk=pk)
        return Response(project_payload(project, users=_users_by_id([project.created_by_id])))

    put = patch

    def delete(self, request, pk):
        services.project_delete(project=_project_or_404(self.actor, pk, permission="projects.delete"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectCountsApi(LabelingApi):
    permissions = {"GET": "projects.view"}

    def get(self, request):
        queryset = access.projects_permitting(self.actor, "projects.view", selectors.projects_with_counts())
        paginator = ProjectPagination()
        page = paginator.paginate_queryset(queryset.order_by("-created_at", "-id"), request, view=self)
        fields = ("id", "task_number", "finished_task_number", "total_annotations_number",
                  "num_tasks_with_annotations", "skipped_annotations_number", "total_predictions_number")
        return paginator.get_paginated_response([{f: getattr(p, f) for f in fields} for p in page])


class LabelConfigValidateApi(LabelingApi):
    """POST /api/projects/validate/ and /api/projects/{id}/validate/: check a label config. It
    changes nothing, so seeing the project is enough."""

    permissions = {"POST": "projects.view"}

    def post(self, request, pk=None):
        label_config = request.data.get("label_config")
        if not isinstance(label_config, str) or not label_config.strip():
            return Response({"detail": "Invalid input.", "validation_errors": {"label_config": ["Required."]}},
                            status=status.HTTP_400_BAD_REQUEST)
        try:
            parsed = parse_label_config(label_config)
        except LabelConfigError as exc:
            return Response({"detail": "Invalid label config.", "validation_errors": {"label_config": [str(exc)]}},
                            status=status.HTTP_400_BAD_REQUEST)
        if pk is not None:
            project = _project_or_404(self.actor, pk)
            problems = services.config_change_orphans(
                old=services.config_parse(project.label_config), new=parsed,
                used=services.labels_used_by_annotations(project=project),
            )
            if problems:
                return Response({"detail": "This config would orphan existing results.",
                                 "validation_errors": {"label_config": problems}},
                                status=status.HTTP_400_BAD_REQUEST)
        return Response({"label_config": label_config, "parsed_label_config": parsed.to_label_studio_dict()})


class ProjectDuplicateApi(LabelingApi):
    permissions = {"POST": "projects.create"}

    def post(self, request, pk):
        require(self.actor, "projects.create")
        project = _project_or_404(self.actor, pk)
        mode = request.data.get("mode", "settings_and_tasks")
        copy = services.project_duplicate(
            project=project, user=request.user, title=request.data.get("title"),
            with_tasks=mode != "settings",
        )
        return Response({"id": copy.pk}, status=status.HTTP_201_CREATED)


class TemplatesApi(LabelingApi):
    permissions = {"GET": "projects.view"}

    def get(self, request):
        return Response({"templates": TEMPLATES})


# --- import --------------------------------------------------------------------------------------

class ProjectImportApi(LabelingApi):
    """POST tasks as JSON, or files: task files (JSON, JSON lines, CSV, TSV, TXT), images and PDFs.
    Every file is kept as a FileUpload; `commit_to_project=false` keeps them without making tasks
    (POST .../reimport makes them later)."""

    permissions = {"POST": "tasks.import"}

    def post(self, request, pk):
        project = _project_or_404(self.actor, pk, permission="tasks.import")
        return_task_ids = query_bool(request, "return_task_ids")
        if request.FILES:
            outcome = uploads.file_uploads_import(
                project=project, user=request.user, return_task_ids=return_task_ids,
                files=[f for key in request.FILES for f in request.FILES.getlist(key)],
                commit_to_project=query_bool(request, "commit_to_project", default=True),
            )
            return self.outcome_response(outcome, return_task_ids=return_task_ids)
        try:
            parsed = self._parse(request)
        except ImportFormatError as exc:
            return Response({"detail": str(exc), "validation_errors": {"file": [str(exc)]}},
                            status=status.HTTP_400_BAD_REQUEST)
        outcome = uploads.UploadImport(file_upload_ids=[], found_formats=parsed.found_formats,
                                       data_columns=sorted(parsed.data_columns))
        if len(parsed.tasks) > settings.IMPORT_SYNC_MAX_TASKS:
            outcome.job = services.import_job_create(
                project=project, tasks=parsed.tasks, user=request.user, found_formats=parsed.found_formats,
                data_columns=outcome.data_columns, return_task_ids=return_task_ids,
            )
        else:
            outcome.result = services.tasks_import(project=project, tasks=parsed.tasks, user=request.user)
        return self.outcome_response(outcome, return_task_ids=return_task_ids)

    @staticmethod
    def outcome_response(outcome: "uploads.UploadImport", *, return_task_ids: bool) -> Response:
        """LS Community's import response (also answers .../reimport); `{"import": id}` for a queued job."""
        if outcome.job is not None:
            return Response({"import": outcome.job.pk}, status=status.HTTP_201_CREATED)
        result = outcome.result or services.ImportResult()
        payload = {
            "task_count": result.task_count,
            "annotation_count": result.annotation_count,
            "prediction_count": result.prediction_count,
            "predictions_count": result.prediction_count,
            "duration": result.duration,
            "file_upload_ids": outcome.file_upload_ids,
            "could_be_tasks_list": False,
            "found_formats": outcome.found_formats,
            "data_columns": outcome.data_columns,
        }
        if return_task_ids:
            payload["task_ids"] = result.task_ids
        return Response(payload, status=status.HTTP_201_CREATED)

    def _parse(self, request) -> ParsedImport:
        parsed = ParsedImport()
        payload = request.data
        if isinstance(payload, dict) and not payload:
            raise ImportFormatError("No tasks: send a JSON list of tasks or upload files in the 'file' field.")
        if hasattr(payload, "dict") and not isinstance(payload, dict | list):
            payload = payload.dict()
        parsed.extend(parse_json_payload(payload), "json")
        return parsed


# --- tasks ---------------------------------------------------------------------------------------

def own_annotations_only(actor: Actor, project: Project) -> int | None:
    """The actor's user id when the project hides other people's annotations from them, else None:
    the `annotations_of_user` of the selectors and the data manager."""
    return None if sees_others_annotations(actor, project) else actor.user.pk


def _task_page(actor: Actor, project: Project, queryset, *, with_related: bool, page: int, page_size: int):
    """One page of tasks as JSON text, and the totals of the whole selection: two queries."""
    totals = queryset.order_by().aggregate(
        count=Count("id"), annotations=Sum("total_annotations"), predictions=Sum("total_predictions")
    )
    offset = (page - 1) * page_size
    if offset and offset >= totals["count"]:
        raise Http404("Invalid page: past the last page.")
    tasks = selectors.task_page_json(
        queryset=queryset, offset=offset, limit=page_size, with_related=with_related,
        annotations_of_user=own_annotations_only(actor, project),
    )
    return tasks, totals


def _resolving(request, *, project_id: int, default: bool) -> Resolver | None:
    """The URI resolver of the project's storages when the response resolves (`resolve_uri`)."""
    wanted = request.query_params.get("resolve_uri")
    if not (truthy(wanted) if wanted not in (None, "") else default):
        return None
    resolver = Resolver(project_id=project_id)
    return resolver or None


def _resolved_page(tasks_json: str, resolver: Resolver | None) -> str:
    if resolver is None:
        return tasks_json
    tasks = json.loads(tasks_json)
    for task in tasks:
        task["data"] = resolver.resolve(task.get("data"), task_id=task["id"])
    return json.dumps(tasks, cls=DjangoJSONEncoder)


def _task_with_related_response(request, task: Task) -> Response:
    annotations, predictions = selectors.related_for_tasks(
        task_ids=[task.pk], annotations_of_user=own_annotations_only(actor_of(request), task.project))
    payload = task_payload(task, annotations=annotations[task.pk], predictions=predictions[task.pk])
    # A task opened for labeling shows its files: references to the project's storages resolve.
    if (resolver := _resolving(request, project_id=task.project_id, default=True)) is not None:
        payload["data"] = resolver.resolve(payload["data"], task_id=task.pk)
    payload["drafts"] = [draft_payload(d) for d in task.drafts.filter(user=request.user).order_by("id")]
    return Response(payload)


def _json_response(body: str, status_code: int = 200) -> HttpResponse:
    return HttpResponse(body, content_type="application/json", status=status_code)


class TaskListCreateApi(LabelingApi):
    permissions = {"GET": "tasks.view", "POST": "tasks.import"}
    all_tasks_page_size = 1_000_000_000

    def get(self, request):
        """A page of tasks; `view` applies a DM tab's filters and ordering, `query` is LS's JSON
        {"filters", "ordering", "selectedItems"} (a view's filters and ordering win over it)."""
        project_id = query_int(request, "project")
        view = None
        if (view_id := query_int(request, "view")) is not None:
            view = object_or_404(self.actor, DataManagerView.objects.select_related("project"),
                                 permission="tasks.view", pk=view_id)
            project_id = project_id or view.project_id
        if project_id is None:
            raise ValidationError({"project": "Give the project id: /api/tasks/?project=ID."})
        project = _project_or_404(self.actor, project_id, permission="tasks.view")
        if view is not None and view.project_id != project.pk:
            raise ValidationError({"view": f"View {view.pk} belongs to project {view.project_id}."})
        query = data_manager.parse_query(request.query_params.get("query"))
        selection = data_manager.view_query(view) if view is not None else query
        queryset = data_manager.tasks_query(
            project=project, filters=selection.get("filters"), ordering=selection.get("ordering"),
            selected_items=query.get("selectedItems"), only_annotated=query_bool(request, "only_annotated"),
            annotations_of_user=own_annotations_only(self.actor, project),
        )
        page = query_int(request, "page", 1)
        # page_size=-1 (the legacy SDK's default) means every task on one page.
        page_size = (self.all_tasks_page_size if request.query_params.get("page_size") == "-1"
                     else query_int(request, "page_size", 100, maximum=10000))
        tasks, totals = _task_page(self.actor, project, queryset,
                                   with_related=request.query_params.get("fields") == "all",
                                   page=page, page_size=page_size)
        tasks = _resolved_page(tasks, _resolving(request, project_id=project.pk, default=False))
        return _json_response(
            f'{{"tasks": {tasks}, "total": {totals["count"]}, "total_annotations": {totals["annotations"] or 0}, '
            f'"total_predictions": {totals["predictions"] or 0}}}'
        )

    def post(self, request):
        serializer = TaskInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if "project" not in serializer.validated_data:
            raise ValidationError({"project": "Required."})
        project = _project_or_404(self.actor, serializer.validated_data["project"], permission="tasks.import")
        task = services.task_create(project=project, data=serializer.validated_data["data"],
                                    meta=serializer.validated_data.get("meta"), user=request.user)
        return Response(task_payload(task, annotations=[], predictions=[]), status=status.HTTP_201_CREATED)


class ProjectTasksApi(LabelingApi):
    """GET a project's tasks (LS returns a plain page); DELETE them all."""

    permissions = {"GET": "tasks.view", "DELETE": "tasks.delete"}

    def get(self, request, pk):
        project = _project_or_404(self.actor, pk, permission="tasks.view")
        page = query_int(request, "page", 1)
        page_size = query_int(request, "page_size", 100, maximum=10000)
        tasks, _ = _task_page(self.actor, project, selectors.tasks_of(project=project),
                              with_related=True, page=page, page_size=page_size)
        return _json_response(tasks)

    def delete(self, request, pk):
        project = _project_or_404(self.actor, pk, permission="tasks.delete")
        services.tasks_delete(project=project)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _task_or_404(actor: Actor, pk, *, permission: str) -> Task:
    return object_or_404(actor, Task.objects.select_related("project"), permission=permission, pk=pk)


class TaskDetailApi(LabelingApi):
    permissions = {"GET": "tasks.view", "PATCH": "tasks.change", "PUT": "tasks.change", "DELETE": "tasks.delete"}

    def get(self, request, pk):
        return _task_with_related_response(request, _task_or_404(self.actor, pk, permission="tasks.view"))

    def patch(self, request, pk):
        task = _task_or_404(self.actor, pk, permission="tasks.change")
        serializer = TaskInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        task = services.task_update(task=task, data=serializer.validated_data.get("data"),
                                    meta=serializer.validated_data.get("meta"), user=request.user)
        return Response(task_payload(task))

    put = patch

    def delete(self, request, pk):
        task = _task_or_404(self.actor, pk, permission="tasks.delete")
        services.tasks_delete(project=task.project, task_ids=[task.pk])
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- annotations ---------------------------------------------------------------------------------

class TaskAnnotationsApi(LabelingApi):
    permissions = {"GET": "tasks.view", "POST": "annotations.create"}

    def get(self, request, pk):
        task = _task_or_404(self.actor, pk, permission="tasks.view")
        annotations = task.annotations.order_by("id")
        if (own := own_annotations_only(self.actor, task.project)) is not None:
            annotations = annotations.filter(completed_by_id=own)
        return Response([annotation_payload(a) for a in annotations])

    def post(self, request, pk):
        task = _task_or_404(self.actor, pk, permission="annotations.create")
        serializer = AnnotationInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        annotation = services.annotation_create(
            task=task, user=request.user, result=data.get("result", []),
            was_cancelled=data.get("was_cancelled", False), ground_truth=data.get("ground_truth", False),
            lead_time=data.get("lead_time"), parent_prediction_id=data.get("parent_prediction"),
            parent_annotation_id=data.get("parent_annotation"),
        )
        return Response(annotation_payload(annotation), status=status.HTTP_201_CREATED)


class AnnotationDetailApi(LabelingApi):
    """Anyone who sees an annotation reads it; its author changes it, others need
    `annotations.change_any`."""

    permissions = {"GET": "tasks.view", "PATCH": "annotations.create", "PUT": "annotations.create",
                   "DELETE": "annotations.create"}

    def _get(self, pk, permission: str) -> Annotation:
        return object_or_404(self.actor, Annotation.objects.select_related("project"), permission=permission, pk=pk)

    def get(self, request, pk):
        return Response(annotation_payload(self._get(pk, "tasks.view")))

    def patch(self, request, pk):
        annotation = self._get(pk, "annotations.create")
        serializer = AnnotationInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        annotation = services.annotation_update(annotation=annotation, user=request.user,
                                                fields=serializer.validated_data)
        return Response(annotation_payload(annotation))

    put = patch

    def delete(self, request, pk):
        services.annotation_delete(annotation=self._get(pk, "annotations.create"))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- predictions ---------------------------------------------------------------------------------

class PredictionListCreateApi(LabelingApi):
    permissions = {"GET": "tasks.view", "POST": "predictions.change"}

    def get(self, request):
        queryset = Prediction.objects.filter(
            project__in=access.projects_permitting(self.actor, "tasks.view").values("pk")).order_by("id")
        if task := query_int(request, "task"):
            queryset = queryset.filter(task_id=task)
        if project := query_int(request, "project"):
            queryset = queryset.filter(project_id=project)
        return Response([prediction_payload(p) for p in queryset[:10000]])

    def post(self, request):
        serializer = PredictionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        task = _task_or_404(self.actor, data["task"], permission="predictions.change")
        prediction = services.prediction_create(task=task, result=data["result"], score=data.get("score"),
                                                model_version=data.get("model_version") or "")
        return Response(prediction_payload(prediction), status=status.HTTP_201_CREATED)


class PredictionDetailApi(LabelingApi):
    permissions = {"GET": "tasks.view", "DELETE": "predictions.change"}

    def _get(self, pk, permission: str) -> Prediction:
        return object_or_404(self.actor, Prediction.objects.select_related("project"), permission=permission, pk=pk)

    def get(self, request, pk):
        return Response(prediction_payload(self._get(pk, "tasks.view")))

    def delete(self, request, pk):
        prediction = self._get(pk, "predictions.change")
        services.predictions_delete(project=prediction.project, prediction_ids=[prediction.pk])
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- export --------------------------------------------------------------------------------------

def _exportable_project_or_404(actor: Actor, pk) -> Project:
    """An export holds every annotation of the project: someone who sees only their own there (a
    role given `exports.create` by an override, without `annotations.view_all`) cannot export."""
    project = _project_or_404(actor, pk, permission="exports.create")
    if not sees_others_annotations(actor, project):
        raise PermissionDenied("annotations.view_all")
    return project


class ProjectExportApi(LabelingApi):
    permissions = {"GET": "exports.create"}

    def get(self, request, pk):
        project = _exportable_project_or_404(self.actor, pk)
        export_type = (request.query_params.get("exportType") or request.query_params.get("export_type")
                       or "JSON").upper()
        ids = request.query_params.getlist("ids[]") or request.query_params.getlist("ids")
        try:
            return exports.export_response(
                project=project, export_type=export_type,
                download_all_tasks=query_bool(request, "download_all_tasks"),
                task_ids=[int(i) for i in ids] if ids else None,
            )
        except ValidationError as exc:
            return validation_error_response(exc)


class ExportFormatsApi(LabelingApi):
    permissions = {"GET": "exports.create"}

    def get(self, request, pk):
        _project_or_404(self.actor, pk, permission="exports.create")
        return Response(exports.formats())


# --- export snapshots ----------------------------------------------------------------------------

def _snapshot_or_404(project: Project, export_pk) -> ExportSnapshot:
    return get_object_or_404(ExportSnapshot.objects.prefetch_related("converted_formats"),
                             project=project, pk=export_pk)


class ExportSnapshotListCreateApi(LabelingApi):
    permissions = {"GET": "exports.create", "POST": "exports.create"}

    def get(self, request, pk):
        project = _exportable_project_or_404(self.actor, pk)
        snapshots = list(project.exports.prefetch_related("converted_formats").order_by("-created_at", "-id"))
        users = _users_by_id(s.created_by_id for s in snapshots)
        return Response([export_payload(s, users=users) for s in snapshots])

    def post(self, request, pk):
        project = _exportable_project_or_404(self.actor, pk)
        options = {}
        for name in ("task_filter_options", "annotation_filter_options", "serialization_options"):
            value = request.data.get(name)
            if value is not None and not isinstance(value, dict):
                raise ValidationError({name: "Must be an object."})
            options[name] = value
        snapshot = services.export_snapshot_create(
            project=project, user=request.user, title=request.data.get("title") or "", **options
        )
        snapshot = _snapshot_or_404(project, snapshot.pk)
        return Response(export_payload(snapshot, users=_users_by_id([snapshot.created_by_id])),
                        status=status.HTTP_201_CREATED)


class ExportSnapshotDetailApi(LabelingApi):
    permissions = {"GET": "exports.create", "DELETE": "exports.create"}

    def get(self, request, pk, export_pk):
        snapshot = _snapshot_or_404(_exportable_project_or_404(self.actor, pk), export_pk)
        return Response(export_payload(snapshot, users=_users_by_id([snapshot.created_by_id])))

    def delete(self, request, pk, export_pk):
        services.export_snapshot_delete(snapshot=_snapshot_or_404(_exportable_project_or_404(self.actor, pk),
                                                                  export_pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExportSnapshotConvertApi(LabelingApi):
    permissions = {"POST": "exports.create"}

    def post(self, request, pk, export_pk):
        snapshot = _snapshot_or_404(_exportable_project_or_404(self.actor, pk), export_pk)
        export_type = request.data.get("export_type") or request.data.get("exportType")
        if not export_type:
            raise ValidationError({"export_type": "Required."})
        converted = services.export_snapshot_convert(snapshot=snapshot, export_type=export_type)
        return Response({"export_type": converted.export_type, "converted_format": converted.pk})


class ExportSnapshotDownloadApi(LabelingApi):
    permissions = {"GET": "exports.create"}

    def get(self, request, pk, export_pk):
        project = _exportable_project_or_404(self.actor, pk)
        snapshot = _snapshot_or_404(project, export_pk)
        export_type = exports.check_export_type(
            request.query_params.get("exportType") or request.query_params.get("export_type") or "JSON"
        )
        if export_type == "JSON":
            stored, state = snapshot.file, snapshot.status
        else:
            converted = next((c for c in snapshot.converted_formats.all() if c.export_type == export_type), None)
            if converted is None:
                raise ValidationError({"exportType": f"Convert export {snapshot.pk} to {export_type} first "
                                                     f"(POST .../exports/{snapshot.pk}/convert)."})
            stored, state = converted.file, converted.status
        if state != ExportStatus.COMPLETED or not stored:
            return Response({"detail": f"Export is {state}; download it once completed."},
                            status=status.HTTP_409_CONFLICT)
        name = exports.file_name(project=project, export_type=export_type)
        return FileResponse(stored.open("rb"), as_attachment=True, filename=name)


class ProjectNextTaskApi(LabelingApi):
    """The label stream: GET the next task for the current user, reserved for them."""

    permissions = {"GET": "annotations.create"}

    def get(self, request, pk):
        project = _project_or_404(self.actor, pk, permission="annotations.create")
        task = services.next_task_for(project=project, user=request.user)
        if task is None:
            return Response({"detail": "No more tasks to label in this project."}, status=status.HTTP_404_NOT_FOUND)
        return _task_with_related_response(request, task)


class ImportJobApi(LabelingApi):
    """GET /api/projects/{id}/imports/{import_pk}/: a large import's progress (LSE's ProjectImport)."""

    permissions = {"GET": "tasks.view"}

    def get(self, request, pk, import_pk):
        project = _project_or_404(self.actor, pk, permission="tasks.view")
        job = get_object_or_404(ImportJob, project=project, pk=import_pk)
        return Response({
            "id": job.pk, "project": job.project_id, "status": job.status, "error": job.error or None,
            "task_count": job.task_count, "annotation_count": job.annotation_count,
            "prediction_count": job.prediction_count, "duration": job.duration,
            "file_upload_ids": job.file_upload_ids, "found_formats": job.found_formats,
            "data_columns": job.data_columns, "task_ids": job.task_ids, "return_task_ids": job.return_task_ids,
            "commit_to_project": True, "could_be_tasks_list": False, "url": None, "tasks": None,
            "preannotated_from_fields": None, "created_at": job.created_at, "updated_at": job.updated_at,
            "finished_at": job.finished_at,
        })
