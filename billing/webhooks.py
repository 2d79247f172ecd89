"""Stripe's webhook events: verified, handled once, applied through billing.services.

Each event is checked against STRIPE_WEBHOOK_SECRET (signature and a 300 s tolerance on its
timestamp), then, in one transaction, recorded as a StripeEvent (its id is unique: a replay finds
it and changes nothing) and applied to the organization it is about. That organization comes from
the metadata our checkout put on the session and subscription (`organization_id`), else from the
Stripe ids already stored on its billing row; an event for no known organization is recorded and
ignored, as are event types not handled here.

Stripe does not promise the order of events: an event about a subscription other than the
organization's current one (an old one ending after a new one started) is ignored.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from billing import services
from billing.models import OrganizationBilling, Plan, StripeEvent, SubscriptionStatus
from tenants.models import Organization

logger = logging.getLogger(__name__)

SIGNATURE_TOLERANCE_SECONDS = 300
ACTIVE_STATUSES = {"active": SubscriptionStatus.ACTIVE, "trialing": SubscriptionStatus.TRIALING}
FAILING_STATUSES = {"past_due", "unpaid"}
ENDED_STATUSES = {"canceled", "incomplete_expired"}


class WebhookRefused(Exception):
    """The request is not a genuine Stripe event: answered 400 (or 503 when no secret is set)."""

    def __init__(self, detail: str, *, status: int = 400):
        super().__init__(detail)
        self.detail, self.status = detail, status


@dataclass(frozen=True)
class Outcome:
    status: str  # "handled" | "ignored" | "replayed"
    organization_id: int | None = None
    reason: str = ""


def event_verified(*, payload: bytes, signature: str | None) -> dict:
    """The event as plain JSON once Stripe's signature over `payload` checks out."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise WebhookRefused("Stripe webhooks are not configured on this installation (no signing secret).",
                             status=503)
    if not signature:
        raise WebhookRefused("The Stripe-Signature header is missing.")
    try:
        stripe.Webhook.construct_event(payload, signature, secret, tolerance=SIGNATURE_TOLERANCE_SECONDS)
        event = json.loads(payload)
    except stripe.SignatureVerificationError:
        raise WebhookRefused("The Stripe signature does not match, or is too old.") from None
    except (ValueError, UnicodeDecodeError):
        raise WebhookRefused("The body is not a JSON event.") from None
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise WebhookRefused("The body is not a Stripe event (no id or type).")
    if not isinstance(event.get("data"), dict) or not isinstance(event["data"].get("object"), dict):
        raise WebhookRefused("The event has no data object.")
    return event


def event_handle(*, event: dict) -> Outcome:
    """Apply a verified event, once per event id."""
    try:
        with transaction.atomic():
            # First, so a concurrent delivery of the same event waits on the unique index and then fails.
            record = StripeEvent.objects.create(event_id=str(event["id"])[:100], type=str(event["type"])[:100])
            outcome = _apply(event_type=event["type"], obj=event["data"]["object"])
            if outcome.organization_id is not None:
                record.organization_id = outcome.organization_id
                record.save(update_fields=["organization"])
    except IntegrityError:
        if not StripeEvent.objects.filter(event_id=str(event["id"])[:100]).exists():
            raise
        outcome = Outcome("replayed", reason="already handled")
    logger.info("stripe: event %s (%s) for organization %s: %s %s", event["id"], event["type"],
                outcome.organization_id, outcome.status, outcome.reason)
    return outcome


# --- the event types ---------------------------------------------------------------------------

def _apply(*, event_type: str, obj: dict) -> Outcome:
    handler = HANDLERS.get(event_type)
    if handler is None:
        return Outcome("ignored", reason="event type not handled")
    return handler(obj)


def _checkout_completed(session: dict) -> Outcome:
    organization_id = _organization_id(
        metadata_ids=[session.get("client_reference_id"), _metadata_of(session).get("organization_id")],
        customer_id=_id_of(session.get("customer")), subscription_id=_id_of(session.get("subscription")))
    if organization_id is None:
        return Outcome("ignored", reason="no known organization")
    customer_id, subscription_id = _id_of(session.get("customer")), _id_of(session.get("subscription"))
    if not customer_id and not subscription_id:
        return Outcome("ignored", organization_id, "nothing to link")
    services.stripe_ids_link(organization_id=organization_id, stripe_customer_id=customer_id or None,
                    stripe_subscription_id=subscription_id or None)
    return Outcome("handled", organization_id, "customer and subscription linked")


def _subscription_changed(subscription: dict) -> Outcome:
    subscription_id, customer_id = _id_of(subscription.get("id")), _id_of(subscription.get("customer"))
    organization_id = _organization_id(metadata_ids=[_metadata_of(subscription).get("organization_id")],
                                       customer_id=customer_id, subscription_id=subscription_id)
    if organization_id is None:
        return Outcome("ignored", reason="no known organization")
    row = services.billing_locked(organization_id)
    stripe_status = subscription.get("status")
    if stripe_status in ACTIVE_STATUSES:
        price_id = _first_price_id(subscription)
        plan = Plan.objects.filter(stripe_price_id=price_id).first() if price_id else None
        if plan is None:
            logger.warning("stripe: subscription %s of organization %s has price %s, which no plan sells",
                           subscription_id, organization_id, price_id)
            return Outcome("ignored", organization_id, "price of no plan")
        # Active or trialing: this subscription becomes the organization's current one.
        services.plan_set(organization_id=organization_id, plan=plan, status=ACTIVE_STATUSES[stripe_status],
                          current_period_end=_period_end_of(subscription),
                          trial_ends_at=_timestamp(subscription.get("trial_end")),
                          stripe_customer_id=customer_id or None, stripe_subscription_id=subscription_id or None)
        return Outcome("handled", organization_id, f"plan {plan.code}, {stripe_status}")
    if _another_subscription(row, subscription_id):
        return Outcome("ignored", organization_id, "not the current subscription")
    if stripe_status in FAILING_STATUSES:
        return _failed(row, subscription_id=subscription_id)
    if stripe_status in ENDED_STATUSES:
        services.subscription_ended(organization_id=organization_id)
        return Outcome("handled", organization_id, "subscription ended")
    return Outcome("ignored", organization_id, f"subscription status {stripe_status}")


def _subscription_deleted(subscription: dict) -> Outcome:
    subscription_id = _id_of(subscription.get("id"))
    organization_id = _organization_id(metadata_ids=[_metadata_of(subscription).get("organization_id")],
                                       customer_id=_id_of(subscription.get("customer")),
                                       subscription_id=subscription_id)
    if organization_id is None:
        return Outcome("ignored", reason="no known organization")
    if _another_subscription(services.billing_locked(organization_id), subscription_id):
        return Outcome("ignored", organization_id, "not the current subscription")
    services.subscription_ended(organization_id=organization_id)
    return Outcome("handled", organization_id, "subscription ended")


def _invoice_paid(invoice: dict) -> Outcome:
    organization_id, subscription_id = _organization_of_invoice(invoice)
    if organization_id is None:
        return Outcome("ignored", reason="no known organization")
    if not subscription_id:
        return Outcome("ignored", organization_id, "not a subscription's invoice")
    if _another_subscription(services.billing_locked(organization_id), subscription_id):
        return Outcome("ignored", organization_id, "not the current subscription")
    services.payment_succeeded(organization_id=organization_id, current_period_end=_invoice_period_end(invoice))
    return Outcome("handled", organization_id, "payment succeeded")


def _invoice_payment_failed(invoice: dict) -> Outcome:
    organization_id, subscription_id = _organization_of_invoice(invoice)
    if organization_id is None:
        return Outcome("ignored", reason="no known organization")
    if not subscription_id:
        return Outcome("ignored", organization_id, "not a subscription's invoice")
    row = services.billing_locked(organization_id)
    if _another_subscription(row, subscription_id):
        return Outcome("ignored", organization_id, "not the current subscription")
    return _failed(row, subscription_id=subscription_id)


HANDLERS = {
    "checkout.session.completed": _checkout_completed,
    "customer.subscription.created": _subscription_changed,
    "customer.subscription.updated": _subscription_changed,
    "customer.subscription.deleted": _subscription_deleted,
    "invoice.paid": _invoice_paid,
    "invoice.payment_failed": _invoice_payment_failed,
}


# --- helpers -----------------------------------------------------------------------------------

def _failed(row: OrganizationBilling, *, subscription_id: str) -> Outcome:
    if row.status == SubscriptionStatus.CANCELED and not row.stripe_subscription_id:
        # Already back on the fallback plan: nothing left to make past due.
        return Outcome("ignored", row.organization_id, "no subscription to make past due")
    services.payment_failed(organization_id=row.organization_id)
    return Outcome("handled", row.organization_id, "payment failed")


def _another_subscription(row: OrganizationBilling, subscription_id: str) -> bool:
    return bool(row.stripe_subscription_id and subscription_id and row.stripe_subscription_id != subscription_id)


def _id_of(value) -> str:
    """Stripe sends a related object as its id, or expanded as the object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _metadata_of(obj) -> dict:
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def _organization_id(*, metadata_ids: list, customer_id: str, subscription_id: str) -> int | None:
    """Our metadata first (we wrote it on the checkout), else the ids stored on a billing row."""
    for value in metadata_ids:
        if isinstance(value, str) and value.isdigit() and Organization.objects.filter(pk=int(value)).exists():
            return int(value)
    for field, value in (("stripe_subscription_id", subscription_id), ("stripe_customer_id", customer_id)):
        if value:
            organization_id = (OrganizationBilling.objects.filter(**{field: value})
                               .values_list("organization_id", flat=True).first())
            if organization_id is not None:
                return organization_id
    return None


def _organization_of_invoice(invoice: dict) -> tuple[int | None, str]:
    """(organization id, subscription id) of an invoice: API versions before 2025-03-31 name the
    subscription at the top, later ones under `parent.subscription_details`."""
    details = (invoice.get("parent") or {}).get("subscription_details") or invoice.get("subscription_details") or {}
    subscription_id = _id_of(invoice.get("subscription")) or _id_of(details.get("subscription"))
    organization_id = _organization_id(metadata_ids=[_metadata_of(details).get("organization_id")],
                                       customer_id=_id_of(invoice.get("customer")), subscription_id=subscription_id)
    return organization_id, subscription_id


def _items_of(subscription: dict) -> list:
    items = (subscription.get("items") or {}).get("data")
    return items if isinstance(items, list) else []


def _first_price_id(subscription: dict) -> str:
    items = _items_of(subscription)
    return _id_of((items[0] or {}).get("price")) if items else ""


def _timestamp(value) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if isinstance(value, int) and value > 0 else None


def _period_end_of(subscription: dict) -> datetime | None:
    """At the top before API version 2025-03-31, on each item since."""
    items = _items_of(subscription)
    ends = [subscription.get("current_period_end"), *(item.get("current_period_end") for item in items)]
    found = [end for end in map(_timestamp, ends) if end is not None]
    return max(found) if found else None


def _invoice_period_end(invoice: dict) -> datetime | None:
    lines = (invoice.get("lines") or {}).get("data") or []
    found = [end for end in (_timestamp((line.get("period") or {}).get("end")) for line in lines) if end is not None]
    return max(found) if found else None
