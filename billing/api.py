"""Billing API: `/api/billing/info` (Label Studio Enterprise's billing_checks and billing_flags,
from the organization's real usage and plan), and the plans on offer."""

from django.db import connection
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import COUNTED, Plan
from billing.selectors import billing_info
from platform_core.routing import route


def plan_payload(plan: Plan) -> dict:
    return {"code": plan.code, "title": plan.title, "description": plan.description,
            "limits": {counted: plan.limit_of(counted) for counted in COUNTED}, "features": plan.features,
            "trial_days": plan.trial_days, "price_cents": plan.price_cents, "currency": plan.currency,
            "purchasable": bool(plan.stripe_price_id)}


class BillingInfoApi(APIView):
    """Any member: the numbers the product's banners and limits follow."""

    permissions = {"GET": "organizations.view"}

    def get(self, request):
        return Response(billing_info(organization=connection.tenant))


class PlansApi(APIView):
    permissions = {"GET": "organizations.view"}

    def get(self, request):
        return Response([plan_payload(plan) for plan in Plan.objects.filter(is_public=True)])


urlpatterns = [
    route(r"billing/info", BillingInfoApi),
    route(r"billing/plans", PlansApi),
]
