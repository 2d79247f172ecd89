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


@shared_task(name="sso.refresh_saml_metadata")
def refresh_saml_metadata() -> dict:
    """Beat job: every organization's IdP metadata fetched again from its URL. A failure is logged
    and the stored metadata kept (the IdP may be down for a while). Returns the counts."""
    import logging

    from django.core.exceptions import ValidationError

    from sso.models import SamlSettings
    from sso.saml import saml_metadata_refresh

    logger = logging.getLogger(__name__)
    counts = {"changed": 0, "unchanged": 0, "failed": 0}
    for row in SamlSettings.objects.exclude(metadata_url="").select_related("organization").filter(
            organization__deleted_at__isnull=True):
        try:
            changed = saml_metadata_refresh(organization=row.organization)
        except ValidationError as exc:
            counts["failed"] += 1
            logger.warning("SAML metadata of organization %s not refreshed: %s", row.organization_id,
                           " ".join(exc.messages)[:300])
            continue
        counts["changed" if changed else "unchanged"] += 1
    return counts
