"""Plans, each organization's subscription and usage, and the Stripe events already handled
(public schema).

Plans are data (rows, seeded by a migration and editable in the admin), never code: limits are
numbers or null (no limit), features a JSON object of flags. An organization's OrganizationBilling
row holds its plan, its subscription's state and the usage counters the limits are checked
against; creation points lock that row (SELECT ... FOR UPDATE) so concurrent creations of the
last slot serialize, and update the counter in the same transaction (billing.limits).
"""

from django.db import models

from tenants.models import Organization

# What is counted and limited: the counter on OrganizationBilling and the limit on Plan share the name.
COUNTED = ("projects", "seats", "results", "import_storages", "export_storages")
FEATURES = ("sso", "scim", "activity_log", "webhooks", "storage_proxy", "reviewing")


class Plan(models.Model):
    code = models.SlugField(max_length=40, unique=True)
    title = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    # null: no limit.
    projects = models.PositiveIntegerField(null=True, blank=True)
    seats = models.PositiveIntegerField(null=True, blank=True)
    results = models.PositiveIntegerField(null=True, blank=True)
    import_storages = models.PositiveIntegerField(null=True, blank=True)
    export_storages = models.PositiveIntegerField(null=True, blank=True)
    features = models.JSONField(default=dict, blank=True)
    trial_days = models.PositiveSmallIntegerField(default=0)
    price_cents = models.PositiveIntegerField(default=0)  # per month, shown on the billing page
    currency = models.CharField(max_length=3, default="usd")
    stripe_price_id = models.CharField(max_length=100, blank=True, default="")
    # The plan a new organization starts on (exactly one), and the one a cancelled subscription falls back to.
    is_signup_default = models.BooleanField(default=False)
    is_fallback = models.BooleanField(default=False)
    is_public = models.BooleanField(default=True)  # offered on the billing page
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return self.title

    def limit_of(self, counted: str) -> int | None:
        assert counted in COUNTED, counted
        return getattr(self, counted)

    def allows(self, feature: str) -> bool:
        return bool(self.features.get(feature, False))


class SubscriptionStatus(models.TextChoices):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"  # a payment failed: a grace period, then read-only
    CANCELED = "canceled"  # back on the fallback plan


class OrganizationBilling(models.Model):
    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="billing")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.TRIALING)
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    grace_ends_at = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    stripe_customer_id = models.CharField(max_length=100, blank=True, default="", db_index=True)
    stripe_subscription_id = models.CharField(max_length=100, blank=True, default="", db_index=True)
    # Usage, kept by the creation points (billing.limits) and recounted by the reconcile job.
    projects = models.PositiveIntegerField(default=0)
    seats = models.PositiveIntegerField(default=0)
    results = models.PositiveIntegerField(default=0)
    import_storages = models.PositiveIntegerField(default=0)
    export_storages = models.PositiveIntegerField(default=0)
    reconciled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.plan_id} ({self.status})"


class StripeEvent(models.Model):
    """A webhook event handled once: a replay with the same id changes nothing."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
