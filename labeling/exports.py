"""Streaming exports: JSON is built by PostgreSQL and streamed from a server-side cursor, so memory
stays constant whatever the project's size.

A streamed body is produced after the request's middleware has reset the schema to public, so the
generator re-enters the organization's schema itself (ARCHITECTURE.md: every database call outside
the request enters tenant_context).
"""

import csv
import hashlib
import io
import json
import tempfile
from functools import partial

from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import Q
from django.http import StreamingHttpResponse
from django.utils import timezone
from django_tenants.utils import tenant_context

from labeling import export_formats
from labeling.models import Project
from labeling.selectors import task_json_expression
from realtime import events as realtime

FORMATS = [
    {"name": "JSON", "title": "JSON", "description": "List of tasks with their annotations and predictions."},
    {"name": "JSON_MIN", "title": "JSON-MIN", "description": "One flat record per annotation: data and results."},
    {"name": "CSV", "title": "CSV", "description": "JSON-MIN as comma separated values."},
    {"name": "TSV", "title": "TSV", "description": "JSON-MIN as tab separated values."},
    *export_formats.FORMATS,
]
FETCH_SIZE = 1000
# Rows between two job.progress events of a snapshot, at least.
PROGRESS_MIN_STEP = 1000
# JSON_MIN keeps the meaningful part of a result value: labels for `labels`, text for `textarea`...
VALUE_KEY_OF_TYPE = {"textarea": "text"}

def _task_rows(*, project: Project, download_all_tasks: bool, task_ids: list[int] | None):
    """Yield each task's JSON text from a server-side cursor (in the caller's tenant context)."""
    where, params = "", [project.pk]
    if not download_all_tasks:
        where += " AND (t.total_annotations > 0 OR t.cancelled_annotations > 0)"
    if task_ids is not None:
        where += " AND t.id = ANY(%s)"
        params.append(task_ids)
    cursor = connection.chunked_cursor()
    sql = f"SELECT {task_json_expression()}::text FROM labeling_task t WHERE t.project_id = %s {where} ORDER BY t.id"
    try:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_SIZE):
            for (row,) in rows:
                yield row
    finally:
        cursor.close()


def _in_tenant(organization, generator_factory):
    with tenant_context(organization):
        yield from generator_factory()


def _json_stream(rows):
    """A JSON array with one task per line (snapshots are read back line by line)."""
    yield "["
    first = True
    for row in rows():
        yield ("\n" if first else ",\n") + row
        first = False
    yield "\n]\n"


def _min_records(rows):
    """JSON_MIN: one record per (non-cancelled) annotation, results flattened by control name."""
    for row in rows():
        task = json.loads(row)
        for annotation in task["annotations"] or [None]:
            record = {"id": task["id"], **task["data"]}
            if annotation is not None:
                if annotation["was_cancelled"]:
                    continue
                for item in annotation["result"]:
                    value = item.get("value", {})
                    key = VALUE_KEY_OF_TYPE.get(item.get("type"), item.get("type"))
                    flat = value.get(key, value) if isinstance(value, dict) else value
                    record.setdefault(item.get("from_name", "result"), []).append(flat)
                record.update(annotation_id=annotation["id"], annotator=annotation["completed_by"],
                              created_at=annotation["created_at"], updated_at=annotation["updated_at"],
                              lead_time=annotation["lead_time"])
            yield record


def _json_min_stream(rows):
    yield "["
    first = True
    for record in _min_records(rows):
        yield ("" if first else ",") + json.dumps(record, ensure_ascii=False)
        first = False
    yield "]"


def _table_stream(rows, *, delimiter: str):
    # Columns are known only after reading; two passes keep memory constant.
    columns: list[str] = []
    for record in _min_records(rows):
        for key in record:
            if key not in columns:
                columns.append(key)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(columns)
    for record in _min_records(rows):
        writer.writerow([
            json.dumps(record[c], ensure_ascii=False) if isinstance(record.get(c), list | dict) else record.get(c, "")
            for c in columns
        ])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _of_rows(render):
    """A renderer that needs nothing of the project but its rows."""
    return lambda rows, project: render(rows)


def _zip_renderer(export_type: str):
    def render(rows, project: Project):
        from labeling.services import config_parse

        return export_formats.zip_stream(rows, export_type=export_type, config=config_parse(project.label_config))

    return render


# name -> (render(rows, project) yielding str or bytes chunks, content type, file extension)
RENDERERS = {
    "JSON": (_of_rows(_json_stream), "application/json", "json"),
    "JSON_MIN": (_of_rows(_json_min_stream), "application/json", "json"),
    "CSV": (_of_rows(partial(_table_stream, delimiter=",")), "text/csv", "csv"),
    "TSV": (_of_rows(partial(_table_stream, delimiter="\t")), "text/tab-separated-values", "tsv"),
    **{name: (_zip_renderer(name), "application/zip", "zip") for name in export_formats.WRITERS},
}


def formats() -> list[dict]:
    return FORMATS


def check_export_type(export_type: str) -> str:
    export_type = (export_type or "JSON").upper()
    if export_type not in RENDERERS:
        raise ValidationError({"exportType": f"Unknown export type {export_type!r}; "
                                             f"choose one of {[f['name'] for f in FORMATS]}."})
    return export_type


def file_name(*, project: Project, export_type: str, suffix: str = "") -> str:
    extension = RENDERERS[export_type][2]
    return f"project-{project.pk}-at-{timezone.now():%Y-%m-%d-%H-%M}{suffix}.{extension}"


def export_response(*, project: Project, export_type: str, download_all_tasks: bool,
                    task_ids: list[int] | None) -> StreamingHttpResponse:
    export_type = check_export_type(export_type)
    render, content_type, _ = RENDERERS[export_type]

    def rows():
        return _task_rows(project=project, download_all_tasks=download_all_tasks, task_ids=task_ids)

    response = StreamingHttpResponse(_in_tenant(connection.tenant, lambda: render(rows, project)),
                                     content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{file_name(project=project, export_type=export_type)}"'
    return response


# --- snapshots -----------------------------------------------------------------------------------

def _write_to_storage(*, chunks, name: str) -> tuple[str, str]:
    """Write text or bytes chunks to media storage through a disk-backed temp file; returns (path, md5)."""
    digest = hashlib.md5(usedforsecurity=False)
    with tempfile.TemporaryFile() as handle:
        for chunk in chunks:
            data = chunk.encode() if isinstance(chunk, str) else chunk
            digest.update(data)
            handle.write(data)
        handle.seek(0)
        stored = default_storage.save(name, File(handle))
    return stored, digest.hexdigest()


def snapshot_rows(snapshot):
    """Task JSON texts of a stored snapshot, one per line as `_json_stream` wrote them."""
    with default_storage.open(snapshot.file.name, "rb") as handle:
        for raw in handle:
            line = raw.decode().strip().rstrip(",")
            if line and line not in ("[", "]"):
                yield line


def build_snapshot(*, snapshot) -> None:
    """Freeze the project's tasks as JSON in media storage. Runs in the snapshot's tenant context."""
    from labeling.models import ExportStatus

    options = snapshot.task_filter_options or {}
    download_all = not (options.get("only_with_annotations") or options.get("annotated") == "only")
    schema = connection.schema_name

    def rows():
        return _task_rows(project=snapshot.project, download_all_tasks=download_all, task_ids=None)

    counted = {"task_number": 0}
    tasks = snapshot.project.tasks.all()
    if not download_all:
        tasks = tasks.filter(Q(total_annotations__gt=0) | Q(cancelled_annotations__gt=0))
    progress = {"project_id": snapshot.project_id, "kind": "export", "job_id": snapshot.pk, "total": tasks.count()}
    # About ten progress events, whatever the size.
    step = max(PROGRESS_MIN_STEP, progress["total"] // 10)

    def counting():
        for row in rows():
            counted["task_number"] += 1
            if counted["task_number"] % step == 0:
                realtime.job_progress(**progress, status=ExportStatus.IN_PROGRESS, done=counted["task_number"])
            yield row

    type(snapshot).objects.filter(pk=snapshot.pk).update(status=ExportStatus.IN_PROGRESS)
    realtime.job_progress(**progress, status=ExportStatus.IN_PROGRESS, done=0)
    name = file_name(project=snapshot.project, export_type="JSON")
    try:
        path, md5 = _write_to_storage(
            chunks=_json_stream(counting), name=f"exports/{schema}/{snapshot.project_id}/{snapshot.pk}-{name}"
        )
    except Exception as exc:
        type(snapshot).objects.filter(pk=snapshot.pk).update(
            status=ExportStatus.FAILED, traceback=repr(exc), finished_at=timezone.now()
        )
        realtime.job_progress(**progress, status=ExportStatus.FAILED, done=counted["task_number"])
        raise
    snapshot.file.name, snapshot.md5, snapshot.counters = path, md5, counted
    snapshot.status, snapshot.finished_at = ExportStatus.COMPLETED, timezone.now()
    snapshot.save(update_fields=["file", "md5", "counters", "status", "finished_at"])
    realtime.job_progress(**{**progress, "total": counted["task_number"]}, status=ExportStatus.COMPLETED,
                          done=counted["task_number"])


def convert_snapshot(*, converted) -> None:
    """Render a completed snapshot in another format (from the frozen file, not live data)."""
    from labeling.models import ExportStatus

    snapshot = converted.snapshot
    render = RENDERERS[converted.export_type][0]
    type(converted).objects.filter(pk=converted.pk).update(status=ExportStatus.IN_PROGRESS)
    try:
        path, _ = _write_to_storage(
            chunks=render(lambda: snapshot_rows(snapshot), snapshot.project),
            name=f"exports/{connection.schema_name}/{snapshot.project_id}/{snapshot.pk}-"
                 f"{file_name(project=snapshot.project, export_type=converted.export_type)}",
        )
    except Exception as exc:
        type(converted).objects.filter(pk=converted.pk).update(
            status=ExportStatus.FAILED, traceback=repr(exc), finished_at=timezone.now()
        )
        raise
    converted.file.name, converted.status, converted.finished_at = path, ExportStatus.COMPLETED, timezone.now()
    converted.traceback = ""  # a retry after a failure succeeded
    converted.save(update_fields=["file", "status", "finished_at", "traceback"])
