"""Work around annotations: drafts, history, reviews, comments, task assignments, imported
predictions and model versions (services and the reads they need).

Like labeling.services, every function runs in the request's (or job's) organization schema.
"""

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import INACTIVE_ROLES, Membership
from labeling.models import (
    Annotation,
    AnnotationDraft,
    AnnotationHistory,
    AnnotationReview,
    Comment,
    Prediction,
    Project,
    Task,
    TaskAssignment,
)
from labeling.ocr_validation import ResultError, validate_result
from labeling.services import _refresh_task_counters, _validated_result, config_parse
from realtime import events as realtime

History = AnnotationHistory.Action


# --- history -------------------------------------------------------------------------------------

def history_record(*, annotation: Annotation, action: str, user, review_id: int | None = None,
                   comment_id: int | None = None, draft_id: int | None = None,
                   started_at=None) -> AnnotationHistory:
    """One revision of an annotation, as it stands now."""
    return AnnotationHistory.objects.create(
        annotation_id=annotation.pk, task_id=annotation.task_id, project_id=annotation.project_id,
        created_by_id=getattr(user, "pk", user), action=action, result=annotation.result,
        lead_time=annotation.lead_time, review_id=review_id, comment_id=comment_id, draft_id=draft_id,
        started_at=started_at,
    )


def history_delete(*, annotation_id: int | None = None, task_id: int | None = None,
                   project_id: int | None = None) -> int:
    filters = {key: value for key, value in (("annotation_id", annotation_id), ("task_id", task_id),
                                             ("project_id", project_id)) if value is not None}
    if not filters:
        raise ValidationError({"annotation": "Give annotation, task or project."})
    count, _ = AnnotationHistory.objects.filter(**filters).delete()
    return count


# --- drafts --------------------------------------------------------------------------------------

def _draft_result(result) -> list:
    # A draft is work in progress: it must be a list of result items, not yet a valid annotation.
    if not isinstance(result, list) or not all(isinstance(item, dict) for item in result):
        raise ValidationError({"result": "Must be a list of result objects."})
    return result


@transaction.atomic
def draft_save(*, task: Task, user, result, lead_time: float | None = None, annotation: Annotation | None = None,
               was_postponed: bool = False, started_at=None) -> AnnotationDraft:
    """The user's draft of this task (or of one of its annotations), created or overwritten."""
    if annotation is not None and annotation.task_id != task.pk:
        raise ValidationError({"annotation": "Not an annotation of this task."})
    draft, _ = AnnotationDraft.objects.select_for_update().update_or_create(
        task=task, user=user, annotation=annotation,
        defaults={"result": _draft_result(result), "lead_time": lead_time, "was_postponed": was_postponed},
    )
    return draft


@transaction.atomic
def draft_update(*, draft: AnnotationDraft, fields: dict) -> AnnotationDraft:
    if "result" in fields:
        draft.result = _draft_result(fields["result"])
    for name in ("lead_time", "was_postponed"):
        if name in fields:
            setattr(draft, name, fields[name])
    draft.save()
    return draft


def drafts_discard(*, task_id: int, user, annotation_id: int | None = None, submitted_as: int) -> None:
    """A submitted (or updated) annotation replaces the user's draft of it; comments made on the
    draft move to the annotation. One statement, as every submit runs it."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH gone AS (
                DELETE FROM labeling_annotationdraft
                WHERE task_id = %(task)s AND user_id = %(user)s AND annotation_id IS NOT DISTINCT FROM %(of)s
                RETURNING id)
            UPDATE labeling_comment SET annotation_id = %(annotation)s, draft_id = NULL
            WHERE draft_id IN (SELECT id FROM gone)
            """,
            {"task": task_id, "user": user.pk, "of": annotation_id, "annotation": submitted_as},
        )


# --- reviews -------------------------------------------------------------------------------------

def _latest_history(annotation_id: int) -> AnnotationHistory | None:
    return AnnotationHistory.objects.filter(annotation_id=annotation_id).order_by("-id").first()


@transaction.atomic
def review_create(*, annotation: Annotation, user, accepted: bool, result=None, remove_from_queue=None,
                  comment: str | None = None, started_at=None) -> AnnotationReview:
    """Accept or reject an annotation; a reviewer's `result` replaces the annotation's (fixed)."""
    annotation = Annotation.objects.select_for_update().select_related("project").get(pk=annotation.pk)
    previous = _latest_history(annotation.pk)
    fixed = result is not None and result != annotation.result
    if fixed:
        annotation.result = _validated_result(project=annotation.project, result=result,
                                              was_cancelled=annotation.was_cancelled)
    action = (History.FIXED_AND_ACCEPTED if fixed else History.ACCEPTED) if accepted else History.REJECTED
    annotation.last_action = action
    annotation.updated_by = user
    annotation.save(update_fields=["result", "last_action", "updated_by", "updated_at"])
    review = AnnotationReview.objects.create(
        annotation=annotation, created_by=user, accepted=accepted, result=result if fixed else None,
        remove_from_queue=remove_from_queue, started_at=started_at, previous_annotation_history=previous,
    )
    entry = history_record(annotation=annotation, action=action, user=user, review_id=review.pk,
                           started_at=started_at)
    review.last_annotation_history = entry
    review.fixed_annotation_history = entry if fixed else None
    review.save(update_fields=["last_annotation_history", "fixed_annotation_history"])
    if comment:
        comment_create(user=user, annotation=annotation, text=comment)
    realtime.review_created(review=review, annotation=annotation, user=user)
    return review


@transaction.atomic
def review_update(*, review: AnnotationReview, user, fields: dict) -> AnnotationReview:
    for name in ("accepted", "remove_from_queue"):
        if name in fields:
            setattr(review, name, fields[name])
    review.save()
    annotation = review.annotation
    action = History.ACCEPTED if review.accepted else History.REJECTED
    Annotation.objects.filter(pk=annotation.pk).update(last_action=action, updated_at=timezone.now())
    annotation.refresh_from_db()
    review.last_annotation_history = history_record(annotation=annotation, action=action, user=user,
                                                    review_id=review.pk)
    review.save(update_fields=["last_annotation_history"])
    return review


@transaction.atomic
def review_delete(*, review: AnnotationReview, user) -> None:
    annotation = review.annotation
    history_record(annotation=annotation, action=History.DELETED_REVIEW, user=user, review_id=review.pk)
    review.delete()


# --- comments ------------------------------------------------------------------------------------

def _refresh_comment_counters(task_ids) -> None:
    """Recount comments of some tasks in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE labeling_task t SET comment_count = c.total, unresolved_comment_count = c.unresolved,
                last_comment_updated_at = c.last_at
            FROM (
                SELECT t2.id, count(m.id) total, count(m.id) FILTER (WHERE NOT m.is_resolved) unresolved,
                       max(m.updated_at) last_at
                FROM labeling_task t2 LEFT JOIN labeling_comment m ON m.task_id = t2.id
                WHERE t2.id = ANY(%s) GROUP BY t2.id
            ) c WHERE t.id = c.id
            """,
            [list(task_ids)],
        )


@transaction.atomic
def comment_create(*, user, text: str | None, annotation: Annotation | None = None,
                   draft: AnnotationDraft | None = None, region_ref=None, classifications=None,
                   is_resolved: bool = False) -> Comment:
    if annotation is None and draft is None:
        raise ValidationError({"annotation": "A comment belongs to an annotation or a draft."})
    if not (text or "").strip() and not classifications:
        raise ValidationError({"text": "Write something (or give classifications)."})
    task_id = annotation.task_id if annotation is not None else draft.task_id
    project_id = Task.objects.filter(pk=task_id).values_list("project_id", flat=True).get()
    comment = Comment.objects.create(
        project_id=project_id, task_id=task_id, annotation=annotation, draft=draft, text=text,
        region_ref=region_ref, classifications=classifications, is_resolved=is_resolved,
        resolved_at=timezone.now() if is_resolved else None, created_by=user,
    )
    _refresh_comment_counters([task_id])
    return comment


@transaction.atomic
def comment_update(*, comment: Comment, fields: dict) -> Comment:
    for name in ("text", "region_ref", "classifications"):
        if name in fields:
            setattr(comment, name, fields[name])
    if "is_resolved" in fields and fields["is_resolved"] != comment.is_resolved:
        comment.is_resolved = fields["is_resolved"]
        comment.resolved_at = timezone.now() if comment.is_resolved else None
    comment.save()
    _refresh_comment_counters([comment.task_id])
    return comment


@transaction.atomic
def comment_delete(*, comment: Comment) -> None:
    task_id = comment.task_id
    comment.delete()
    _refresh_comment_counters([task_id])


# --- task assignments ----------------------------------------------------------------------------

def _check_assignees(user_ids) -> list[int]:
    if not isinstance(user_ids, list) or not user_ids or not all(isinstance(i, int) for i in user_ids):
        raise ValidationError({"users": "Give a non-empty list of user ids."})
    active = set(
        Membership.objects.filter(organization=connection.tenant, user_id__in=user_ids, user__deleted_at__isnull=True)
        .exclude(role__in=INACTIVE_ROLES).values_list("user_id", flat=True)
    )
    strangers = [i for i in user_ids if i not in active]
    if strangers:
        raise ValidationError({"users": f"Not active members of this organization: {strangers[:20]}"})
    return list(dict.fromkeys(user_ids))


def _check_assignment_type(value) -> str:
    if value not in TaskAssignment.Type.values:
        raise ValidationError({"type": "Must be AN (annotate) or RE (review)."})
    return value


@transaction.atomic
def assignments_add(*, project: Project, task_ids: list[int], user_ids, type: str, replace: bool = False) -> int:
    """Assign users to tasks of a project (one INSERT for all pairs). `replace` first removes the
    tasks' assignments of that type. Returns how many assignments were created."""
    type = _check_assignment_type(type)
    user_ids = _check_assignees(user_ids)
    if replace:
        TaskAssignment.objects.filter(task_id__in=task_ids, type=type).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO labeling_taskassignment (task_id, assignee_id, type, created_at)
            SELECT t.id, u.id, %s, now()
            FROM labeling_task t CROSS JOIN unnest(%s::bigint[]) AS u(id)
            WHERE t.project_id = %s AND t.id = ANY(%s)
            ON CONFLICT (task_id, assignee_id, type) DO NOTHING
            """,
            [type, user_ids, project.pk, list(task_ids)],
        )
        return cursor.rowcount


def assignments_delete(*, task_ids: list[int], type: str | None = None, user_ids: list[int] | None = None) -> int:
    queryset = TaskAssignment.objects.filter(task_id__in=task_ids)
    if type is not None:
        queryset = queryset.filter(type=_check_assignment_type(type))
    if user_ids is not None:
        queryset = queryset.filter(assignee_id__in=user_ids)
    count, _ = queryset.delete()
    return count


# --- predictions ---------------------------------------------------------------------------------

@transaction.atomic
def predictions_import(*, project: Project, predictions) -> int:
    """Import many predictions into a project's tasks: all or nothing, in batches."""
    if not isinstance(predictions, list) or not predictions:
        raise ValidationError({"predictions": "Send a non-empty JSON list of predictions."})
    config = config_parse(project.label_config)
    rows: list[Prediction] = []
    errors: dict[str, list[str]] = {}
    for index, item in enumerate(predictions):
        where = f"predictions[{index}]"
        if not isinstance(item, dict):
            errors[where] = ["Must be an object with task and result."]
            continue
        task_id, result, score = item.get("task"), item.get("result"), item.get("score")
        if not isinstance(task_id, int):
            errors[f"{where}.task"] = ["Required: the id of a task of this project."]
            continue
        if not isinstance(result, list):
            errors[f"{where}.result"] = ["Must be a list of result items."]
            continue
        if score is not None and not isinstance(score, int | float):
            errors[f"{where}.score"] = ["Must be a number."]
            continue
        try:
            validate_result(result=result, config=config, require_required=False)
        except ResultError as exc:
            errors[f"{where}.result"] = [str(error) for error in getattr(exc, "errors", [exc])]
            continue
        rows.append(Prediction(task_id=task_id, project=project, result=result, score=score,
                               model_version=str(item.get("model_version") or project.model_version or "")))
        if len(errors) >= 20:
            break
    task_ids = {row.task_id for row in rows}
    known = set(Task.objects.filter(project=project, pk__in=task_ids).values_list("pk", flat=True))
    unknown = sorted(task_ids - known)
    if unknown:
        errors["task"] = [f"Not tasks of this project: {unknown[:20]}"]
    if errors:
        raise ValidationError(errors)
    Prediction.objects.bulk_create(rows, batch_size=1000)
    _refresh_task_counters(sorted(known))
    return len(rows)


def model_versions_of(*, project: Project) -> dict[str, int]:
    """Model versions of a project's predictions, with how many predictions each has."""
    rows = (Prediction.objects.filter(project=project).order_by().values("model_version")
            .annotate(count=Count("id")).order_by("model_version"))
    return {row["model_version"]: row["count"] for row in rows}


def assignments_of(*, task: Task):
    return TaskAssignment.objects.filter(task=task).order_by("id")


def reviews_filtered(*, annotation_id: int | None = None, project_id: int | None = None):
    queryset = AnnotationReview.objects.order_by("id")
    if annotation_id is not None:
        queryset = queryset.filter(annotation_id=annotation_id)
    if project_id is not None:
        queryset = queryset.filter(annotation__project_id=project_id)
    return queryset


def comments_filtered(*, annotation_id: int | None = None, draft_id: int | None = None,
                      project_ids: list[int] | None = None, annotator_ids: list[int] | None = None,
                      task_id: int | None = None):
    queryset = Comment.objects.order_by("id")
    if annotation_id is not None:
        queryset = queryset.filter(annotation_id=annotation_id)
    if draft_id is not None:
        queryset = queryset.filter(draft_id=draft_id)
    if task_id is not None:
        queryset = queryset.filter(task_id=task_id)
    if project_ids:
        queryset = queryset.filter(project_id__in=project_ids)
    if annotator_ids:
        queryset = queryset.filter(
            Q(created_by_id__in=annotator_ids) | Q(annotation__completed_by_id__in=annotator_ids))
    return queryset
