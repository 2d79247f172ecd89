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


@shared_task(name="labeling.deliver_webhook", bind=True, max_retries=None)
def deliver_webhook(self, organization_id: int, delivery_id: int) -> str:
    """One attempt at a webhook delivery; the delivery row counts attempts and bounds the retries."""
    from labeling import webhooks

    organization = Organization.objects.filter(pk=organization_id, deleted_at__isnull=True).first()
    if organization is None:
        return webhooks.SKIPPED.status
    with tenant_context(organization):
        outcome = webhooks.delivery_attempt(delivery_id=delivery_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="labeling.purge_activity_logs")
def purge_activity_logs() -> int:
    """Beat job: fan out one retention purge per organization."""
    from django_tenants.utils import get_public_schema_name

    organizations = Organization.objects.filter(deleted_at__isnull=True).exclude(
        schema_name=get_public_schema_name()).values_list("pk", flat=True)
    count = 0
    for organization_id in organizations.iterator():
        purge_activity_log.delay(organization_id)
        count += 1
    return count


@shared_task(name="labeling.purge_activity_log")
def purge_activity_log(organization_id: int) -> int:
    from labeling import activity

    organization = Organization.objects.filter(pk=organization_id, deleted_at__isnull=True).first()
    if organization is None:
        return 0
    with tenant_context(organization):
        return activity.activity_logs_purge_expired()
