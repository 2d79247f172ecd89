"""`/o/<slug>/settings/billing`: the plan, its state, usage against the limits (bars), the plans
on offer with Upgrade (Stripe Checkout) and the payment-method portal; changes go through the API
(`/api/billing/checkout`, `/api/billing/portal`), so the API's permissions decide them."""

from django.urls import re_path

from accounts.access import actor_of, can
from accounts.views_admin import render_settings, settings_page
from billing.api import plan_payload
from billing.context_processors import NAMES
from billing.models import COUNTED, Plan
from billing.selectors import billing_of, count_limit, is_read_only, trial_days_left, usage_of


def _bars(row, *, organization) -> list[dict]:
    usage = usage_of(row, organization=organization)
    bars = []
    for counted in COUNTED:
        check = count_limit(row, counted, count=usage[counted])
        limited = not check["unlimited"] and check["limit"]
        share = min(100, round(100 * check["count"] / check["limit"])) if limited else 0
        bars.append({"key": counted, "name": NAMES[counted].capitalize(), **check, "percent": share,
                     "level": "over" if check["reached"] and not check["unlimited"] else
                     ("near" if check["warning"] else "")})
    return bars


@settings_page("billing")
def billing_page(request):
    row = billing_of(organization_id=request.organization.pk)
    plans = [plan_payload(plan) | {"current": plan.pk == row.plan_id} for plan in Plan.objects.filter(is_public=True)]
    return render_settings(request, "billing/billing.html", section="billing", context={
        "billing": row, "plan": row.plan, "bars": _bars(row, organization=request.organization), "plans": plans,
        "read_only": is_read_only(row),
        "trial_days": trial_days_left(row), "can_change": can(actor_of(request), "billing.change"),
    })


page_urlpatterns = [re_path(r"^settings/billing/?$", billing_page, name="settings-billing")]
