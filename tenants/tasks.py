"""Celery jobs of the organization lifecycle. Public-schema work only: no tenant context needed."""

from celery import shared_task

from tenants import services


@shared_task(name="tenants.refill_warm_pool")
def refill_warm_pool() -> int:
    # Concurrent refills only over-fill the pool by a few schemas; provisioning stays correct.
    return services.warm_pool_refill()


@shared_task(name="tenants.purge_deleted_organizations")
def purge_deleted_organizations() -> list[str]:
    return services.organizations_purge_expired()
