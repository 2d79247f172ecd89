"""The billing page (plan, state, usage bars, plans on offer) and the banner every organization
page shows near or over a limit, past due or read-only; features a plan lacks are refused with
the feature named."""

import uuid
from datetime import timedelta

import pytest

from billing import services
from billing.models import OrganizationBilling, Plan
from platform_core import clock

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client):
    def login(member):
        client.force_login(member.user)
        return client
    return login


@pytest.fixture
def on_plan(world):
    def put(code: str, **limits) -> Plan:
        services.usage_reconcile(organization=world.org_a)
        plan = Plan.objects.get(code=code)
        if limits:  # only these limits (the others none), the plan's features
            plan = Plan.objects.create(code=f"{code}-{uuid.uuid4().hex[:6]}", title=plan.title, features=plan.features,
                                       **limits)
        services.plan_set(organization_id=world.org_a.pk, plan=plan)
        return plan
    return put


def test_the_page_shows_the_plan_and_usage_bars(world, signed_in, on_plan):
    on_plan("team")
    page = signed_in(world.owner_a).get("/o/org-a/settings/billing")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-testid="plan-title">Team<' in text
    assert 'data-testid="usage-projects"' in text and 'data-testid="plan-enterprise"' in text
    projects = OrganizationBilling.objects.get(organization=world.org_a).projects
    assert f'data-testid="usage-count">{projects}<' in text


def test_only_admins_see_the_page_and_only_owners_change_the_plan(world, signed_in):
    assert signed_in(world.annotator_a).get("/o/org-a/settings/billing").status_code == 403
    assert signed_in(world.manager_a).get("/o/org-a/settings/billing").status_code == 403
    assert signed_in(world.admin_a).get("/o/org-a/settings/billing").status_code == 200


def test_a_banner_near_and_over_a_limit(world, signed_in, on_plan):
    services.usage_reconcile(organization=world.org_a)
    seats = OrganizationBilling.objects.get(organization=world.org_a).seats
    projects = OrganizationBilling.objects.get(organization=world.org_a).projects
    on_plan("trial", seats=seats + 1)  # 80% or more of the limit used
    home = signed_in(world.owner_a).get("/o/org-a/").content.decode()
    assert 'data-testid="billing-banner"' in home and "Close to your plan" in home and "for seats" in home
    on_plan("trial", projects=projects)
    home = signed_in(world.annotator_a).get("/o/org-a/").content.decode()
    assert "limit is reached for projects" in home
    assert "/settings/billing" not in home  # no link for those who cannot open it
    on_plan("enterprise")
    assert 'data-testid="billing-banner"' not in signed_in(world.owner_a).get("/o/org-a/").content.decode()


def test_past_due_then_read_only_banners(world, signed_in, on_plan):
    on_plan("team")
    services.payment_failed(organization_id=world.org_a.pk)
    assert "A payment failed" in signed_in(world.owner_a).get("/o/org-a/").content.decode()
    OrganizationBilling.objects.filter(organization=world.org_a).update(grace_ends_at=clock.now() - timedelta(days=1))
    page = signed_in(world.owner_a).get("/o/org-a/settings/billing").content.decode()
    assert "read-only" in page


def test_a_cancelled_subscription_shows_the_fallback_plan(world, signed_in, on_plan):
    on_plan("team")
    services.subscription_ended(organization_id=world.org_a.pk)
    page = signed_in(world.owner_a).get("/o/org-a/settings/billing").content.decode()
    assert 'data-testid="plan-title">Free<' in page and "No subscription" in page


def test_features_the_plan_lacks_are_refused_naming_them(world, owner, on_plan, api):
    from sso.services import scim_token_create

    _, scim_token = scim_token_create(organization=world.org_a, actor=world.owner_a.user, label="before")
    assert api.call("get", "/o/org-a/scim/v2/Users", bearer=scim_token).status_code == 200
    on_plan("team")  # no SSO, no SCIM
    refused = owner("post", "/api/saml/settings", {"domains": ["a.example"]})
    assert refused.status_code == 402 and refused.json()["feature"] == "sso"
    refused = owner("post", "/api/scim/tokens", {"label": "okta"})
    assert refused.status_code == 402 and refused.json()["feature"] == "scim"
    refused = api.call("get", "/o/org-a/scim/v2/Users", bearer=scim_token)
    assert refused.status_code == 403 and "SCIM" in refused.json()["detail"]
    on_plan("free")  # no webhooks, no activity log
    refused = owner("post", "/api/webhooks/", {"url": "https://hooks.example.test/x"})
    assert refused.status_code == 402 and refused.json()["feature"] == "webhooks"
    assert owner("get", "/api/activity-logs/").status_code == 402
    on_plan("enterprise")
    assert owner("get", "/api/activity-logs/").status_code == 200
