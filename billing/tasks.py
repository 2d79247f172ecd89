"""Celery jobs of billing (beat): trials that end, and the usage reconcile."""

from celery import shared_task

from tenants.models import Organization


@shared_task(name="billing.trials_end")
def trials_end() -> int:
    from billing import services

    return services.trials_end()


@shared_task(name="billing.usage_reconcile_all")
def usage_reconcile_all() -> int:
    """Recount every organization's usage; how many counters were off."""
    from billing import services

    off = 0
    for organization in Organization.objects.filter(deleted_at__isnull=True).exclude(schema_name="public"):
        off += len(services.usage_reconcile(organization=organization))
    return off
