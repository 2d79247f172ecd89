"""The billing page in Chromium: an Owner of a new organization (the trial) sees the plan and the
usage bars, a banner once near a limit, and Upgrade takes them to Stripe Checkout (a local fake
Stripe API behind daphne; the Checkout page itself is answered by the browser's route)."""

import re
import uuid

import pytest
from django.db import connection

from billing.tests.fake_stripe import FAKE_SECRET_KEY, fake_stripe_serving
from conftest import PASSWORD, _database_url_of, in_worker, start_daphne

pytestmark = pytest.mark.browser

TEAM_PRICE = "price_team_browser_test"




@pytest.fixture(scope="module")
def fake_stripe():
    with fake_stripe_serving() as fake:
        yield fake


@pytest.fixture(scope="module")
def server_url(world, django_db_blocker, fake_stripe):
    with django_db_blocker.unblock():
        url = _database_url_of(connection.settings_dict)
    server, base = start_daphne(url, extra_env={"STRIPE_SECRET_KEY": FAKE_SECRET_KEY,
                                                "STRIPE_API_BASE": fake_stripe.url})
    yield base
    server.terminate()
    server.wait(timeout=15)


def _trial_organization():
    """A signup on the trial plan (the tests' default is unlimited), 3 of its 5 seats taken, and
    Team on sale."""
    from accounts import services
    from billing import services as billing
    from billing.models import Plan

    owner, organization = services.signup(email=f"owner-{uuid.uuid4().hex[:6]}@billing.test", password=PASSWORD,
                                          organization_title=f"Billing {uuid.uuid4().hex[:4]}")
    billing.plan_set(organization_id=organization.pk, plan=Plan.objects.get(code="trial"), status="trialing")
    for n in range(3):
        member = services.user_create(email=f"m{n}-{uuid.uuid4().hex[:6]}@billing.test", password=PASSWORD)
        services.membership_set(user=member, organization=organization, role="AN")
    Plan.objects.filter(code="team").update(stripe_price_id=TEAM_PRICE)
    return {"slug": organization.slug, "email": owner.email}


@pytest.fixture(scope="module")
def scene(server_url, django_db_blocker):
    made = in_worker(django_db_blocker, _trial_organization)
    yield made
    in_worker(django_db_blocker, lambda: __import__("billing.models", fromlist=["Plan"]).Plan.objects
              .filter(code="team").update(stripe_price_id=""))


def test_the_owner_sees_usage_and_upgrades_through_checkout(chromium_browser, server_url, scene, fake_stripe):
    context = chromium_browser.new_context(viewport={"width": 1300, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{server_url}/accounts/login/")
        page.locator("input[name=login]").fill(scene["email"])
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("form button[type=submit]").first.click()
        page.wait_for_url(re.compile(r".*/o/[^/]+/$"))
        # 4 of 5 seats: the banner says so on every page, with a link for the Owner.
        banner = page.get_by_test_id("billing-banner")
        assert "for seats" in banner.inner_text()
        banner.get_by_role("link", name="Plan and billing").click()
        page.wait_for_url(re.compile(r".*/settings/billing/?$"))
        assert page.get_by_test_id("plan-title").inner_text() == "Free trial"
        seats = page.get_by_test_id("usage-seats")
        assert (seats.get_by_test_id("usage-count").inner_text(), seats.get_by_test_id("usage-limit").inner_text()) \
            == ("4", "5")
        assert seats.get_attribute("data-level") == "near"

        page.route("https://checkout.fake-stripe.test/**",
                   lambda route: route.fulfill(status=200, content_type="text/html", body="<h1>Fake Checkout</h1>"))
        page.get_by_test_id("plan-team").get_by_role("button", name="Upgrade to Team").click()
        page.wait_for_url(re.compile(r"https://checkout\.fake-stripe\.test/c/pay/.+"))
        [sent] = fake_stripe.sent("/v1/checkout/sessions")
        assert sent.form["line_items[0][price]"] == TEAM_PRICE
    finally:
        context.close()
