from tenants.models import Organization


def organization_get_by_slug(*, slug: str) -> Organization | None:
    return Organization.objects.filter(slug=slug, deleted_at__isnull=True).first()
