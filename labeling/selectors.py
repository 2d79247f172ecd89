"""Reads of the labeling domain, shaped so a page costs a fixed number of queries."""

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


def related_for_tasks(*, task_ids: list[int], user=None, own_only: bool = False) -> tuple[dict, dict]:
    """Annotations and predictions for a page of tasks: two queries, whatever the page size."""
    annotations: dict[int, list[Annotation]] = {task_id: [] for task_id in task_ids}
    predictions: dict[int, list[Prediction]] = {task_id: [] for task_id in task_ids}
    annotation_qs = Annotation.objects.filter(task_id__in=task_ids).order_by("id")
    if own_only and user is not None:
        annotation_qs = annotation_qs.filter(completed_by=user)
    for annotation in annotation_qs:
        annotations[annotation.task_id].append(annotation)
    for prediction in Prediction.objects.filter(task_id__in=task_ids).order_by("id"):
        predictions[prediction.task_id].append(prediction)
    return annotations, predictions
