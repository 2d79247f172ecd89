"""API of the work around annotations: drafts, annotation history, reviews, comments, task
assignments, bulk annotations, imported predictions and model versions (Label Studio shapes)."""

import csv
import io

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from accounts.access import Actor, can, require
from labeling import access, collaboration, data_manager, services
from labeling.api import (
    LabelingApi,
    _project_or_404,
    _task_or_404,
    _users_by_id,
    object_or_404,
    own_annotations_only,
    visible_or_404,
)
from labeling.models import (
    Annotation,
    AnnotationDraft,
    AnnotationHistory,
    AnnotationReview,
    Comment,
    Project,
    Task,
)
from labeling.serializers import (
    assignment_payload,
    comment_payload,
    draft_payload,
    history_payload,
    review_payload,
)
from platform_core.params import body_ids, query_bool, query_ids, query_int, truthy
from platform_core.routing import route


def _visible_annotation(actor: Actor, annotation_id) -> Annotation | None:
    """The annotation a body names, if the actor may see it (else None, as if it did not exist)."""
    if not isinstance(annotation_id, int) or isinstance(annotation_id, bool):
        return None
    annotation = Annotation.objects.select_related("project").filter(pk=annotation_id).first()
    return annotation if annotation is not None and can(actor, "tasks.view", annotation) else None


# --- drafts --------------------------------------------------------------------------------------

def _draft_fields(request) -> dict:
    data = request.data if isinstance(request.data, dict) else {}
    fields = {}
    if "result" in data:
        fields["result"] = data["result"]
    if "lead_time" in data:
        lead_time = data["lead_time"]
        if lead_time is not None and (not isinstance(lead_time, int | float) or lead_time < 0):
            raise ValidationError({"lead_time": "Must be a non-negative number of seconds."})
        fields["lead_time"] = lead_time
    if "was_postponed" in data:
        fields["was_postponed"] = truthy(data["was_postponed"])
    return fields


class TaskDraftsApi(LabelingApi):
    """GET the current user's drafts of a task; POST saves (creates or overwrites) one."""

    permissions = {"GET": "tasks.view", "POST": "annotations.create"}

    def get(self, request, pk):
        task = _task_or_404(self.actor, pk, permission="tasks.view")
        drafts = AnnotationDraft.objects.filter(task=task, user=request.user).order_by("id")
        return Response([draft_payload(d) for d in drafts])

    def post(self, request, pk):
        task = _task_or_404(self.actor, pk, permission="annotations.create")
        fields = _draft_fields(request)
        if "result" not in fields:
            raise ValidationError({"result": "Required."})
        draft = collaboration.draft_save(task=task, user=request.user, **fields)
        return Response(draft_payload(draft), status=status.HTTP_201_CREATED)


class AnnotationDraftsApi(LabelingApi):
    """POST a draft of changes to an existing annotation (one the caller can see)."""

    permissions = {"POST": "annotations.create"}

    def post(self, request, pk):
        annotation = object_or_404(self.actor, Annotation.objects.select_related("task", "project"),
                                   permission="tasks.view", pk=pk)
        require(self.actor, "annotations.create", annotation.project)
        fields = _draft_fields(request)
        if "result" not in fields:
            raise ValidationError({"result": "Required."})
        draft = collaboration.draft_save(task=annotation.task, annotation=annotation, user=request.user, **fields)
        return Response(draft_payload(draft), status=status.HTTP_201_CREATED)


class DraftDetailApi(LabelingApi):
    """A draft belongs to its author: others get 404."""

    permissions = {"GET": "tasks.view", "PATCH": "annotations.create", "PUT": "annotations.create",
                   "DELETE": "annotations.create"}

    def _get(self, request, pk, permission: str) -> AnnotationDraft:
        return object_or_404(self.actor, AnnotationDraft.objects.select_related("task__project"),
                             permission=permission, pk=pk, user=request.user)

    def get(self, request, pk):
        return Response(draft_payload(self._get(request, pk, "tasks.view")))

    def patch(self, request, pk):
        draft = collaboration.draft_update(draft=self._get(request, pk, "annotations.create"),
                                           fields=_draft_fields(request))
        return Response(draft_payload(draft))

    put = patch

    def delete(self, request, pk):
        self._get(request, pk, "annotations.create").delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- annotation history --------------------------------------------------------------------------

class HistoryPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


def _visible_history(actor: Actor) -> QuerySet[AnnotationHistory]:
    """History the actor may read: of their own annotations, or of everyone's where they see them."""
    own = Annotation.objects.filter(completed_by_id=actor.user.pk).values("pk")
    return access.work_visible_to(actor, AnnotationHistory.objects.all(), project_field="project_id",
                                     own=Q(annotation_id__in=own))


class AnnotationHistoryListApi(LabelingApi):
    permissions = {"GET": "tasks.view", "DELETE": "annotations.delete_history"}

    def get(self, request):
        annotation_id = query_int(request, "annotation")
        if annotation_id is None:
            raise ValidationError({"annotation": "Give the annotation id: ?annotation=ID."})
        ordering = "id" if request.query_params.get("ordering") == "id" else "-id"
        entries = _visible_history(self.actor).filter(annotation_id=annotation_id).order_by(ordering)[:1000]
        return Response([history_payload(e) for e in entries])

    def delete(self, request):
        require(self.actor, "annotations.delete_history")
        given = {"annotation_id": query_int(request, "annotation"), "task_id": query_int(request, "task"),
                 "project_id": query_int(request, "project")}
        if given["project_id"] is not None:
            _project_or_404(self.actor, given["project_id"], permission="annotations.delete_history")
        # History outlives its annotations: what it would delete decides, project by project.
        matching = AnnotationHistory.objects.filter(**{k: v for k, v in given.items() if v is not None})
        if any(value is not None for value in given.values()):
            for project in Project.objects.filter(pk__in=matching.values("project_id")):
                visible_or_404(self.actor, project, permission="annotations.delete_history")
        removed = collaboration.history_delete(**given)
        return Response({"removed": removed})


class AnnotationHistoryDetailApi(LabelingApi):
    permissions = {"GET": "tasks.view"}

    def get(self, request, pk):
        return Response(history_payload(get_object_or_404(_visible_history(self.actor), pk=pk)))


class ProjectAnnotationHistoryApi(LabelingApi):
    permissions = {"GET": "tasks.view"}

    def get(self, request, pk):
        project = _project_or_404(self.actor, pk, permission="tasks.view")
        paginator = HistoryPagination()
        page = paginator.paginate_queryset(_visible_history(self.actor).filter(project_id=project.pk).order_by("-id"),
                                           request, view=self)
        return paginator.get_paginated_response([history_payload(e) for e in page])


# --- reviews -------------------------------------------------------------------------------------

def _review_input(request, *, partial: bool) -> dict:
    data = request.data if isinstance(request.data, dict) else {}
    fields = {}
    if "accepted" in data:
        if str(data["accepted"]).lower() not in ("true", "false", "1", "0"):
            raise ValidationError({"accepted": "Must be true or false."})
        fields["accepted"] = truthy(data["accepted"])
    elif not partial:
        raise ValidationError({"accepted": "Required: true to accept, false to reject."})
    if "remove_from_queue" in data:
        fields["remove_from_queue"] = truthy(data["remove_from_queue"])
    return fields


class AnnotationReviewListApi(LabelingApi):
    permissions = {"GET": "reviews.view", "POST": "reviews.create"}

    def get(self, request):
        reviews = collaboration.reviews_filtered(
            annotation_id=query_int(request, "annotation"), project_id=query_int(request, "annotation__task__project"),
        )
        reviews = access.work_visible_to(self.actor, reviews, project_field="annotation__project",
                                            own=Q(annotation__completed_by_id=self.actor.user.pk),
                                            permission="reviews.view")
        return Response([review_payload(r) for r in reviews[:10000]])

    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        annotation_id = data.get("annotation")
        if not isinstance(annotation_id, int):
            raise ValidationError({"annotation": "Required: the id of the annotation to review."})
        annotation = _visible_annotation(self.actor, annotation_id)
        if annotation is None:
            raise ValidationError({"annotation": f"No annotation {annotation_id} in this organization."})
        require(self.actor, "reviews.create", annotation.project)
        result = data.get("result")
        if result is not None and not isinstance(result, list):
            raise ValidationError({"result": "Must be a list of result items."})
        review = collaboration.review_create(
            annotation=annotation, user=request.user, result=result, comment=data.get("comment"),
            started_at=data.get("started_at"), **_review_input(request, partial=False),
        )
        return Response(review_payload(review), status=status.HTTP_201_CREATED)


class AnnotationReviewDetailApi(LabelingApi):
    permissions = {"GET": "reviews.view", "PATCH": "reviews.create", "PUT": "reviews.create",
                   "DELETE": "reviews.create"}

    def _get(self, pk, permission: str) -> AnnotationReview:
        review = object_or_404(self.actor, AnnotationReview.objects.select_related("annotation__project"),
                               permission=permission, pk=pk)
        if not can(self.actor, "tasks.view", review.annotation):
            raise Http404("Not found in this organization.")
        return review

    def get(self, request, pk):
        return Response(review_payload(self._get(pk, "reviews.view")))

    def patch(self, request, pk):
        review = collaboration.review_update(review=self._get(pk, "reviews.create"), user=request.user,
                                             fields=_review_input(request, partial=True))
        return Response(review_payload(review))

    put = patch

    def delete(self, request, pk):
        collaboration.review_delete(review=self._get(pk, "reviews.create"), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- comments ------------------------------------------------------------------------------------

def _comment_fields(data: dict) -> dict:
    fields = {}
    if "text" in data:
        if data["text"] is not None and not isinstance(data["text"], str):
            raise ValidationError({"text": "Must be a string."})
        fields["text"] = data["text"]
    for name in ("region_ref", "classifications"):
        if name in data:
            fields[name] = data[name]
    if "is_resolved" in data:
        fields["is_resolved"] = truthy(data["is_resolved"])
    return fields


def _comments_from_query(request, actor: Actor) -> QuerySet[Comment]:
    comments = collaboration.comments_filtered(
        annotation_id=query_int(request, "annotation"), draft_id=query_int(request, "draft"),
        task_id=query_int(request, "task"), project_ids=query_ids(request, "projects"),
        annotator_ids=query_ids(request, "annotators"),
    )
    # Your own comments, and everyone's comments on your annotations (a reviewer's note to you).
    own = Q(created_by_id=actor.user.pk) | Q(annotation__completed_by_id=actor.user.pk)
    return access.work_visible_to(actor, comments, project_field="project", own=own)


class CommentListApi(LabelingApi):
    permissions = {"GET": "tasks.view", "POST": "comments.create"}

    def get(self, request):
        comments = list(_comments_from_query(request, self.actor)[:10000])
        users = _users_by_id(c.created_by_id for c in comments) if query_bool(request, "expand_created_by") else None
        return Response([comment_payload(c, users=users) for c in comments])

    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        annotation = draft = None
        if data.get("annotation") is not None:
            annotation = _visible_annotation(self.actor, data["annotation"])
            if annotation is None:
                raise ValidationError({"annotation": "No such annotation in this organization."})
            project = annotation.project
        elif data.get("draft") is not None:
            draft = AnnotationDraft.objects.select_related("task__project").filter(
                pk=data["draft"], user=request.user).first() if isinstance(data["draft"], int) else None
            if draft is None or not can(self.actor, "tasks.view", draft):
                raise ValidationError({"draft": "No such draft of yours."})
            project = draft.task.project
        else:
            raise ValidationError({"annotation": "Give the annotation (or draft) the comment is about."})
        require(self.actor, "comments.create", project)
        comment = collaboration.comment_create(user=request.user, annotation=annotation, draft=draft,
                                               **{"text": None, **_comment_fields(data)})
        return Response(comment_payload(comment), status=status.HTTP_201_CREATED)


class CommentDetailApi(LabelingApi):
    """Anyone who sees a comment reads it; its author changes it, others (moderators, resolving)
    need `comments.change_any`."""

    permissions = {"GET": "tasks.view", "PATCH": "comments.create", "PUT": "comments.create",
                   "DELETE": "comments.create"}

    def _get(self, pk, permission: str) -> Comment:
        return object_or_404(self.actor, Comment.objects.select_related("project"), permission=permission, pk=pk)

    def get(self, request, pk):
        return Response(comment_payload(self._get(pk, "tasks.view")))

    def patch(self, request, pk):
        comment = self._get(pk, "comments.create")
        comment = collaboration.comment_update(comment=comment, fields=_comment_fields(request.data))
        return Response(comment_payload(comment))

    put = patch

    def delete(self, request, pk):
        collaboration.comment_delete(comment=self._get(pk, "comments.create"))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CommentExportApi(LabelingApi):
    permissions = {"GET": "tasks.view"}

    def get(self, request):
        comments = list(_comments_from_query(request, self.actor)[:100000])
        users = _users_by_id(c.created_by_id for c in comments)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["id", "project", "task", "annotation", "text", "is_resolved", "created_by",
                         "created_at", "resolved_at"])
        for c in comments:
            author = users.get(c.created_by_id)
            writer.writerow([c.pk, c.project_id, c.task_id, c.annotation_id, c.text or "", c.is_resolved,
                             author.email if author else "", c.created_at.isoformat(),
                             c.resolved_at.isoformat() if c.resolved_at else ""])
        response = HttpResponse(buffer.getvalue(), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="comments.csv"'
        return response


# --- assignments ---------------------------------------------------------------------------------

class ProjectTaskAssigneesBulkApi(LabelingApi):
    """POST assigns users to the selected tasks of a project (LSE bulk_assign)."""

    permissions = {"POST": "tasks.change"}

    def post(self, request, pk):
        project = _project_or_404(self.actor, pk, permission="tasks.change")
        data = request.data if isinstance(request.data, dict) else {}
        if "selectedItems" not in data:
            raise ValidationError({"selectedItems": "Required."})
        task_ids = data_manager.selected_task_ids(project=project, selected_items=data["selectedItems"],
                                                   filters=data.get("filters"),
                                                   annotations_of_user=own_annotations_only(self.actor, project))
        created = collaboration.assignments_add(project=project, task_ids=task_ids, user_ids=data.get("users"),
                                                type=data.get("type"))
        return Response({"assignments": created, "async": False}, status=status.HTTP_201_CREATED)


class TaskAssigneesApi(LabelingApi):
    permissions = {"GET": "tasks.view", "POST": "tasks.change", "PATCH": "tasks.change", "PUT": "tasks.change",
                   "DELETE": "tasks.change"}

    def _task(self, pk, task_pk, permission: str) -> Task:
        project = _project_or_404(self.actor, pk, permission=permission)
        return get_object_or_404(Task, project=project, pk=task_pk)

    def get(self, request, pk, task_pk):
        task = self._task(pk, task_pk, "tasks.view")
        return Response([assignment_payload(a) for a in collaboration.assignments_of(task=task)])

    def _assign(self, request, pk, task_pk, *, replace: bool):
        task = self._task(pk, task_pk, "tasks.change")
        data = request.data if isinstance(request.data, dict) else {}
        collaboration.assignments_add(project=task.project, task_ids=[task.pk], user_ids=data.get("users"),
                                      type=data.get("type"), replace=replace)
        return Response([assignment_payload(a) for a in collaboration.assignments_of(task=task)])

    def post(self, request, pk, task_pk):
        return self._assign(request, pk, task_pk, replace=False)

    def patch(self, request, pk, task_pk):
        return self._assign(request, pk, task_pk, replace=True)

    put = patch

    def delete(self, request, pk, task_pk):
        task = self._task(pk, task_pk, "tasks.change")
        collaboration.assignments_delete(task_ids=[task.pk], type=request.query_params.get("type"),
                                         user_ids=query_ids(request, "users"))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- bulk annotations, predictions import, model versions ----------------------------------------

class AnnotationBulkCreateApi(LabelingApi):
    """POST one result onto many tasks: `tasks` (ids) or `selectedItems` with `project`. A bulk
    operation on tasks, like the data manager's actions: `tasks.change`."""

    permissions = {"POST": "tasks.change"}

    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        if "project" in data:
            if not isinstance(data["project"], int) or isinstance(data["project"], bool):
                raise ValidationError({"project": "Must be a project id."})
            project = _project_or_404(self.actor, data["project"], permission="tasks.change")
        elif isinstance(data.get("tasks"), list) and data["tasks"]:
            task = Task.objects.filter(pk__in=body_ids(data["tasks"], field="tasks")).select_related("project").first()
            if task is None:
                raise ValidationError({"tasks": "No such tasks in this organization."})
            project = visible_or_404(self.actor, task.project, permission="tasks.change")
        else:
            raise ValidationError({"project": "Give the project (with selectedItems) or the task ids."})
        if "selectedItems" in data:
            task_ids = data_manager.selected_task_ids(
                project=project, selected_items=data["selectedItems"],
                annotations_of_user=own_annotations_only(self.actor, project))
        else:
            task_ids = body_ids(data.get("tasks"), field="tasks")
        if not task_ids:
            raise ValidationError({"tasks": "No tasks selected."})
        was_cancelled = truthy(data.get("was_cancelled"))
        ids = services.annotations_bulk_create(project=project, user=request.user, task_ids=task_ids,
                                               result=data.get("result", []), was_cancelled=was_cancelled,
                                               lead_time=data.get("lead_time"))
        return Response([{"id": i} for i in ids], status=status.HTTP_201_CREATED)


class AnnotationBulkDeleteApi(LabelingApi):
    permissions = {"POST": "annotations.change_any"}

    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        ids = body_ids(data.get("ids"), field="ids")
        if not ids:
            raise ValidationError({"ids": "Give at least one annotation id."})
        if not isinstance(data.get("project"), int):
            raise ValidationError({"project": "Required: the project of the annotations."})
        project = _project_or_404(self.actor, data["project"], permission="annotations.change_any")
        deleted = services.annotations_bulk_delete(project=project, annotation_ids=ids)
        return Response({"deleted_count": deleted})


class ProjectPredictionsImportApi(LabelingApi):
    permissions = {"POST": "predictions.change"}

    def post(self, request, pk):
        project = _project_or_404(self.actor, pk, permission="predictions.change")
        created = collaboration.predictions_import(project=project, predictions=request.data)
        return Response({"created": created}, status=status.HTTP_201_CREATED)


class ProjectModelVersionsApi(LabelingApi):
    permissions = {"GET": "tasks.view"}

    def get(self, request, pk):
        project = _project_or_404(self.actor, pk, permission="tasks.view")
        versions = collaboration.model_versions_of(project=project)
        if query_bool(request, "extended"):
            return Response({"static": [{"model_version": v, "count": c} for v, c in versions.items()], "live": []})
        return Response(versions)


urlpatterns = [
    route(r"tasks/(?P<pk>\d+)/drafts", TaskDraftsApi),
    route(r"annotations/(?P<pk>\d+)/drafts", AnnotationDraftsApi),
    route(r"drafts/(?P<pk>\d+)", DraftDetailApi),
    route(r"annotation-history", AnnotationHistoryListApi),
    route(r"annotation-history/(?P<pk>\d+)", AnnotationHistoryDetailApi),
    route(r"projects/(?P<pk>\d+)/annotation-history", ProjectAnnotationHistoryApi),
    route(r"annotation-reviews", AnnotationReviewListApi),
    route(r"annotation-reviews/(?P<pk>\d+)", AnnotationReviewDetailApi),
    route(r"comments", CommentListApi),
    route(r"comments/export", CommentExportApi),
    route(r"comments/(?P<pk>\d+)", CommentDetailApi),
    route(r"projects/(?P<pk>\d+)/tasks/assignees", ProjectTaskAssigneesBulkApi),
    route(r"projects/(?P<pk>\d+)/tasks/(?P<task_pk>\d+)/assignees", TaskAssigneesApi),
    route(r"annotations/bulk", AnnotationBulkCreateApi),
    route(r"annotations/bulk-delete", AnnotationBulkDeleteApi),
    route(r"projects/(?P<pk>\d+)/import/predictions", ProjectPredictionsImportApi),
    route(r"projects/(?P<pk>\d+)/model-versions", ProjectModelVersionsApi),
]
