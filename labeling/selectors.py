"""Reads of the labeling domain, shaped so a page costs a fixed number of queries."""

from django.db import connection
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from labeling.models import Annotation, Prediction, Project, Task


def _task_aggregate(expression, **filters):
    return Coalesce(
        Subquery(
            Task.objects.filter(project=OuterRef("pk"), **filters)
            .order_by()
            .values("project")
            .annotate(value=expression)
            .values("value")[:1],
            output_field=IntegerField(),
        ),
        0,
    )


def projects_with_counts() -> QuerySet[Project]:
    """Projects with LS's counters, computed from the tasks' denormalized counts."""
    return Project.objects.annotate(
        task_number=_task_aggregate(Count("id")),
        finished_task_number=_task_aggregate(Count("id"), is_labeled=True),
        num_tasks_with_annotations=_task_aggregate(Count("id"), total_annotations__gt=0),
        total_annotations_number=_task_aggregate(Sum("total_annotations")),
        skipped_annotations_number=_task_aggregate(Sum("cancelled_annotations")),
        total_predictions_number=_task_aggregate(Sum("total_predictions")),
    )


def project_get(*, pk) -> Project | None:
    return projects_with_counts().filter(pk=pk).first()


def tasks_of(*, project: Project, ids: list[int] | None = None, only_annotated: bool = False) -> QuerySet[Task]:
    queryset = Task.objects.filter(project=project)
    if ids is not None:
        queryset = queryset.filter(pk__in=ids)
    if only_annotated:
        queryset = queryset.filter(Q(total_annotations__gt=0) | Q(cancelled_annotations__gt=0))
    return queryset.order_by("id")


def related_for_tasks(*, task_ids: list[int], annotations_of_user: int | None = None) -> tuple[dict, dict]:
    """Annotations and predictions for some tasks: two queries, whatever their number.
    `annotations_of_user` keeps only that user's annotations (see `task_json_expression`)."""
    annotations: dict[int, list[Annotation]] = {task_id: [] for task_id in task_ids}
    predictions: dict[int, list[Prediction]] = {task_id: [] for task_id in task_ids}
    queryset = Annotation.objects.filter(task_id__in=task_ids)
    if annotations_of_user is not None:
        queryset = queryset.filter(completed_by_id=annotations_of_user)
    for annotation in queryset.order_by("id"):
        annotations[annotation.task_id].append(annotation)
    for prediction in Prediction.objects.filter(task_id__in=task_ids).order_by("id"):
        predictions[prediction.task_id].append(prediction)
    return annotations, predictions


# Task JSON built by PostgreSQL (exports and task pages): no Python object per row or per field.
_ANNOTATION_JSON = """jsonb_build_object(
    'id', a.id, 'completed_by', a.completed_by_id, 'result', a.result, 'was_cancelled', a.was_cancelled,
    'ground_truth', a.ground_truth, 'created_at', a.created_at, 'updated_at', a.updated_at,
    'draft_created_at', a.draft_created_at, 'lead_time', a.lead_time, 'import_id', a.import_id,
    'last_action', a.last_action, 'task', a.task_id, 'project', a.project_id,
    'updated_by', a.updated_by_id, 'parent_prediction', a.parent_prediction_id,
    'parent_annotation', a.parent_annotation_id)"""
_PREDICTION_JSON = """jsonb_build_object(
    'id', p.id, 'result', p.result, 'score', p.score, 'model_version', p.model_version,
    'created_at', p.created_at, 'updated_at', p.updated_at, 'task', p.task_id, 'project', p.project_id)"""
_TASK_FIELDS = """'id', t.id, 'data', t.data, 'meta', COALESCE(t.meta, '{}'::jsonb),
    'created_at', t.created_at, 'updated_at', t.updated_at, 'inner_id', t.inner_id, 'is_labeled', t.is_labeled,
    'overlap', t.overlap, 'total_annotations', t.total_annotations, 'cancelled_annotations', t.cancelled_annotations,
    'total_predictions', t.total_predictions, 'comment_count', t.comment_count,
    'unresolved_comment_count', t.unresolved_comment_count, 'last_comment_updated_at', t.last_comment_updated_at,
    'project', t.project_id, 'updated_by', t.updated_by_id, 'file_upload', t.file_upload_id"""


def task_json_expression(*, with_related: bool = True, annotations_of_user: int | None = None) -> str:
    """SQL for one task (alias `t`) as jsonb, LS's shape; with annotations, predictions and drafts.

    `annotations_of_user` keeps only that user's annotations (annotators in projects that hide
    other annotators' work). Its value is an integer id, never user text.
    """
    if not with_related:
        return f"jsonb_build_object({_TASK_FIELDS})"
    own = f" AND a.completed_by_id = {int(annotations_of_user)}" if annotations_of_user is not None else ""
    return f"""(jsonb_build_object({_TASK_FIELDS}) || jsonb_build_object(
    'comment_authors', '[]'::jsonb, 'drafts', '[]'::jsonb,
    'annotations', COALESCE((SELECT jsonb_agg({_ANNOTATION_JSON} ORDER BY a.id)
        FROM labeling_annotation a WHERE a.task_id = t.id{own}), '[]'::jsonb),
    'predictions', COALESCE((SELECT jsonb_agg({_PREDICTION_JSON} ORDER BY p.id)
        FROM labeling_prediction p WHERE p.task_id = t.id), '[]'::jsonb)))"""


def task_page_json(*, queryset: QuerySet[Task], offset: int, limit: int, with_related: bool,
                   annotations_of_user: int | None) -> str:
    """A page of tasks as a JSON array text, in one query: the queryset's filter and ordering (by id
    when it has none) pick the page's ids; ARRAY(...) keeps their order and WITH ORDINALITY numbers them."""
    if not queryset.query.order_by:
        queryset = queryset.order_by("id")
    inner_sql, params = queryset.values("id")[offset:offset + limit].query.sql_with_params()
    expression = task_json_expression(with_related=with_related, annotations_of_user=annotations_of_user)
    sql = (f"SELECT COALESCE(jsonb_agg({expression} ORDER BY page.position), '[]'::jsonb)::text "  # noqa: S608
           f"FROM unnest(ARRAY({inner_sql})) WITH ORDINALITY AS page(id, position) "
           f"JOIN labeling_task t ON t.id = page.id")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]
