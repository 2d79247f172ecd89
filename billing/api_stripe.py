"""Stripe's side of the billing API: an organization starts a Checkout for a plan or opens the
Billing Portal (tenant URLconf, Owners by default: `billing.change`), and Stripe posts its events
to one webhook for all organizations (public URLconf, no session or token: the signature is the proof).
"""

import logging

from django.db import connection
from django.http import JsonResponse
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import stripe_gateway, webhooks
from platform_core.routing import route

logger = logging.getLogger(__name__)

BILLING_CHANGE = "billing.change"


def _base_url(request) -> str:
    return f"{request.scheme}://{request.get_host()}"


class CheckoutApi(APIView):
    """POST {"plan": "<code>"} -> {"url": Stripe Checkout's page for that plan's subscription}."""

    permissions = {"POST": BILLING_CHANGE}

    def post(self, request):
        body = request.data if isinstance(request.data, dict) else {}
        plan_code = body.get("plan")
        if plan_code is not None and not isinstance(plan_code, str):
            raise ValidationError({"plan": ["A plan's code, as a string."]})
        url = stripe_gateway.checkout_session_create(organization=connection.tenant, plan_code=plan_code or "",
                                                     base_url=_base_url(request))
        return Response({"url": url})


class PortalApi(APIView):
    """POST -> {"url": the Stripe Billing Portal of the organization's customer}."""

    permissions = {"POST": BILLING_CHANGE}

    def post(self, request):
        return Response({"url": stripe_gateway.portal_session_create(organization=connection.tenant,
                                                                     base_url=_base_url(request))})


@csrf_exempt  # Stripe posts from its servers; the signature over the body is the proof
@require_POST
def stripe_webhook(request):
    try:
        event = webhooks.event_verified(payload=request.body, signature=request.headers.get("Stripe-Signature"))
    except webhooks.WebhookRefused as refused:
        logger.warning("stripe: webhook refused: %s", refused.detail)
        return JsonResponse({"detail": refused.detail}, status=refused.status)
    outcome = webhooks.event_handle(event=event)
    return JsonResponse({"received": True, "status": outcome.status, "reason": outcome.reason})


tenant_urlpatterns = [
    route(r"billing/checkout", CheckoutApi),
    route(r"billing/portal", PortalApi),
]

public_urlpatterns = [
    re_path(r"^billing/stripe/webhook/?$", stripe_webhook, name="stripe-webhook"),
]
