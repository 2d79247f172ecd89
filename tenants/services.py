"""Organization lifecycle: provisioning from the warm pool, soft deletion, purge.

Provisioning never replays migration history (ARCHITECTURE.md, Tenancy): a new organization's
schema is a pre-migrated pool schema renamed in place, or, when the pool is empty, a clone of the
template schema. Both are one transaction with the Organization row, so a failure leaves no
orphan schema behind.
"""

import logging
import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.utils import timezone
from django.utils.text import slugify
from django_tenants.clone import CLONE_SCHEMA_FUNCTION
from django_tenants.utils import get_public_schema_name, quote_schema_name, schema_exists

from tenants.models import Organization, WarmSchema

logger = logging.getLogger(__name__)

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
# Path segments that can never be organization slugs: they name routes (`/o/api/...` is how the
# SDK's refresh call looks when a base URL lacks its trailing slash).
RESERVED_SLUGS = frozenset({
    "api", "o", "ws", "scim", "admin", "static", "media", "health", "accounts", "signup", "login",
    "logout", "public", "www", "template", "pool", "new", "settings", "saml", "sso", "billing",
})
POOL_PREFIX = "pool_"


def template_schema_name() -> str:
    return settings.TENANT_BASE_SCHEMA


def schema_name_for_slug(slug: str) -> str:
    return "org_" + slug.replace("-", "_")


def slug_from_title(title: str) -> str:
    base = slugify(title)[:32].strip("-") or "org"
    if base in RESERVED_SLUGS:
        base = f"{base}-org"
    candidate, n = base, 1
    while Organization.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def validate_slug(slug: str) -> None:
    if not SLUG_RE.match(slug or ""):
        raise ValidationError(
            {"slug": "Use 1-40 lowercase letters, digits and hyphens, not starting or ending with a hyphen."}
        )
    if slug in RESERVED_SLUGS:
        raise ValidationError({"slug": f"'{slug}' is reserved; choose another."})
    if Organization.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"The organization address '{slug}' is already taken."})


def _ensure_clone_function() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = 'public' AND p.proname = 'clone_schema'"
        )
        if cursor.fetchone() is None:
            db_user = settings.DATABASES["default"].get("USER") or "postgres"
            cursor.execute(CLONE_SCHEMA_FUNCTION.format(db_user=db_user))


def clone_template_schema(*, new_schema_name: str) -> None:
    """Copy the template schema (tables, sequences, migration rows) to a new schema."""
    connection.set_schema_to_public()
    _ensure_clone_function()
    with connection.cursor() as cursor:
        # The clone function is not safe to run concurrently with itself (it recreates a type).
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('scriptorium.clone_schema'))")
        cursor.execute("SELECT clone_schema(%s, %s, 'DATA')", [template_schema_name(), new_schema_name])


def _take_warm_schema(*, new_schema_name: str) -> bool:
    """Rename a pool schema to `new_schema_name`; False when the pool is empty. Needs a transaction."""
    warm = WarmSchema.objects.select_for_update(skip_locked=True).order_by("id").first()
    if warm is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER SCHEMA {quote_schema_name(warm.schema_name)} RENAME TO {quote_schema_name(new_schema_name)}"
        )
    warm.delete()
    return True


def organization_validate(*, title: str, slug: str | None = None) -> tuple[str, str]:
    """Check a name and address for a new organization; returns them cleaned."""
    title = (title or "").strip()
    if not title:
        raise ValidationError({"organization": "Give the organization a name."})
    if len(title) > 200:
        raise ValidationError({"organization": "The organization name is at most 200 characters."})
    slug = slug_from_title(title) if not slug else slug.strip().lower()
    validate_slug(slug)
    return title, slug


@transaction.atomic
def organization_create(*, title: str, slug: str | None = None) -> Organization:
    """Create an organization with its own schema. Raises ValidationError naming the bad field."""
    title, slug = organization_validate(title=title, slug=slug)
    schema_name = schema_name_for_slug(slug)
    if schema_exists(schema_name):
        raise ValidationError({"slug": f"The organization address '{slug}' is already taken."})

    connection.set_schema_to_public()
    try:
        with transaction.atomic():
            if not _take_warm_schema(new_schema_name=schema_name):
                logger.info("warm schema pool empty; cloning the template for %s", slug)
                clone_template_schema(new_schema_name=schema_name)
            organization = Organization.objects.create(schema_name=schema_name, slug=slug, title=title)
    except (IntegrityError, ProgrammingError, ValidationError) as exc:
        # A concurrent signup took the same address between validation and creation (the
        # database or django-tenants' own schema-name check notices, depending on timing).
        if Organization.objects.filter(slug=slug).exists() or schema_exists(schema_name):
            raise ValidationError({"slug": f"The organization address '{slug}' is already taken."}) from exc
        raise
    transaction.on_commit(_request_pool_refill)
    return organization


def _request_pool_refill() -> None:
    from tenants.tasks import refill_warm_pool

    try:
        refill_warm_pool.delay()
    except Exception:  # the broker being down must not fail a signup; beat refills later
        logger.warning("could not enqueue warm pool refill", exc_info=True)


def warm_pool_refill(*, target_size: int | None = None) -> int:
    """Clone the template into new pool schemas until the pool holds `target_size`. Returns how many."""
    target = settings.TENANT_WARM_POOL_SIZE if target_size is None else target_size
    created = 0
    while WarmSchema.objects.count() < target:
        name = f"{POOL_PREFIX}{secrets.token_hex(6)}"
        with transaction.atomic():
            clone_template_schema(new_schema_name=name)
            WarmSchema.objects.create(schema_name=name)
        created += 1
    return created


def template_schema_ensure() -> bool:
    """Create the (empty) template schema if missing; migrate_schemas then brings it current."""
    name = template_schema_name()
    if schema_exists(name):
        return False
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {quote_schema_name(name)}")
    return True


def organization_soft_delete(*, organization: Organization) -> Organization:
    """Hide the organization now; its schema is dropped after ORGANIZATION_DELETION_GRACE."""
    if organization.deleted_at is None:
        organization.deleted_at = timezone.now()
        organization.save(update_fields=["deleted_at"])
    return organization


def organization_restore(*, organization: Organization) -> Organization:
    organization.deleted_at = None
    organization.save(update_fields=["deleted_at"])
    return organization


def organizations_purge_expired(*, now=None) -> list[str]:
    """Drop the schemas (and rows) of organizations soft-deleted longer ago than the grace period."""
    now = now or timezone.now()
    cutoff = now - settings.ORGANIZATION_DELETION_GRACE
    purged = []
    for organization in Organization.objects.filter(deleted_at__lt=cutoff).exclude(
        schema_name=get_public_schema_name()
    ):
        with transaction.atomic():
            schema = organization.schema_name
            organization.delete(force_drop=True)
        purged.append(schema)
        logger.info("purged organization schema %s", schema)
    return purged
