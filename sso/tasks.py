"""Celery jobs of single sign-on. Each takes the organization explicitly (ARCHITECTURE.md, Jobs)."""

from celery import shared_task

from tenants.models import Organization


@shared_task(name="sso.scim_resync")
def scim_resync(organization_id: int) -> int:
    """Apply the organization's SCIM group mappings to every SCIM-managed member again (after the
    mappings changed). Idempotent: a redelivered message changes nothing more. Returns how many
    members were synced."""
    from sso.scim import scim_members_resync

    organization = Organization.objects.filter(pk=organization_id, deleted_at__isnull=True).first()
    if organization is None:
        return 0
    return scim_members_resync(organization=organization)
