"""Writes of billing: the subscription's state as Stripe reports it, trials that end, and the
usage reconcile.

States (OrganizationBilling.status): trialing (the signup plan's trial) -> active (a paid
subscription) -> past_due (a payment failed: BILLING_GRACE_DAYS of grace, then read-only: members
view and export, nothing is created) -> active again when an invoice is paid; canceled (the
subscription ended, or a trial ended unpaid): the fallback plan, whose limits then apply.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from billing.models import COUNTED, OrganizationBilling, Plan, SubscriptionStatus
from billing.selectors import billing_of, fallback_plan, usage_counted
from platform_core import clock

logger = logging.getLogger(__name__)


def billing_locked(organization_id: int) -> OrganizationBilling:
    """The organization's billing row (with its plan), locked until the transaction ends: limits,
    subscription changes and webhooks about one organization serialize on it. One read; the row
    is made on the organization's first need. Only the row is locked, never its plan (which every
    organization on that plan shares)."""
    locked = OrganizationBilling.objects.select_for_update(of=("self",)).select_related("plan")
    row = locked.filter(organization_id=organization_id).first()
    if row is None:
        billing_of(organization_id=organization_id)
        row = locked.get(organization_id=organization_id)
    return row


def _stripe_ids_set(row: OrganizationBilling, *, customer: str | None, subscription: str | None) -> None:
    """Stripe's ids given (None: keep the stored one)."""
    if customer is not None:
        row.stripe_customer_id = customer
    if subscription is not None:
        row.stripe_subscription_id = subscription


@transaction.atomic
def plan_set(*, organization_id: int, plan: Plan, status: str = SubscriptionStatus.ACTIVE,
             current_period_end: datetime | None = None, stripe_customer_id: str | None = None,
             stripe_subscription_id: str | None = None, trial_ends_at: datetime | None = None,
             ) -> OrganizationBilling:
    """The organization is on `plan` with `status` now (a subscription created or changed)."""
    row = billing_locked(organization_id)
    row.plan, row.status = plan, status
    if status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING):
        row.grace_ends_at = None
    if status == SubscriptionStatus.ACTIVE:
        row.trial_ends_at = None
    elif trial_ends_at is not None:
        row.trial_ends_at = trial_ends_at
    if current_period_end is not None:
        row.current_period_end = current_period_end
    _stripe_ids_set(row, customer=stripe_customer_id, subscription=stripe_subscription_id)
    _recount(row)
    row.save()
    return row


def _recount(row: OrganizationBilling) -> None:
    """The counters from the tables: a new plan may limit what the old one left uncounted."""
    for name, value in usage_counted(organization=row.organization).items():
        setattr(row, name, value)
    row.reconciled_at = clock.now()


@transaction.atomic
def stripe_ids_link(*, organization_id: int, stripe_customer_id: str | None = None,
                    stripe_subscription_id: str | None = None) -> OrganizationBilling:
    """Stripe's ids on the organization's row (checkout done, customer made); plan and state stay."""
    row = billing_locked(organization_id)
    _stripe_ids_set(row, customer=stripe_customer_id, subscription=stripe_subscription_id)
    row.save()
    return row


@transaction.atomic
def payment_failed(*, organization_id: int) -> OrganizationBilling:
    """Past due: the grace period starts (once; a second failure does not extend it)."""
    row = billing_locked(organization_id)
    if row.status != SubscriptionStatus.PAST_DUE or row.grace_ends_at is None:
        row.status = SubscriptionStatus.PAST_DUE
        row.grace_ends_at = clock.now() + timedelta(days=settings.BILLING_GRACE_DAYS)
        row.save(update_fields=["status", "grace_ends_at", "updated_at"])
    return row


@transaction.atomic
def payment_succeeded(*, organization_id: int, current_period_end: datetime | None = None) -> OrganizationBilling:
    row = billing_locked(organization_id)
    if row.status in (SubscriptionStatus.PAST_DUE, SubscriptionStatus.TRIALING):
        row.status = SubscriptionStatus.ACTIVE
    row.grace_ends_at = None
    if current_period_end is not None:
        row.current_period_end = current_period_end
    row.save()
    return row


@transaction.atomic
def subscription_ended(*, organization_id: int) -> OrganizationBilling:
    """Cancelled in Stripe (or a trial that ended unpaid): the fallback plan."""
    row = billing_locked(organization_id)
    row.plan, row.status = fallback_plan(), SubscriptionStatus.CANCELED
    row.grace_ends_at = row.trial_ends_at = None
    row.stripe_subscription_id = ""
    _recount(row)
    row.save()
    return row


def trials_end() -> int:
    """Beat job: trials past their end without a subscription fall back; how many."""
    ended = 0
    for row in OrganizationBilling.objects.filter(status=SubscriptionStatus.TRIALING, trial_ends_at__lte=clock.now(),
                                                  stripe_subscription_id=""):
        subscription_ended(organization_id=row.organization_id)
        ended += 1
    return ended


# --- usage ---------------------------------------------------------------------------------------

def usage_reconcile(*, organization) -> dict[str, tuple[int, int]]:
    """Set the counters to the tables' counts, under the row lock (no creation in between);
    returns what changed: {counted: (was, now)}."""
    with transaction.atomic():
        row = billing_locked(organization.pk)
        before = {name: getattr(row, name) for name in COUNTED}
        _recount(row)
        row.save()
        changed = {name: (was, getattr(row, name)) for name, was in before.items() if getattr(row, name) != was}
    if changed:
        logger.warning("billing: usage of organization %s reconciled: %s", organization.pk, changed)
    return changed
