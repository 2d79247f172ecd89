"""Celery jobs of the labeling domain. Each takes the organization explicitly and enters its schema."""

from celery import shared_task
from django_tenants.utils import tenant_context

from tenants.models import Organization


@shared_task(name="labeling.build_export_snapshot")
def build_export_snapshot(organization_id: int, snapshot_id: int) -> None:
    from labeling import exports
    from labeling.models import ExportSnapshot

    with tenant_context(Organization.objects.get(pk=organization_id)):
        snapshot = ExportSnapshot.objects.select_related("project").get(pk=snapshot_id)
        exports.build_snapshot(snapshot=snapshot)


@shared_task(name="labeling.convert_export_snapshot")
def convert_export_snapshot(organization_id: int, converted_id: int) -> None:
    from labeling import exports
    from labeling.models import ConvertedExport

    with tenant_context(Organization.objects.get(pk=organization_id)):
        converted = ConvertedExport.objects.select_related("snapshot__project").get(pk=converted_id)
        exports.convert_snapshot(converted=converted)


@shared_task(name="labeling.run_import_job")
def run_import_job(organization_id: int, job_id: int) -> None:
    from labeling import services
    from labeling.models import ImportJob

    with tenant_context(Organization.objects.get(pk=organization_id)):
        job = ImportJob.objects.select_related("project", "created_by").get(pk=job_id)
        if job.status == ImportJob.Status.CREATED:  # idempotent: a redelivered message does nothing
            services.import_job_run(job=job)
