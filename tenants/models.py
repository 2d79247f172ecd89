from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Organization(TenantMixin):
    """An organization and its PostgreSQL schema. Created only by tenants.services.organization_create."""

    slug = models.SlugField(max_length=40, unique=True)
    title = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    # Soft delete: the schema is dropped by tenants.tasks.purge_deleted_organizations after a grace period.
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Label Studio's organization settings (LseOrganization / DefaultRole).
    default_role = models.CharField(max_length=2, default="AN")
    contact_info = models.EmailField(null=True, blank=True)
    external_id = models.CharField(max_length=256, null=True, blank=True)
    embed_domains = models.JSONField(null=True, blank=True)
    embed_settings = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # Schemas come from the warm pool or a template clone (services.py), never from TenantMixin.save().
    auto_create_schema = False
    auto_drop_schema = True

    class Meta:
        ordering = ["title", "id"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_active(self) -> bool:
        return self.deleted_at is None


class Domain(DomainMixin):
    """Host names bound to an organization (custom domains); routing is by path, see middleware.py."""


class WarmSchema(models.Model):
    """A pre-migrated, unused schema waiting to be renamed into a new organization's schema."""

    schema_name = models.CharField(max_length=63, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.schema_name
