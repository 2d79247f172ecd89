"""The plan's limits, enforced where things are created.

`take(organization_id=, counted=, count=)` runs inside the transaction that creates the thing:
it locks the organization's billing row (SELECT ... FOR UPDATE), refuses when the organization is
read-only or the plan's limit would be passed, and adds `count` to the counter. The lock is held
until that transaction ends, so of 20 requests racing for the last project exactly one gets it,
and the counter changes only if the creation commits. `give_back` lowers a counter in the
transaction that removes things; the reconcile job (billing.services.usage_reconcile) recounts
from the tables whatever a path forgot.

Call `take` late in the creating transaction (after validation, before commit): the lock
serializes the organization's creations of that thing for the rest of it. Where the plan sets no
limit, `take` takes no lock and keeps no counter (usage is then counted from the tables).
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from rest_framework import status
from rest_framework.exceptions import APIException

from billing.models import COUNTED, OrganizationBilling
from billing.selectors import billing_of, is_read_only
from billing.services import billing_locked

NAMES = {"projects": "projects", "seats": "active members (seats)", "results": "annotations",
         "import_storages": "source storages", "export_storages": "target storages"}


class LimitReached(APIException):
    """402: the plan allows no more of this; the body names the limit."""

    status_code = status.HTTP_402_PAYMENT_REQUIRED
    default_code = "limit_reached"

    def __init__(self, *, counted: str, limit: int, plan_title: str):
        self.counted, self.limit = counted, limit
        super().__init__()
        # A plain dict, so `max` stays a number in the response (DRF would make every value a string).
        self.detail = {
            "detail": f"Your plan ({plan_title}) allows {limit} {NAMES[counted]}; upgrade on the billing page "
                      f"to add more.",
            "limit": counted, "max": limit, "code": "limit_reached",
        }


class ReadOnly(APIException):
    status_code = status.HTTP_402_PAYMENT_REQUIRED
    default_code = "organization_read_only"

    def __init__(self):
        super().__init__()
        self.detail = {
            "detail": "This organization is read-only until its payment is settled: members can view and export, "
                      "not create. An Owner can update the payment method on the billing page.",
            "code": "organization_read_only",
        }


def take(*, organization_id: int, counted: str, count: int = 1) -> None:
    assert counted in COUNTED, counted
    if count <= 0:
        return
    assert transaction.get_connection().in_atomic_block, "take() belongs inside the creating transaction"
    row = billing_of(organization_id=organization_id)
    if is_read_only(row):
        raise ReadOnly()
    if row.plan.limit_of(counted) is None:
        # Nothing to hold: no lock, no counter (it would serialize every submit of a large
        # organization on this row); usage is counted from the tables instead (selectors.usage_of),
        # and the counter is recounted when a plan that limits it starts (services.plan_set).
        return
    row = billing_locked(organization_id)
    if is_read_only(row):
        raise ReadOnly()
    limit = row.plan.limit_of(counted)
    if limit is None:
        return  # the plan changed meanwhile
    if getattr(row, counted) + count > limit:
        raise LimitReached(counted=counted, limit=limit, plan_title=row.plan.title)
    OrganizationBilling.objects.filter(pk=row.pk).update(**{counted: F(counted) + count})


def give_back(*, organization_id: int, counted: str, count: int = 1) -> None:
    assert counted in COUNTED, counted
    if count > 0:  # a counter is kept only while the plan limits it (take)
        limited = {f"plan__{counted}__isnull": False}
        OrganizationBilling.objects.filter(organization_id=organization_id, **limited).update(
            **{counted: Greatest(F(counted) - count, 0)})


def writable_or_raise(*, organization_id: int) -> None:
    """For writes that count nothing (imports, edits): refused while the organization is read-only."""
    if is_read_only(billing_of(organization_id=organization_id)):
        raise ReadOnly()


def _active(role: str | None) -> bool:
    from accounts.models import INACTIVE_ROLES

    return role is not None and role not in INACTIVE_ROLES


def seats_follow(*, organization_id: int, before: str | None, after: str | None) -> None:
    """A membership's role went from `before` to `after` (None: no membership): a seat is taken
    when it becomes active, given back when it stops being. In the changing transaction."""
    if _active(after) and not _active(before):
        take(organization_id=organization_id, counted="seats")
    elif _active(before) and not _active(after):
        give_back(organization_id=organization_id, counted="seats")


def seats_take(*, organization_id: int, roles) -> None:
    """New memberships with these roles (bulk joins): one check for all their seats."""
    take(organization_id=organization_id, counted="seats", count=sum(1 for role in roles if _active(role)))


FEATURE_NAMES = {"sso": "single sign-on (SAML)", "scim": "SCIM provisioning", "activity_log": "the activity log",
                 "webhooks": "webhooks", "storage_proxy": "the storage proxy", "reviewing": "reviews"}


class FeatureNotInPlan(APIException):
    status_code = status.HTTP_402_PAYMENT_REQUIRED
    default_code = "feature_not_in_plan"

    def __init__(self, *, feature: str, plan_title: str):
        super().__init__()
        self.feature = feature
        self.detail = {"detail": f"Your plan ({plan_title}) does not include {FEATURE_NAMES[feature]}; upgrade on the "
                                 f"billing page.", "feature": feature, "code": "feature_not_in_plan"}


def feature_or_raise(*, organization_id: int, feature: str) -> None:
    assert feature in FEATURE_NAMES, feature
    row = billing_of(organization_id=organization_id)
    if not row.plan.allows(feature):
        raise FeatureNotInPlan(feature=feature, plan_title=row.plan.title)
