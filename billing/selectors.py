"""Reads of billing: an organization's billing row (made on first need), its state, and
`/api/billing/info` in Label Studio Enterprise's shape (billing_checks, billing_flags)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction

from billing.models import COUNTED, OrganizationBilling, Plan, SubscriptionStatus
from platform_core import clock

# Near a limit: the billing page and banners warn from this share of it.
WARNING_SHARE = 0.8


def signup_plan() -> Plan:
    plan = Plan.objects.filter(code=settings.BILLING_SIGNUP_PLAN).first()
    return plan or Plan.objects.get(is_signup_default=True)


def fallback_plan() -> Plan:
    return Plan.objects.get(is_fallback=True)


def billing_of(*, organization_id: int) -> OrganizationBilling:
    """The organization's row; a new organization starts on the signup plan (its trial if any)."""
    row = OrganizationBilling.objects.select_related("plan").filter(organization_id=organization_id).first()
    if row is not None:
        return row
    from tenants.models import Organization

    plan = signup_plan()
    now = clock.now()
    # An organization older than billing starts with what it already has counted.
    counted = usage_counted(organization=Organization.objects.get(pk=organization_id))
    try:
        with transaction.atomic():
            return OrganizationBilling.objects.create(
                organization_id=organization_id, plan=plan, activated_at=now, **counted,
                status=SubscriptionStatus.TRIALING if plan.trial_days else SubscriptionStatus.ACTIVE,
                trial_ends_at=now + timedelta(days=plan.trial_days) if plan.trial_days else None)
    except IntegrityError:  # made by a concurrent first need
        return OrganizationBilling.objects.select_related("plan").get(organization_id=organization_id)


def usage_counted(*, organization) -> dict[str, int]:
    """What the counters should say, from the tables (the organization's schema and the public one)."""
    from django_tenants.utils import tenant_context

    from accounts.models import INACTIVE_ROLES, Membership
    from labeling.models import Annotation, Project
    from storages.models import Storage

    seats = Membership.objects.filter(organization=organization).exclude(role__in=INACTIVE_ROLES).count()
    with tenant_context(organization):
        storages = Storage.objects.values_list("direction", flat=True)
        return {
            "projects": Project.objects.count(), "seats": seats, "results": Annotation.objects.count(),
            "import_storages": sum(1 for d in storages if d == Storage.Direction.IMPORT),
            "export_storages": sum(1 for d in storages if d == Storage.Direction.EXPORT),
        }


def usage_of(row: OrganizationBilling, *, organization) -> dict[str, int]:
    """Usage by counted thing: the counter where the plan limits it; counted from the tables where
    it does not (billing.limits keeps no counter then)."""
    usage = {counted: getattr(row, counted) for counted in COUNTED}
    unlimited = [counted for counted in COUNTED if row.plan.limit_of(counted) is None]
    if unlimited:
        live = usage_counted(organization=organization)
        usage.update({counted: live[counted] for counted in unlimited})
    return usage


def is_read_only(row: OrganizationBilling) -> bool:
    return (row.status == SubscriptionStatus.PAST_DUE and row.grace_ends_at is not None
            and row.grace_ends_at <= clock.now())


def trial_days_left(row: OrganizationBilling) -> int:
    if row.status != SubscriptionStatus.TRIALING or row.trial_ends_at is None:
        return 0
    return max(0, (row.trial_ends_at - clock.now()).days)


def count_limit(row: OrganizationBilling, counted: str, *, count: int | None = None) -> dict:
    """LS's CountLimit; a plan without a limit shows 0 as LS does, with `unlimited` beside it.
    `count`: the usage (usage_of); by default the counter, which is right for a limited one."""
    count = getattr(row, counted) if count is None else count
    limit = row.plan.limit_of(counted)
    return {"count": count, "limit": limit if limit is not None else 0, "reached": limit is not None and count >= limit,
            "unlimited": limit is None,
            "warning": limit is not None and limit > 0 and count >= WARNING_SHARE * limit}


def billing_info(*, organization) -> dict:
    row = billing_of(organization_id=organization.pk)
    plan = row.plan
    usage = usage_of(row, organization=organization)
    checks = {counted: count_limit(row, counted, count=usage[counted]) for counted in COUNTED}
    users = checks.pop("seats")
    users["total"] = users["count"]
    expires = row.grace_ends_at if row.status == SubscriptionStatus.PAST_DUE else (
        row.trial_ends_at if row.status == SubscriptionStatus.TRIALING else row.current_period_end)
    billing_checks = {
        **checks, "users": users,
        "organization_is_active": not is_read_only(row) and organization.deleted_at is None,
        "is_license_expired": is_read_only(row), "is_license_warning": row.status == SubscriptionStatus.PAST_DUE,
        "license_issued": row.activated_at.date() if row.activated_at else None,
        "license_warning": row.grace_ends_at.date() if row.grace_ends_at else None,
        "license_expires": expires.date() if expires else None,
        "trial_days": trial_days_left(row),
        "prompts_enabled": False, "prompts_api_keys_enabled": False, "prompts_status": "Disabled",
        "prompts_expire": None, "prompts_warning": None, "is_prompts_expire": False, "is_prompts_warning": False,
        "plan": {"code": plan.code, "title": plan.title}, "status": row.status,
    }
    billing_flags = {
        "activated_at": row.activated_at,
        "allow_activity_log": plan.allows("activity_log"), "allow_sso": plan.allows("sso"),
        "allow_scim": plan.allows("scim"), "allow_organization_webhooks": plan.allows("webhooks"),
        "allow_storage_proxy": plan.allows("storage_proxy"), "allow_reviewing": plan.allows("reviewing"),
        "allow_ai": False, "allow_ask_ai": False, "allow_data_credentials": True, "allow_invite_people": True,
        "allow_invite_project_experts": True, "allow_nda": False, "automax_enabled": False,
        "automax_token_exists": False, "cloud_instance": True, "disable_members_page": False,
        "disable_project_imports": is_read_only(row), "early_adopter": False,
        "email_configured": bool(getattr(settings, "EMAIL_BACKEND", "")),
        "embed_domains": organization.embed_domains or [], "embed_enabled": bool(organization.embed_domains),
        "embed_settings": organization.embed_settings or {}, "manual_role_management": False,
        "manual_workspace_management": False, "secure_mode": False, "storage_persistence": True,
        "white_label_id": None,
    }
    return {"billing_checks": billing_checks, "billing_flags": billing_flags}
