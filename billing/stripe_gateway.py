"""Calls to Stripe's API (the official library, configured from settings on each call): the
organization's Customer, Checkout Sessions for a plan's subscription, Billing Portal sessions.

Errors reach the API as clear answers: a plan Stripe cannot sell -> 400 naming `plan`; Stripe not
configured -> 503; Stripe refusing or unreachable -> 502 with a message that never carries the
key or Stripe's own wording (which may quote request data).
"""

from __future__ import annotations

import logging

import stripe
from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError

from billing import services
from billing.models import Plan, SubscriptionStatus
from billing.selectors import billing_of

logger = logging.getLogger(__name__)

STRIPE_TIMEOUT_SECONDS = 20


class StripeNotConfigured(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Payments are not configured on this installation (no Stripe key). Ask its operator."
    default_code = "stripe_not_configured"


class StripeFailed(APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "Stripe could not handle the request. Try again in a moment."
    default_code = "stripe_failed"


class AlreadySubscribed(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = ("This organization already has a subscription: change its plan in the billing portal "
                      "(POST /api/billing/portal).")
    default_code = "already_subscribed"


class NothingToManage(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = ("This organization has no Stripe billing account yet: choose a plan first "
                      "(POST /api/billing/checkout).")
    default_code = "no_billing_account"


def _client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise StripeNotConfigured()
    # A StripeClient per call, rather than the library's globals: settings may change (tests) and
    # nothing here writes module state other code could see.
    base_addresses = {"api": settings.STRIPE_API_BASE.rstrip("/")} if settings.STRIPE_API_BASE else None
    http_client = stripe.RequestsClient(timeout=STRIPE_TIMEOUT_SECONDS)
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, base_addresses=base_addresses, http_client=http_client,
                               max_network_retries=2)


def _call(what: str, request):
    """`request()` against Stripe; its errors as StripeFailed (logged without messages or keys)."""
    try:
        return request()
    except stripe.APIConnectionError as exc:
        logger.warning("stripe: %s: Stripe unreachable (%s)", what, type(exc).__name__)
        raise StripeFailed("Stripe could not be reached. Try again in a moment.") from None
    except stripe.StripeError as exc:
        logger.warning("stripe: %s refused: %s http=%s code=%s request=%s", what, type(exc).__name__,
                       exc.http_status, exc.code, exc.request_id)
        raise StripeFailed() from None


def customer_id_of(*, organization) -> str:
    """The organization's Stripe Customer, created on first need."""
    row = billing_of(organization_id=organization.pk)
    if row.stripe_customer_id:
        return row.stripe_customer_id
    client = _client()
    metadata = {"organization_id": str(organization.pk), "organization_slug": organization.slug}
    # The same key for concurrent first checkouts: Stripe answers them all with one Customer.
    idempotency_key = f"customer-of-organization-{organization.pk}-{int(organization.created_at.timestamp())}"
    customer = _call("customer create", lambda: client.v1.customers.create(
        params={"name": organization.title, "metadata": metadata},
        options={"idempotency_key": idempotency_key}))
    services.stripe_ids_link(organization_id=organization.pk, stripe_customer_id=customer.id)
    return customer.id


def billing_page_url(*, organization, base_url: str) -> str:
    return f"{(settings.PUBLIC_URL or base_url).rstrip('/')}/o/{organization.slug}/settings/billing"


def purchasable_plan(*, code: str) -> Plan:
    plan = Plan.objects.filter(code=code, is_public=True).first() if code else None
    if plan is None:
        raise ValidationError({"plan": [f"No plan {code!r} is offered." if code else "Name the plan to buy."]})
    if not plan.stripe_price_id:
        raise ValidationError({"plan": [f"The plan {code!r} cannot be bought online (it has no Stripe price)."]})
    return plan


def checkout_session_create(*, organization, plan_code: str, base_url: str) -> str:
    """A Checkout Session (subscription mode) for the plan; its URL, where the buyer pays."""
    plan = purchasable_plan(code=plan_code)
    row = billing_of(organization_id=organization.pk)
    if row.stripe_subscription_id and row.status != SubscriptionStatus.CANCELED:
        # A second subscription would bill the organization twice.
        raise AlreadySubscribed()
    client = _client()
    customer_id = customer_id_of(organization=organization)
    page = billing_page_url(organization=organization, base_url=base_url)
    metadata = {"organization_id": str(organization.pk), "plan": plan.code}
    session = _call("checkout session create", lambda: client.v1.checkout.sessions.create(params={
        "mode": "subscription",
        "customer": customer_id,
        "client_reference_id": str(organization.pk),
        "line_items": [{"price": plan.stripe_price_id, "quantity": 1}],
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
        "success_url": f"{page}?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{page}?checkout=canceled",
    }))
    return session.url


def portal_session_create(*, organization, base_url: str) -> str:
    """A Billing Portal session of the organization's Customer (payment method, invoices, plan
    changes, cancellation); its URL. The Customer is made by the first checkout: before it there is
    nothing to manage."""
    customer_id = billing_of(organization_id=organization.pk).stripe_customer_id
    if not customer_id:
        raise NothingToManage()
    client = _client()
    session = _call("portal session create", lambda: client.v1.billing_portal.sessions.create(params={
        "customer": customer_id, "return_url": billing_page_url(organization=organization, base_url=base_url)}))
    return session.url
