"""Celery jobs of the storages app. Each takes the organization explicitly and enters its schema."""

from celery import shared_task
from django_tenants.utils import tenant_context

from tenants.models import Organization


def _organization(organization_id: int):
    return Organization.objects.filter(pk=organization_id, deleted_at__isnull=True).first()


@shared_task(name="storages.sync_storage")
def sync_storage(organization_id: int, storage_id: int) -> None:
    from storages import services
    from storages.models import Storage

    organization = _organization(organization_id)
    if organization is None:
        return
    with tenant_context(organization):
        storage = Storage.objects.filter(pk=storage_id).first()
        if storage is not None:
            services.sync_run(storage=storage)


@shared_task(name="storages.export_annotations")
def export_annotations(organization_id: int, project_id: int, annotation_ids: list[int]) -> int:
    from storages import services

    organization = _organization(organization_id)
    if organization is None:
        return 0
    with tenant_context(organization):
        return services.annotations_export(project_id=project_id, annotation_ids=annotation_ids)


@shared_task(name="storages.unexport_annotations")
def unexport_annotations(organization_id: int, project_id: int, annotation_ids: list[int]) -> int:
    from storages import services

    organization = _organization(organization_id)
    if organization is None:
        return 0
    with tenant_context(organization):
        return services.annotations_unexport(project_id=project_id, annotation_ids=annotation_ids)
