"""Writes of the labeling domain: projects, imports, tasks, annotations, predictions.

Every function runs inside the request's organization schema (the middleware or a job's
tenant_context set it). Multi-row writes are one transaction; bulk paths use COPY.
"""

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from billing import limits as billing_limits
from labeling import webhooks
from labeling.importing import UNDEFINED_DATA_KEY
from labeling.label_config import (
    OCR_DEFAULT_CONFIG,
    LabelConfigError,
    ParsedConfig,
    config_change_orphans,
    parse_label_config,
)
from labeling.members import ensure_not_paused
from labeling.models import Annotation, AnnotationHistory, Prediction, Project, Task, TaskAssignment
from labeling.ocr_validation import ResultError, validate_result
from realtime import events as realtime
from storages import hooks as storage_hooks

LABEL_RESULT_TYPES = (
    "labels", "rectanglelabels", "polygonlabels", "keypointlabels", "brushlabels", "ellipselabels", "choices",
    "taxonomy", "paragraphlabels", "hypertextlabels", "timeserieslabels",
)


# --- label config --------------------------------------------------------------------------------

def config_parse(label_config: str) -> ParsedConfig:
    try:
        return _parse_cached(label_config)
    except LabelConfigError as exc:
        raise ValidationError({"label_config": str(exc)}) from exc


@lru_cache(maxsize=512)
def _parse_cached(label_config: str) -> ParsedConfig:
    # Every annotation is validated against its project's config: parse each distinct text once.
    return parse_label_config(label_config)


def labels_used_by_annotations(*, project: Project) -> dict[str, set[str]]:
    """Control name -> label values used by the project's annotations (one query, in SQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT item->>'from_name', label
            FROM labeling_annotation a
            CROSS JOIN LATERAL jsonb_array_elements(
                CASE WHEN jsonb_typeof(a.result) = 'array' THEN a.result ELSE '[]'::jsonb END) item
            LEFT JOIN LATERAL jsonb_array_elements_text(
                CASE WHEN item->>'type' = ANY(%s) AND jsonb_typeof(item->'value'->(item->>'type')) = 'array'
                     THEN item->'value'->(item->>'type') ELSE '[]'::jsonb END) label ON true
            WHERE a.project_id = %s
            GROUP BY 1, 2
            """,
            [list(LABEL_RESULT_TYPES), project.pk],
        )
        used: dict[str, set[str]] = {}
        for control, label in cursor.fetchall():
            used.setdefault(control, set())
            if label is not None:
                used[control].add(label)
    return used


# --- projects ------------------------------------------------------------------------------------

PROJECT_WRITABLE_FIELDS = {
    "title", "description", "label_config", "expert_instruction", "show_instruction", "show_skip_button",
    "enable_empty_annotation", "show_annotation_history", "show_collab_predictions",
    "evaluate_predictions_automatically", "reveal_preannotations_interactively", "show_ground_truth_first",
    "show_overlap_first", "annotator_sees_others", "require_comment_on_skip", "color", "maximum_annotations",
    "overlap_cohort_percentage", "min_annotations_to_start_training", "is_published", "is_draft", "model_version",
    "sampling", "skip_queue", "task_data_login", "task_data_password", "control_weights", "custom_task_lock_ttl",
    "pinned_at", "workspace_id",
}


def _apply_project_fields(project: Project, fields: dict) -> None:
    for name, value in fields.items():
        if name in PROJECT_WRITABLE_FIELDS:
            setattr(project, name, value)


@transaction.atomic
def project_create(*, user, fields: dict) -> Project:
    project = Project(created_by=user)
    _apply_project_fields(project, fields)
    if not project.label_config:
        project.label_config = OCR_DEFAULT_CONFIG
    project.parsed_label_config = config_parse(project.label_config).to_label_studio_dict()
    project.full_clean(exclude=["created_by"])
    billing_limits.take(organization_id=connection.tenant.pk, counted="projects")
    project.save()
    webhooks.emit(project_id=project.pk, action="PROJECT_CREATED",
                  payload_factory=lambda: webhooks.project_event(project))
    return project


@transaction.atomic
def project_update(*, project: Project, fields: dict, force: bool = False) -> Project:
    """Update a project. A label config change that orphans existing results needs `force`."""
    project = Project.objects.select_for_update().get(pk=project.pk)
    new_config = fields.get("label_config")
    if new_config is not None and new_config != project.label_config:
        parsed = config_parse(new_config)
        if not force and project.annotations.exists():
            problems = config_change_orphans(
                old=config_parse(project.label_config), new=parsed, used=labels_used_by_annotations(project=project)
            )
            if problems:
                raise ValidationError({"label_config": problems + [
                    "Pass force=true (?force=true) to apply it anyway; existing results keep the old labels."
                ]})
        project.parsed_label_config = parsed.to_label_studio_dict()
    _apply_project_fields(project, fields)
    project.full_clean(exclude=["created_by"])
    project.save()
    webhooks.emit(project_id=project.pk, action="PROJECT_UPDATED",
                  payload_factory=lambda: webhooks.project_event(project))
    return project


@transaction.atomic
def project_duplicate(*, project: Project, user, title: str | None = None, with_tasks: bool = True) -> Project:
    copy = Project.objects.get(pk=project.pk)
    copy.pk = None
    copy.title = (title or f"{project.title} (copy)")[:50]
    copy.created_by = user
    copy.pinned_at = None
    copy.next_inner_id = 1
    billing_limits.take(organization_id=connection.tenant.pk, counted="projects")
    copy.save()
    if with_tasks:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO labeling_task (project_id, data, meta, inner_id, is_labeled, overlap, total_annotations,
                    cancelled_annotations, total_predictions, comment_count, unresolved_comment_count,
                    created_at, updated_at)
                SELECT %s, data, meta, inner_id, false, overlap, 0, 0, 0, 0, 0, now(), now()
                FROM labeling_task WHERE project_id = %s ORDER BY id
                """,
                [copy.pk, project.pk],
            )
        Project.objects.filter(pk=copy.pk).update(next_inner_id=project.next_inner_id)
    webhooks.emit(project_id=copy.pk, action="PROJECT_CREATED", payload_factory=lambda: webhooks.project_event(copy))
    return copy


# --- import --------------------------------------------------------------------------------------

@dataclass
class ImportResult:
    task_count: int = 0
    annotation_count: int = 0
    prediction_count: int = 0
    duration: float = 0.0
    task_ids: list[int] = field(default_factory=list)


def _check_task_data(*, tasks: list[dict], config: ParsedConfig) -> None:
    """Every task carries the data keys the config uses; TXT lines take the config's only key."""
    keys = sorted(config.data_keys)
    errors = []
    for index, task in enumerate(tasks):
        data = task["data"]
        if UNDEFINED_DATA_KEY in data:
            if len(keys) != 1:
                errors.append(f"task #{index + 1}: plain values need a config with exactly one $variable, "
                              f"this one has {keys or 'none'}")
            else:
                data[keys[0]] = data.pop(UNDEFINED_DATA_KEY)
        missing = [key for key in keys if key not in data]
        if missing:
            errors.append(f"task #{index + 1}: data lacks {', '.join(repr(k) for k in missing)} "
                          f"used by the labeling config")
        if len(errors) >= 20:
            break
    if errors:
        raise ValidationError({"data": errors})


def _check_results(*, tasks: list[dict], config: ParsedConfig) -> None:
    errors = []
    for index, task in enumerate(tasks):
        for kind in ("annotations", "predictions"):
            for number, item in enumerate(task.get(kind) or [], start=1):
                try:
                    validate_result(result=item.get("result", []), config=config, require_required=False)
                except ResultError as exc:
                    errors.append(f"task #{index + 1}, {kind[:-1]} #{number}: {exc}")
        if len(errors) >= 20:
            break
    if errors:
        raise ValidationError({"result": errors})


def _insert_from_json(*, sql: str, rows: list, params: dict) -> list[tuple]:
    """Run one INSERT ... SELECT over `jsonb_array_elements(%(rows)s)`: a single round trip and a
    single json.dumps for the whole batch, PostgreSQL splitting it into rows."""
    with connection.cursor() as cursor:
        cursor.execute(sql, {**params, "rows": json.dumps(rows)})
        return cursor.fetchall() if cursor.description else []


INSERT_TASKS_SQL = """
INSERT INTO labeling_task (project_id, data, meta, inner_id, is_labeled, overlap, total_annotations,
    cancelled_annotations, total_predictions, comment_count, unresolved_comment_count, file_upload_id,
    import_job_id, created_at, updated_at)
SELECT %(project)s, e.value->'d', COALESCE(e.value->'m', '{}'::jsonb), %(first)s + e.ordinality - 1,
    (e.value->>'t')::int >= %(overlap)s, %(overlap)s, (e.value->>'t')::int, (e.value->>'c')::int,
    (e.value->>'p')::int, 0, 0, (e.value->>'f')::bigint, %(import_job)s, %(now)s, %(now)s
FROM jsonb_array_elements(%(rows)s::jsonb) WITH ORDINALITY e
RETURNING inner_id, id
"""
INSERT_ANNOTATIONS_SQL = """
INSERT INTO labeling_annotation (task_id, project_id, result, completed_by_id, was_cancelled, ground_truth,
    lead_time, import_id, created_at, updated_at)
SELECT (e.value->>'task')::bigint, %(project)s, COALESCE(e.value->'result', '[]'::jsonb), %(user)s,
    COALESCE((e.value->>'was_cancelled')::boolean, false), COALESCE((e.value->>'ground_truth')::boolean, false),
    (e.value->>'lead_time')::float, %(import_job)s, %(now)s, %(now)s
FROM jsonb_array_elements(%(rows)s::jsonb) e
"""
INSERT_PREDICTIONS_SQL = """
INSERT INTO labeling_prediction (task_id, project_id, result, score, model_version, mislabeling, created_at,
    updated_at)
SELECT (e.value->>'task')::bigint, %(project)s, COALESCE(e.value->'result', '[]'::jsonb),
    (e.value->>'score')::float, COALESCE(e.value->>'model_version', %(model_version)s), 0, %(now)s, %(now)s
FROM jsonb_array_elements(%(rows)s::jsonb) e
"""


def _number_or_none(value, *, field: str):
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    raise ValidationError({field: f"Must be a number, got {value!r}."})


@transaction.atomic
def tasks_import(*, project: Project, tasks: list[dict], user, import_job_id: int | None = None) -> ImportResult:
    """Validate every task, then insert tasks, annotations and predictions with one statement each
    (PostgreSQL expands a JSON array into rows). All or nothing; never reads existing tasks.

    A task made from an uploaded file carries the upload's id as "file_upload" (set by
    labeling.uploads; parsed user input never has that key)."""
    started = time.monotonic()
    config = config_parse(project.label_config)
    _check_task_data(tasks=tasks, config=config)
    _check_results(tasks=tasks, config=config)
    result = ImportResult()
    if not tasks:
        return result
    count = len(tasks)
    locked = Project.objects.select_for_update().only("next_inner_id").get(pk=project.pk)
    first_inner_id = locked.next_inner_id
    Project.objects.filter(pk=project.pk).update(next_inner_id=F("next_inner_id") + count)
    now = timezone.now()
    rows = []
    for task in tasks:
        task_annotations = task.get("annotations") or []
        cancelled = sum(1 for a in task_annotations if a.get("was_cancelled"))
        rows.append({"d": task["data"], "m": task.get("meta") or {}, "t": len(task_annotations) - cancelled,
                     "c": cancelled, "p": len(task.get("predictions") or []), "f": task.get("file_upload")})
    common = {"project": project.pk, "now": now, "import_job": import_job_id}
    inserted = _insert_from_json(sql=INSERT_TASKS_SQL, rows=rows, params={
        **common, "first": first_inner_id, "overlap": max(project.maximum_annotations, 1),
    })
    id_of_inner = dict(inserted)
    task_ids = [id_of_inner[first_inner_id + index] for index in range(count)]

    annotations, predictions = [], []
    for task_id, task in zip(task_ids, tasks, strict=True):
        for item in task.get("annotations") or []:
            annotations.append({"task": task_id, "result": item.get("result", []),
                                "was_cancelled": bool(item.get("was_cancelled", False)),
                                "ground_truth": bool(item.get("ground_truth", False)),
                                "lead_time": _number_or_none(item.get("lead_time"), field="lead_time")})
        for item in task.get("predictions") or []:
            predictions.append({"task": task_id, "result": item.get("result", []),
                                "score": _number_or_none(item.get("score"), field="score"),
                                "model_version": str(item["model_version"]) if item.get("model_version") else None})
    if annotations:
        billing_limits.take(organization_id=connection.tenant.pk, counted="results", count=len(annotations))
        _insert_from_json(sql=INSERT_ANNOTATIONS_SQL, rows=annotations,
                          params={**common, "user": user.pk if user else None})
    if predictions:
        _insert_from_json(sql=INSERT_PREDICTIONS_SQL, rows=predictions,
                          params={**common, "model_version": project.model_version or ""})
    result.task_count, result.task_ids = count, task_ids
    realtime.tasks_created(project_id=project.pk, count=count)
    result.annotation_count, result.prediction_count = len(annotations), len(predictions)
    result.duration = time.monotonic() - started
    webhooks.emit(project_id=project.pk, action="TASKS_CREATED",
                  payload_factory=lambda: webhooks.tasks_created_event(project, task_ids))
    return result


# --- tasks ---------------------------------------------------------------------------------------

@transaction.atomic
def task_create(*, project: Project, data: dict, meta: dict | None = None, user=None) -> Task:
    imported = tasks_import(project=project, tasks=[{"data": data, "meta": meta or {}}], user=user)
    return Task.objects.get(pk=imported.task_ids[0])


def task_update(*, task: Task, data: dict | None = None, meta: dict | None = None, user=None) -> Task:
    if data is not None:
        config = config_parse(task.project.label_config)
        _check_task_data(tasks=[{"data": data}], config=config)
        task.data = data
    if meta is not None:
        task.meta = meta
    task.updated_by = user
    task.save()
    return task


def _delete_tasks_sql(*, project_id: int, task_ids: list[int] | None) -> int:
    """Delete tasks and everything hanging off them with one statement per table (no ORM collector)."""
    task_filter = "project_id = %s" + (" AND id = ANY(%s)" if task_ids is not None else "")
    params = [project_id] + ([list(task_ids)] if task_ids is not None else [])
    selected = f"SELECT id FROM labeling_task WHERE {task_filter}"  # noqa: S608 - fixed fragments only
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM labeling_annotationreview WHERE annotation_id IN "  # noqa: S608
            f"(SELECT id FROM labeling_annotation WHERE task_id IN ({selected}))", params
        )
        for table in ("labeling_comment", "labeling_annotationdraft", "labeling_tasklock", "labeling_taskassignment"):
            cursor.execute(f"DELETE FROM {table} WHERE task_id IN ({selected})", params)  # noqa: S608
        cursor.execute(f"DELETE FROM labeling_annotation WHERE task_id IN ({selected})", params)  # noqa: S608
        billing_limits.give_back(organization_id=connection.tenant.pk, counted="results", count=cursor.rowcount)
        cursor.execute(
            f"UPDATE labeling_annotation SET parent_prediction_id = NULL WHERE parent_prediction_id IN "  # noqa: S608
            f"(SELECT id FROM labeling_prediction WHERE task_id IN ({selected}))", params
        )
        cursor.execute(f"DELETE FROM labeling_prediction WHERE task_id IN ({selected})", params)  # noqa: S608
        cursor.execute(f"DELETE FROM labeling_task WHERE {task_filter}", params)  # noqa: S608
        return cursor.rowcount


@transaction.atomic
def tasks_delete(*, project: Project, task_ids: list[int] | None = None) -> int:
    """Delete some (or all) tasks of a project. Returns how many."""
    webhooks.emit(project_id=project.pk, action="TASKS_DELETED", payload_factory=lambda: webhooks.tasks_deleted_event(
        project, task_ids if task_ids is not None else list(project.tasks.values_list("pk", flat=True))))
    deleted = _delete_tasks_sql(project_id=project.pk, task_ids=task_ids)
    if deleted:
        realtime.tasks_deleted(project_id=project.pk, count=deleted)
    return deleted


@transaction.atomic
def project_delete(*, project: Project) -> None:
    """Delete a project and its data in bulk; stored export files go with it."""
    from labeling import uploads

    project_id = project.pk
    webhooks.emit(project_id=project_id, action="PROJECT_DELETED",
                  payload_factory=lambda: webhooks.project_deleted_event(project_id))
    _delete_tasks_sql(project_id=project.pk, task_ids=None)
    AnnotationHistory.objects.filter(project_id=project.pk).delete()
    uploads.file_uploads_delete(project=project)
    for snapshot in project.exports.prefetch_related("converted_formats"):
        export_snapshot_delete(snapshot=snapshot)
    project.delete()
    billing_limits.give_back(organization_id=connection.tenant.pk, counted="projects")


@transaction.atomic
def export_snapshot_delete(*, snapshot) -> None:
    """Delete a snapshot; its stored files (and its conversions') go once the deletion commits."""
    for stored in [snapshot.file, *(c.file for c in snapshot.converted_formats.all())]:
        if stored:
            transaction.on_commit(lambda name=stored.name, storage=stored.storage: storage.delete(name))
    snapshot.delete()


# --- annotations ---------------------------------------------------------------------------------

def _refresh_task_counters(task_ids: list[int]) -> None:
    """Recount annotation/prediction totals for some tasks in one statement."""
    if not task_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE labeling_task t SET
                total_annotations = c.total, cancelled_annotations = c.cancelled,
                total_predictions = c.predictions, is_labeled = c.total >= t.overlap, updated_at = now()
            FROM (
                SELECT t2.id,
                    (SELECT count(*) FROM labeling_annotation a WHERE a.task_id = t2.id AND NOT a.was_cancelled) total,
                    (SELECT count(*) FROM labeling_annotation a WHERE a.task_id = t2.id AND a.was_cancelled) cancelled,
                    (SELECT count(*) FROM labeling_prediction p WHERE p.task_id = t2.id) predictions
                FROM labeling_task t2 WHERE t2.id = ANY(%s)
            ) c WHERE t.id = c.id
            """,
            [list(task_ids)],
        )


def _validated_result(*, project: Project, result, was_cancelled: bool) -> list:
    if not isinstance(result, list):
        raise ValidationError({"result": "Must be a list of result items."})
    if not result and not was_cancelled and not project.enable_empty_annotation:
        raise ValidationError({"result": "Empty annotations are not allowed in this project."})
    try:
        validate_result(result=result, config=config_parse(project.label_config), require_required=not was_cancelled)
    except ResultError as exc:
        raise ValidationError({"result": [str(error) for error in getattr(exc, "errors", [exc])]}) from exc
    return result


@transaction.atomic
def annotation_create(*, task: Task, user, result, was_cancelled: bool = False, ground_truth: bool = False,
                      lead_time: float | None = None, parent_prediction_id: int | None = None,
                      parent_annotation_id: int | None = None, completed_by=None) -> Annotation:
    project = task.project
    ensure_not_paused(project_id=project.pk, user=user)
    result = _validated_result(project=project, result=result, was_cancelled=was_cancelled)
    billing_limits.take(organization_id=connection.tenant.pk, counted="results")
    annotation = Annotation.objects.create(
        task=task, project=project, result=result, completed_by=completed_by or user, updated_by=user,
        was_cancelled=was_cancelled, ground_truth=ground_truth, lead_time=lead_time,
        parent_prediction_id=parent_prediction_id, parent_annotation_id=parent_annotation_id,
        last_action="submitted" if not was_cancelled else "skipped",
    )
    _refresh_task_counters([task.pk])
    task_lock_release(task_id=task.pk, user=completed_by or user, reason="skipped" if was_cancelled else "submitted")
    _record_revision(annotation=annotation, user=user, draft_of_annotation=None)
    webhooks.emit(project_id=project.pk, action="ANNOTATION_CREATED",
                  payload_factory=lambda: webhooks.annotation_event(annotation))
    realtime.annotation_changed(annotation=annotation, action="created", user=completed_by or user)
    storage_hooks.annotations_saved(project_id=project.pk, annotation_ids=[annotation.pk])
    return annotation


def _record_revision(*, annotation: Annotation, user, draft_of_annotation: int | None) -> None:
    """History entry for a submit or update; the user's draft it came from is done with."""
    from labeling import collaboration

    collaboration.history_record(annotation=annotation, action=annotation.last_action, user=user)
    collaboration.drafts_discard(task_id=annotation.task_id, user=user, annotation_id=draft_of_annotation,
                                 submitted_as=annotation.pk)


@transaction.atomic
def annotation_update(*, annotation: Annotation, user, fields: dict) -> Annotation:
    if "result" in fields:
        annotation.result = _validated_result(
            project=annotation.project, result=fields["result"],
            was_cancelled=fields.get("was_cancelled", annotation.was_cancelled),
        )
    for name in ("was_cancelled", "ground_truth", "lead_time"):
        if name in fields:
            setattr(annotation, name, fields[name])
    annotation.updated_by = user
    annotation.last_action = "updated"
    annotation.save()
    _refresh_task_counters([annotation.task_id])
    _record_revision(annotation=annotation, user=user, draft_of_annotation=annotation.pk)
    webhooks.emit(project_id=annotation.project_id, action="ANNOTATION_UPDATED",
                  payload_factory=lambda: webhooks.annotation_event(annotation))
    realtime.annotation_changed(annotation=annotation, action="updated", user=user)
    storage_hooks.annotations_saved(project_id=annotation.project_id, annotation_ids=[annotation.pk])
    return annotation


@transaction.atomic
def annotation_delete(*, annotation: Annotation) -> None:
    webhooks.emit(project_id=annotation.project_id, action="ANNOTATIONS_DELETED",
                  payload_factory=lambda: webhooks.annotations_deleted_event(annotation.project, [annotation.pk]))
    task_id, annotation_id = annotation.task_id, annotation.pk
    annotation.delete()
    billing_limits.give_back(organization_id=connection.tenant.pk, counted="results")
    _refresh_task_counters([task_id])
    realtime.annotations_deleted(project_id=annotation.project_id, annotation_ids=[annotation_id], task_ids=[task_id])
    storage_hooks.annotations_deleted(project_id=annotation.project_id, annotation_ids=[annotation_id])


@transaction.atomic
def annotations_bulk_create(*, project: Project, user, task_ids: list[int], result, was_cancelled: bool = False,
                            lead_time: float | None = None) -> list[int]:
    ensure_not_paused(project_id=project.pk, user=user)
    result = _validated_result(project=project, result=result, was_cancelled=was_cancelled)
    existing = set(Task.objects.filter(project=project, pk__in=task_ids).values_list("pk", flat=True))
    unknown = [task_id for task_id in task_ids if task_id not in existing]
    if unknown:
        raise ValidationError({"tasks": f"Not tasks of this project: {unknown[:20]}"})
    billing_limits.take(organization_id=connection.tenant.pk, counted="results", count=len(task_ids))
    created = Annotation.objects.bulk_create([
        Annotation(task_id=task_id, project=project, result=result, completed_by=user, updated_by=user,
                   was_cancelled=was_cancelled, lead_time=lead_time, last_action="submitted")
        for task_id in task_ids
    ], batch_size=1000)
    _refresh_task_counters(list(existing))
    ids = [annotation.pk for annotation in created]
    webhooks.emit(project_id=project.pk, action="ANNOTATIONS_CREATED",
                  payload_factory=lambda: webhooks.annotations_created_event(project, ids))
    realtime.annotations_bulk_created(project_id=project.pk, annotation_ids=ids, task_ids=list(existing), user=user)
    storage_hooks.annotations_saved(project_id=project.pk, annotation_ids=ids)
    return ids


@transaction.atomic
def annotations_bulk_delete(*, project: Project, annotation_ids: list[int] | None = None,
                            task_ids: list[int] | None = None) -> int:
    queryset = Annotation.objects.filter(project=project)
    if annotation_ids is not None:
        queryset = queryset.filter(pk__in=annotation_ids)
    if task_ids is not None:
        queryset = queryset.filter(task_id__in=task_ids)
    affected = list(queryset.values_list("task_id", flat=True).distinct())
    webhooks.emit(project_id=project.pk, action="ANNOTATIONS_DELETED", payload_factory=lambda: (
        webhooks.annotations_deleted_event(project, list(queryset.values_list("pk", flat=True)))))
    deleted_ids = list(queryset.values_list("pk", flat=True))
    count, _ = queryset.delete()
    billing_limits.give_back(organization_id=connection.tenant.pk, counted="results", count=len(deleted_ids))
    _refresh_task_counters(affected)
    realtime.annotations_deleted(project_id=project.pk, annotation_ids=deleted_ids, task_ids=affected)
    storage_hooks.annotations_deleted(project_id=project.pk, annotation_ids=deleted_ids)
    return count


# --- predictions ---------------------------------------------------------------------------------

@transaction.atomic
def prediction_create(*, task: Task, result, score: float | None = None, model_version: str = "") -> Prediction:
    try:
        validate_result(result=result, config=config_parse(task.project.label_config), require_required=False)
    except ResultError as exc:
        raise ValidationError({"result": [str(error) for error in getattr(exc, "errors", [exc])]}) from exc
    prediction = Prediction.objects.create(
        task=task, project=task.project, result=result, score=score,
        model_version=model_version or task.project.model_version,
    )
    _refresh_task_counters([task.pk])
    return prediction


@transaction.atomic
def predictions_delete(*, project: Project, task_ids: list[int] | None = None,
                       prediction_ids: list[int] | None = None) -> int:
    """Delete a project's predictions (of some tasks, or some by id) in bulk; annotations made from
    them keep their result and lose the link. Returns how many."""
    condition = "project_id = %s"
    params: list = [project.pk]
    if task_ids is not None:
        condition, params = condition + " AND task_id = ANY(%s)", params + [list(task_ids)]
    if prediction_ids is not None:
        condition, params = condition + " AND id = ANY(%s)", params + [list(prediction_ids)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE labeling_annotation SET parent_prediction_id = NULL WHERE parent_prediction_id IN "
            f"(SELECT id FROM labeling_prediction WHERE {condition})", params,
        )
        cursor.execute(f"DELETE FROM labeling_prediction WHERE {condition} RETURNING task_id", params)
        affected = [row[0] for row in cursor.fetchall()]
    _refresh_task_counters(sorted(set(affected)))
    return len(affected)


# --- export snapshots ----------------------------------------------------------------------------

def _run_now_or_later(*, inline: bool, task, args: list) -> None:
    """Small jobs run in the request (the SDK polls at 1 s); large ones go to Celery after commit."""
    if inline:
        task.run(*args)  # the task body itself: no Celery signals touching the request's schema
    else:
        transaction.on_commit(lambda: task.delay(*args))


def export_snapshot_create(*, project: Project, user, title: str = "", task_filter_options: dict | None = None,
                           annotation_filter_options: dict | None = None,
                           serialization_options: dict | None = None):
    from django.conf import settings

    from labeling.models import ExportSnapshot
    from labeling.tasks import build_export_snapshot

    snapshot = ExportSnapshot.objects.create(
        project=project, created_by=user, title=title or "",
        task_filter_options=task_filter_options or {}, annotation_filter_options=annotation_filter_options or {},
        serialization_options=serialization_options or {},
    )
    inline = Task.objects.filter(project=project).count() <= settings.EXPORT_INLINE_MAX_TASKS
    _run_now_or_later(inline=inline, task=build_export_snapshot, args=[connection.tenant.pk, snapshot.pk])
    snapshot.refresh_from_db()
    return snapshot


def export_snapshot_convert(*, snapshot, export_type: str):
    from django.conf import settings

    from labeling.exports import check_export_type
    from labeling.models import ConvertedExport, ExportStatus
    from labeling.tasks import convert_export_snapshot

    export_type = check_export_type(export_type)
    if snapshot.status != ExportStatus.COMPLETED:
        raise ValidationError({"export_pk": f"Export {snapshot.pk} is {snapshot.status}; convert it once completed."})
    converted, created = ConvertedExport.objects.get_or_create(snapshot=snapshot, export_type=export_type)
    if created or converted.status == ExportStatus.FAILED:
        inline = (snapshot.counters or {}).get("task_number", 0) <= settings.EXPORT_INLINE_MAX_TASKS
        _run_now_or_later(inline=inline, task=convert_export_snapshot, args=[connection.tenant.pk, converted.pk])
        converted.refresh_from_db()
    return converted


# --- label stream --------------------------------------------------------------------------------

def _lock_ttl(project: Project) -> timedelta:
    from django.conf import settings

    return timedelta(seconds=project.custom_task_lock_ttl or settings.TASK_LOCK_TTL_SECONDS)


# A task still has room for this user: annotations (and counted skips) plus other users' live
# locks stay under its overlap.
_BELOW_OVERLAP_SQL = """t.total_annotations + {skips_count} + (
    SELECT count(*) FROM labeling_tasklock l
    WHERE l.task_id = t.id AND l.expires_at > now() AND l.user_id <> %(user)s) < t.overlap"""
_STREAM_CANDIDATE_SQL = """
SELECT t.id FROM labeling_task t
WHERE t.project_id = %(project)s AND NOT t.is_labeled AND NOT (t.id = ANY(%(tried)s))
  AND {below_overlap}
  AND NOT EXISTS (SELECT 1 FROM labeling_annotation a
                  WHERE a.task_id = t.id AND a.completed_by_id = %(user)s {own_skip_filter})
  AND {assignment_filter}
ORDER BY {order}
LIMIT 1
FOR UPDATE OF t SKIP LOCKED
"""
_STREAM_STILL_FREE_SQL = """
SELECT {below_overlap}
FROM labeling_task t WHERE t.id = %(task)s
"""


# Tasks assigned for annotation go to their assignees only, and before any unassigned task.
_ASSIGNED_TO_USER_SQL = """EXISTS (SELECT 1 FROM labeling_taskassignment x
    WHERE x.task_id = t.id AND x.type = 'AN' AND x.assignee_id = %(user)s)"""
_UNASSIGNED_SQL = """NOT EXISTS (SELECT 1 FROM labeling_taskassignment x WHERE x.task_id = t.id AND x.type = 'AN')"""


def _stream_sql(template: str, project: Project, *, assigned: bool = False) -> str:
    from labeling.models import SkipQueue

    skips_count = "t.cancelled_annotations" if project.skip_queue == SkipQueue.IGNORE_SKIPPED else "0"
    # REQUEUE_FOR_ME: a task this user skipped may come back to them (after the others).
    own_skip_filter = "AND NOT a.was_cancelled" if project.skip_queue == SkipQueue.REQUEUE_FOR_ME else ""
    if project.skip_queue == SkipQueue.REQUEUE_FOR_ME:
        order = ("(EXISTS (SELECT 1 FROM labeling_annotation s WHERE s.task_id = t.id "
                 "AND s.completed_by_id = %(user)s AND s.was_cancelled)), t.id")
    else:
        order = "t.id"
    if project.sampling == "Uniform sampling":
        order = "random()"
    below_overlap = _BELOW_OVERLAP_SQL.format(skips_count=skips_count)
    return template.format(below_overlap=below_overlap, own_skip_filter=own_skip_filter, order=order,
                           assignment_filter=_ASSIGNED_TO_USER_SQL if assigned else _UNASSIGNED_SQL)


def next_task_for(*, project: Project, user) -> Task | None:
    """The label stream: the task this user should label next, reserved for them for a TTL.

    A task is never held (annotated or locked) by more users than its overlap allows, under any
    concurrency: candidates are row-locked with FOR UPDATE SKIP LOCKED, and the chosen one is
    re-checked by a fresh statement (which sees every lock committed before we got the row).
    """
    from labeling.models import TaskLock

    ensure_not_paused(project_id=project.pk, user=user)
    now = timezone.now()
    held = (TaskLock.objects.filter(task__project=project, user=user, expires_at__gt=now)
            .exclude(task__annotations__completed_by=user).order_by("id").first())
    if held is not None:
        until = now + _lock_ttl(project)
        TaskLock.objects.filter(pk=held.pk).update(expires_at=until)
        realtime.lock_extended(task_id=held.task_id, user_id=user.pk, until=until)
        return Task.objects.get(pk=held.task_id)
    has_assignments = TaskAssignment.objects.filter(
        task__project=project, assignee=user, type=TaskAssignment.Type.ANNOTATE).exists()
    for assigned in (True, False) if has_assignments else (False,):
        task = _reserve_next(project=project, user=user, now=now, assigned=assigned)
        if task is not None:
            return task
    return None


def _reserve_next(*, project: Project, user, now, assigned: bool) -> Task | None:
    from labeling.models import TaskLock

    tried: list[int] = []
    params = {"project": project.pk, "user": user.pk, "tried": tried}
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_stream_sql(_STREAM_CANDIDATE_SQL, project, assigned=assigned), params)
            row = cursor.fetchone()
            if row is None:
                return None
            task_id = row[0]
            cursor.execute(_stream_sql(_STREAM_STILL_FREE_SQL, project), {**params, "task": task_id})
            if cursor.fetchone()[0]:
                until = now + _lock_ttl(project)
                TaskLock.objects.update_or_create(task_id=task_id, user=user, defaults={"expires_at": until})
                realtime.lock_taken(project_id=project.pk, task_id=task_id, user=user, until=until)
                return Task.objects.get(pk=task_id)
        tried.append(task_id)


# Take or extend a lock in one statement; answers the expiry it had before (NULL: there was none).
_LOCK_UPSERT_SQL = """
WITH previous AS (SELECT expires_at FROM labeling_tasklock WHERE task_id = %(task)s AND user_id = %(user)s)
INSERT INTO labeling_tasklock (task_id, user_id, expires_at, created_at) VALUES (%(task)s, %(user)s, %(until)s, now())
ON CONFLICT (task_id, user_id) DO UPDATE SET expires_at = EXCLUDED.expires_at
RETURNING (SELECT expires_at FROM previous)
"""


def task_lock_take(*, task: Task, user) -> datetime | None:
    """Take (or extend) this user's lock on a task they opened (the realtime `task.open`), by the
    label stream's rule: only while annotations and other users' live locks stay under its overlap.
    Returns when the lock ends, or None when the task is already held up to its overlap.

    The task row is locked first, as the label stream locks its candidate, so the two never both
    hand out the last place on a task."""
    project = task.project
    ensure_not_paused(project_id=project.pk, user=user)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT id FROM labeling_task WHERE id = %s FOR UPDATE", [task.pk])
        cursor.execute(_stream_sql(_STREAM_STILL_FREE_SQL, project), {"task": task.pk, "user": user.pk})
        if not cursor.fetchone()[0]:
            return None
        now = timezone.now()
        until = now + _lock_ttl(project)
        cursor.execute(_LOCK_UPSERT_SQL, {"task": task.pk, "user": user.pk, "until": until})
        previous = cursor.fetchone()[0]
        if previous is None or previous <= now:
            realtime.lock_taken(project_id=project.pk, task_id=task.pk, user=user, until=until)
        else:
            realtime.lock_extended(task_id=task.pk, user_id=user.pk, until=until)
    return until


def task_lock_extend(*, task: Task, user) -> datetime | None:
    """The realtime heartbeat: push a live lock of this user's on by the project's TTL. None when
    they hold none (it ended or expired)."""
    until = timezone.now() + _lock_ttl(task.project)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE labeling_tasklock SET expires_at = %s WHERE task_id = %s AND user_id = %s "
                       "AND expires_at > now()", [until, task.pk, user.pk])
        if cursor.rowcount == 0:
            return None
    realtime.lock_extended(task_id=task.pk, user_id=user.pk, until=until)
    return until


def task_lock_release(*, task_id: int, user, reason: str = "released") -> bool:
    """End this user's lock on the task; the project hears `task.unlocked` with `reason` (submitted,
    skipped, closed, disconnected, released) after commit. Returns whether there was one."""
    # One statement (the ORM's delete selects first); nothing hangs off a lock.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM labeling_tasklock l USING labeling_task t WHERE t.id = l.task_id "
                       "AND l.task_id = %s AND l.user_id = %s RETURNING t.project_id", [task_id, user.pk])
        row = cursor.fetchone()
    if row is None:
        return False
    realtime.lock_released(project_id=row[0], task_id=task_id, user=user, reason=reason)
    return True


# --- large imports -------------------------------------------------------------------------------

def import_job_create(*, project: Project, tasks: list[dict], user, found_formats: dict, data_columns: list[str],
                      return_task_ids: bool = False):
    """Queue a large import: the parsed tasks go to media storage, a Celery job inserts them."""
    from django.core.files.base import ContentFile

    from labeling.models import ImportJob
    from labeling.tasks import run_import_job

    job = ImportJob.objects.create(
        project=project, created_by=user, found_formats=found_formats, data_columns=data_columns,
        return_task_ids=return_task_ids,
    )
    job.payload.save(f"{connection.schema_name}/{project.pk}/import-{job.pk}.json",
                     ContentFile(json.dumps(tasks).encode()), save=True)
    organization_id = connection.tenant.pk
    transaction.on_commit(lambda: run_import_job.delay(organization_id, job.pk))
    return job


def import_job_run(*, job) -> None:
    """Run a queued import (in its organization's schema). All or nothing; the outcome is recorded."""
    from labeling.models import ImportJob

    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.IN_PROGRESS)
    with job.payload.open("rb") as handle:
        tasks = json.load(handle)
    progress = {"project_id": job.project_id, "kind": "import", "job_id": job.pk, "total": len(tasks)}
    realtime.job_progress(**progress, status=ImportJob.Status.IN_PROGRESS, done=0)
    try:
        result = tasks_import(project=job.project, tasks=tasks, user=job.created_by, import_job_id=job.pk)
    except ValidationError as exc:
        message = "; ".join(f"{field}: {' '.join(map(str, errors))}" for field, errors in exc.message_dict.items())
        ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.FAILED, error=message,
                                                  finished_at=timezone.now(), payload="")
        realtime.job_progress(**progress, status=ImportJob.Status.FAILED, done=0)
        return
    finally:
        job.payload.delete(save=False)
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJob.Status.COMPLETED, task_count=result.task_count, annotation_count=result.annotation_count,
        prediction_count=result.prediction_count, duration=result.duration, finished_at=timezone.now(),
        task_ids=result.task_ids if job.return_task_ids else [], payload="",
    )
    realtime.job_progress(**progress, status=ImportJob.Status.COMPLETED, done=result.task_count)
