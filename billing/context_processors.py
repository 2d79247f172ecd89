"""The banner every page of an organization shows near or over a plan limit, in a trial's last
days, past due or read-only. One read of the billing row per page, only for organization pages."""

from billing.models import COUNTED, SubscriptionStatus
from billing.selectors import billing_of, count_limit, is_read_only, trial_days_left

NAMES = {"projects": "projects", "seats": "seats", "results": "annotations", "import_storages": "source storages",
         "export_storages": "target storages"}
TRIAL_WARNING_DAYS = 3


def banner_of(*, organization) -> dict | None:
    """{"level": "near" | "over", "text", ...} or None."""
    row = billing_of(organization_id=organization.pk)
    if is_read_only(row):
        return {"level": "over", "text": "This organization is read-only: a payment failed and the grace period "
                                         "is over. Members can view and export; nothing new can be created."}
    if row.status == SubscriptionStatus.PAST_DUE:
        return {"level": "near", "text": f"A payment failed. Update the payment method before "
                                         f"{row.grace_ends_at:%d %B %Y} or the organization turns read-only."}
    checks = {counted: count_limit(row, counted) for counted in COUNTED}
    over = [NAMES[counted] for counted, check in checks.items() if check["reached"] and not check["unlimited"]]
    if over:
        return {"level": "over", "text": f"Your plan's limit is reached for {', '.join(over)}."}
    near = [NAMES[counted] for counted, check in checks.items() if check["warning"]]
    if near:
        return {"level": "near", "text": f"Close to your plan's limit for {', '.join(near)}."}
    days = trial_days_left(row)
    if row.status == SubscriptionStatus.TRIALING and days <= TRIAL_WARNING_DAYS:
        return {"level": "near", "text": f"Your trial ends in {days} day{'s' if days != 1 else ''}."}
    return None


def billing_banner(request):
    organization = getattr(request, "organization", None)
    if organization is None or getattr(request, "membership", None) is None:
        return {}
    from accounts.access import actor_of, can

    banner = banner_of(organization=organization)
    if banner is not None and can(actor_of(request), "billing.view"):
        banner["link"] = f"/o/{organization.slug}/settings/billing"
    return {"billing_banner": banner}
