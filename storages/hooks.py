"""What labeling tells the storages app: annotations saved or deleted in a project. Called inside
the labeling transaction; the writes to the cloud happen in Celery after commit, never in the
request, and only when the project has an export storage."""

from django.db import connection, transaction


def _queue(task_name: str, *, project_id: int, annotation_ids: list[int]) -> None:
    from storages.models import Storage

    if not annotation_ids or not Storage.objects.filter(project_id=project_id,
                                                        direction=Storage.Direction.EXPORT).exists():
        return
    organization_id = connection.tenant.pk
    ids = list(annotation_ids)

    def send():
        from storages import tasks

        getattr(tasks, task_name).delay(organization_id, project_id, ids)

    transaction.on_commit(send, robust=True)


def annotations_saved(*, project_id: int, annotation_ids: list[int]) -> None:
    _queue("export_annotations", project_id=project_id, annotation_ids=annotation_ids)


def annotations_deleted(*, project_id: int, annotation_ids: list[int]) -> None:
    _queue("unexport_annotations", project_id=project_id, annotation_ids=annotation_ids)
