"""Writes of the storages app: connections (create, change, validate, delete) and their sync jobs.

The API's fields of a storage split three ways (storages.models): the common columns, the
provider's options (JSON) and its secrets (encrypted JSON, write-only: an update that leaves a
secret out keeps it). Every create and change validates the connection with the provider first,
so a storage that cannot be listed is never saved; the error names the field at fault.

Import sync (Celery, storages.tasks.sync_storage): list the keys under the prefix, keep those the
regex matches and no link has yet, and in batches make tasks (one per object with
`use_blob_urls`, else one per JSON file, with its annotations and predictions) through
labeling.services.tasks_import, with the links, in one transaction per batch under a lock of the
storage row (two syncs at once never import a key twice). Export: each annotation is written as
JSON to `<prefix>/<annotation id>` on submit and update (storages.tasks.export_annotations), every
annotation by the export storage's sync, and deleted with the annotation when
`can_delete_objects` is set.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from billing import limits as billing_limits
from labeling import services as labeling_services
from labeling.models import Annotation, Project
from platform_core import crypto
from realtime import events as realtime
from storages.models import ExportLink, ImportLink, Storage, StorageStatus
from storages.providers import Provider, StorageError, provider_class, provider_for

logger = logging.getLogger(__name__)

COMMON_FIELDS = ("title", "description", "prefix", "regex_filter", "use_blob_urls", "recursive_scan", "presign",
                 "presign_ttl", "can_delete_objects", "synchronizable")
SYNC_BATCH = 1000
# A sync announces its progress at most this often (job.progress events).
PROGRESS_EVERY_SECONDS = 1.0
# JSON task files bigger than this are refused (one task per file).
MAX_TASK_FILE_BYTES = 50 * 1024 * 1024


# --- fields ----------------------------------------------------------------------------------------

def secrets_of(storage: Storage) -> dict:
    return json.loads(crypto.decrypt(storage.secrets_encrypted) or "{}")


def provider_of(storage: Storage) -> Provider:
    return provider_for(kind=storage.kind, options={**storage.options, "prefix": storage.prefix},
                        secrets=secrets_of(storage))


def _split(*, kind: str, fields: dict) -> tuple[dict, dict, dict]:
    """(common columns, provider options, secrets) of the API's fields; unknown ones are refused."""
    cls = provider_class(kind)
    common, options, secrets = {}, {}, {}
    for name, value in fields.items():
        if name in COMMON_FIELDS:
            common[name] = value
        elif name in cls.option_fields:
            options[name] = value
        elif name in cls.secret_fields:
            secrets[name] = value
        else:
            raise ValidationError({name: f"Not a field of {kind} storages."})
    return common, options, secrets


def _check_common(common: dict) -> None:
    if common.get("regex_filter"):
        try:
            re.compile(common["regex_filter"])
        except re.error as exc:
            raise ValidationError({"regex_filter": f"Not a valid regular expression: {exc}."}) from None
    ttl = common.get("presign_ttl")
    if ttl is not None and not 1 <= ttl <= 7 * 24 * 60:
        raise ValidationError({"presign_ttl": "Give minutes between 1 and 10080 (a week)."})


def _validated(*, kind: str, prefix: str, options: dict, secrets: dict) -> None:
    provider = provider_for(kind=kind, options={**options, "prefix": prefix}, secrets=secrets)
    try:
        provider.validate()
    except StorageError as exc:
        raise ValidationError({exc.field or "non_field_errors": exc.detail}) from None


def connection_validate(*, kind: str, fields: dict, storage: Storage | None = None) -> None:
    """/validate: the connection these fields describe (over an existing storage's) works."""
    common, options, secrets = _split(kind=kind, fields=fields)
    _check_common(common)
    if storage is not None:
        options = {**storage.options, **options}
        secrets = {**secrets_of(storage), **secrets}
        prefix = common.get("prefix", storage.prefix)
    else:
        prefix = common.get("prefix", "")
    _validated(kind=kind, prefix=prefix or "", options=options, secrets=secrets)


@transaction.atomic
def storage_create(*, project: Project, direction: str, kind: str, fields: dict) -> Storage:
    common, options, secrets = _split(kind=kind, fields=fields)
    _check_common(common)
    _validated(kind=kind, prefix=common.get("prefix") or "", options=options, secrets=secrets)
    storage = Storage(project=project, direction=direction, kind=kind, options=options,
                      secrets_encrypted=crypto.encrypt(json.dumps(secrets)) if secrets else "")
    for name, value in common.items():
        setattr(storage, name, "" if value is None and name in ("title", "description", "prefix", "regex_filter")
                else value)
    billing_limits.take(organization_id=connection.tenant.pk, counted=f"{direction}_storages")
    storage.save()
    return storage


@transaction.atomic
def storage_update(*, storage: Storage, fields: dict) -> Storage:
    common, options, secrets = _split(kind=storage.kind, fields=fields)
    _check_common(common)
    options = {**storage.options, **options}
    # A secret left out is kept; one given empty is removed.
    merged_secrets = {name: value for name, value in {**secrets_of(storage), **secrets}.items() if value}
    prefix = common.get("prefix", storage.prefix) or ""
    _validated(kind=storage.kind, prefix=prefix, options=options, secrets=merged_secrets)
    for name, value in common.items():
        setattr(storage, name, "" if value is None and name in ("title", "description", "prefix", "regex_filter")
                else value)
    storage.options = options
    storage.secrets_encrypted = crypto.encrypt(json.dumps(merged_secrets)) if merged_secrets else ""
    storage.save()
    return storage


@transaction.atomic
def storage_delete(*, storage: Storage) -> None:
    """The connection and its links go; the tasks it imported stay (as in Label Studio)."""
    storage.delete()
    billing_limits.give_back(organization_id=connection.tenant.pk, counted=f"{storage.direction}_storages")


# --- sync jobs -------------------------------------------------------------------------------------

def sync_queue(*, storage: Storage, organization) -> Storage:
    """Queue a sync of the storage (import or export) after commit; the storage shows `queued`."""
    from storages.tasks import sync_storage

    job_id = str(uuid.uuid4())
    Storage.objects.filter(pk=storage.pk).update(status=StorageStatus.QUEUED, traceback="", last_sync_job=job_id)
    storage.refresh_from_db()
    transaction.on_commit(lambda: sync_storage.apply_async((organization.pk, storage.pk), task_id=job_id))
    return storage


class _Progress:
    def __init__(self, storage: Storage):
        self.storage, self.done, self.last = storage, 0, 0.0

    def tick(self, *, added: int, status: str = StorageStatus.IN_PROGRESS, force: bool = False) -> None:
        self.done += added
        now = time.monotonic()
        if force or now - self.last >= PROGRESS_EVERY_SECONDS:
            self.last = now
            # Not in a transaction here: published at once.
            realtime.job_progress(project_id=self.storage.project_id, kind="storage_sync", job_id=self.storage.pk,
                                  status=status, done=self.done, total=None,
                                  percent=100.0 if status == StorageStatus.COMPLETED else None)


def sync_run(*, storage: Storage) -> None:
    """Run a sync now (the Celery job's body): status, counts and the error on the storage row."""
    Storage.objects.filter(pk=storage.pk).update(status=StorageStatus.IN_PROGRESS, traceback="")
    progress = _Progress(storage)
    progress.tick(added=0, force=True)
    started = time.monotonic()
    try:
        if storage.direction == Storage.Direction.IMPORT:
            count, meta = _import_sync(storage=storage, progress=progress)
        else:
            count, meta = _export_sync(storage=storage, progress=progress)
    except (StorageError, ValidationError) as exc:
        _sync_failed(storage=storage, progress=progress, detail=_error_text(exc))
        return
    except Exception as exc:  # noqa: BLE001 - the row must say the sync failed, whatever failed
        logger.exception("storages: sync of storage %s failed", storage.pk)
        _sync_failed(storage=storage, progress=progress, detail=f"{type(exc).__name__}: {exc}")
        return
    meta = {**meta, "duration": round(time.monotonic() - started, 3)}
    Storage.objects.filter(pk=storage.pk).update(
        status=StorageStatus.COMPLETED, last_sync=timezone.now(), last_sync_count=count, meta=meta)
    progress.tick(added=0, status=StorageStatus.COMPLETED, force=True)


def _error_text(exc: Exception) -> str:
    if isinstance(exc, StorageError):
        return exc.detail
    if isinstance(exc, ValidationError) and hasattr(exc, "message_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items())
    return " ".join(getattr(exc, "messages", [str(exc)]))


def _sync_failed(*, storage: Storage, progress: _Progress, detail: str) -> None:
    Storage.objects.filter(pk=storage.pk).update(status=StorageStatus.FAILED, traceback=detail,
                                                 last_sync=timezone.now())
    progress.tick(added=0, status=StorageStatus.FAILED, force=True)


def _in_parallel(function, items: list, *, workers: int) -> list:
    """`function` over `items` on `workers` threads, results in order: one at a time, a sync of
    10,000 cloud files would wait for 10,000 round trips. The provider clients are thread-safe once
    built, so the first call runs alone (it builds the client); the first error stops the batch.
    No database work in `function`."""
    if len(items) <= 1 or workers <= 1:
        return [function(item) for item in items]
    first = function(items[0])
    with ThreadPoolExecutor(max_workers=min(workers, len(items) - 1)) as pool:
        return [first, *pool.map(function, items[1:])]


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _matching_keys(*, storage: Storage, provider: Provider) -> Iterator[str]:
    pattern = re.compile(storage.regex_filter) if storage.regex_filter else None
    for key in provider.keys(prefix=storage.prefix or "", recursive=storage.recursive_scan):
        if key.endswith("/"):
            continue  # a "folder" placeholder object
        if pattern is None or pattern.search(key):
            yield key


def blob_data_key(*, project: Project) -> str:
    """The task-data key a file becomes when each object is a task: the first object tag's."""
    config = labeling_services.config_parse(project.label_config)
    for tag in config.objects.values():
        return tag.value
    return "image"


def _task_from_file(*, key: str, content: bytes) -> list[dict]:
    if len(content) > MAX_TASK_FILE_BYTES:
        raise StorageError(f"{key}: a task file is at most {MAX_TASK_FILE_BYTES // (1024 * 1024)} MB.")
    try:
        parsed = json.loads(content)
    except ValueError as exc:
        raise StorageError(f"{key} is not JSON ({exc.msg}); turn on use_blob_urls to make tasks of files.") from None
    items = parsed if isinstance(parsed, list) else [parsed]
    tasks = []
    for item in items:
        if not isinstance(item, dict):
            raise StorageError(f"{key}: a task is a JSON object.")
        task = item if "data" in item else {"data": item}
        if not isinstance(task["data"], dict):
            raise StorageError(f"{key}: a task's data is a JSON object.")
        tasks.append(task)
    return tasks


def _import_sync(*, storage: Storage, progress: _Progress) -> tuple[int, dict]:
    project = Project.objects.get(pk=storage.project_id)
    provider = provider_of(storage)
    data_key = blob_data_key(project=project) if storage.use_blob_urls else None
    added = seen = 0
    for batch in _batches(_matching_keys(storage=storage, provider=provider), SYNC_BATCH):
        seen += len(batch)
        known = set(ImportLink.objects.filter(storage=storage, key__in=batch).values_list("key", flat=True))
        fresh = [key for key in batch if key not in known]
        if not fresh:
            continue
        # Reading files happens outside the transaction: it may take a while.
        made = ([(key, [{"data": {data_key: provider.uri(key)}}]) for key in fresh] if data_key is not None
                else list(zip(fresh, _in_parallel(lambda key: _task_from_file(key=key, content=provider.read(key)),
                                                  fresh, workers=provider.concurrent_calls), strict=True)))
        with transaction.atomic():
            Storage.objects.select_for_update().filter(pk=storage.pk).first()
            # Again under the lock: another sync of this storage may have taken some meanwhile.
            known = set(ImportLink.objects.filter(storage=storage, key__in=fresh).values_list("key", flat=True))
            made = [(key, tasks) for key, tasks in made if key not in known]
            if not made:
                continue
            tasks = [task for _, file_tasks in made for task in file_tasks]
            result = labeling_services.tasks_import(project=project, tasks=tasks, user=None)
            links, task_ids = [], iter(result.task_ids)
            for key, file_tasks in made:
                for _ in file_tasks:
                    links.append(ImportLink(storage=storage, task_id=next(task_ids), key=key))
            ImportLink.objects.bulk_create(links, batch_size=SYNC_BATCH)
        added += result.task_count
        progress.tick(added=result.task_count)
    return added, {"objects_listed": seen, "tasks_added": added}


# --- export ----------------------------------------------------------------------------------------

def export_key(*, storage: Storage, annotation_id: int) -> str:
    if storage.kind == "redis":  # Redis names its key prefix `path`, and it ends with its own separator
        return f"{storage.options.get('path') or ''}{annotation_id}"
    prefix = (storage.prefix or "").strip("/")
    return f"{prefix}/{annotation_id}" if prefix else str(annotation_id)


def annotation_document(annotation: Annotation) -> bytes:
    """What an export storage holds for an annotation: the annotation, with its task (LS's shape)."""
    from labeling.serializers import annotation_payload

    task = annotation.task
    document = {**annotation_payload(annotation),
                "task": {"id": task.pk, "data": task.data, "meta": task.meta, "project": task.project_id,
                         "created_at": task.created_at, "updated_at": task.updated_at}}
    return json.dumps(document, default=str, ensure_ascii=False).encode()


def _write_annotations(*, storage: Storage, provider: Provider, annotations: list[Annotation]) -> int:
    documents = [(export_key(storage=storage, annotation_id=a.pk), annotation_document(a)) for a in annotations]
    _in_parallel(lambda item: provider.write(item[0], item[1]), documents, workers=provider.concurrent_calls)
    with transaction.atomic():
        existing = set(ExportLink.objects.filter(storage=storage, annotation_id__in=[a.pk for a in annotations])
                       .values_list("annotation_id", flat=True))
        ExportLink.objects.bulk_create(
            [ExportLink(storage=storage, annotation_id=a.pk, key=export_key(storage=storage, annotation_id=a.pk))
             for a in annotations if a.pk not in existing], ignore_conflicts=True)
        ExportLink.objects.filter(storage=storage, annotation_id__in=existing).update(updated_at=timezone.now())
    return len(annotations)


def _export_sync(*, storage: Storage, progress: _Progress) -> tuple[int, dict]:
    provider = provider_of(storage)
    written = 0
    annotations = (Annotation.objects.filter(project_id=storage.project_id).select_related("task")
                   .order_by("pk").iterator(chunk_size=SYNC_BATCH))
    for batch in _batches(annotations, SYNC_BATCH):
        written += _write_annotations(storage=storage, provider=provider, annotations=batch)
        progress.tick(added=len(batch))
    removed = _forget_gone(storage=storage, provider=provider)
    return written, {"annotations_written": written, "objects_deleted": removed}


def _forget_gone(*, storage: Storage, provider: Provider) -> int:
    """Links of annotations deleted here (a task deleted with them, say): their objects go when the
    storage may delete, and the links go either way."""
    gone = ExportLink.objects.filter(storage=storage).exclude(
        annotation_id__in=Annotation.objects.filter(project_id=storage.project_id).values("pk"))
    removed = 0
    for link in gone.iterator():
        if storage.can_delete_objects:
            provider.delete(link.key)
            removed += 1
    gone.delete()
    return removed


def export_storages_of(*, project_id: int):
    return Storage.objects.filter(project_id=project_id, direction=Storage.Direction.EXPORT)


def annotations_export(*, project_id: int, annotation_ids: list[int]) -> int:
    """Write these annotations to every export storage of the project (the Celery job's body)."""
    annotations = list(Annotation.objects.filter(project_id=project_id, pk__in=annotation_ids).select_related("task"))
    written = 0
    for storage in export_storages_of(project_id=project_id):
        try:
            written += _write_annotations(storage=storage, provider=provider_of(storage), annotations=annotations)
        except StorageError as exc:
            Storage.objects.filter(pk=storage.pk).update(traceback=f"Export of annotations failed: {exc.detail}")
    return written


def annotations_unexport(*, project_id: int, annotation_ids: list[int]) -> int:
    """Annotations deleted here: their objects go from the export storages that may delete."""
    removed = 0
    for storage in export_storages_of(project_id=project_id):
        links = ExportLink.objects.filter(storage=storage, annotation_id__in=annotation_ids)
        if storage.can_delete_objects:
            provider = provider_of(storage)
            for link in links:
                try:
                    provider.delete(link.key)
                    removed += 1
                except StorageError as exc:
                    Storage.objects.filter(pk=storage.pk).update(traceback=f"Deleting {link.key} failed: {exc.detail}")
        links.delete()
    return removed
