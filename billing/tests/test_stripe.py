"""Stripe: checkout and portal against a local fake of Stripe's API (what is sent is asserted), and
the webhook with events signed by the stripe library's own signing code: upgrades, payment
failures and recoveries, cancellations, replays, forged or stale signatures, and events about one
organization never touching another."""

import json
import time
import uuid
from datetime import timedelta

import pytest
import stripe

from billing import services
from billing.models import OrganizationBilling, Plan, StripeEvent, SubscriptionStatus
from billing.selectors import billing_of
from billing.tests.fake_stripe import FAKE_SECRET_KEY, fake_stripe_serving
from platform_core import clock

pytestmark = pytest.mark.django_db

TEAM_PRICE = "price_team_scriptorium_test"
WEBHOOK_SECRET = "whsec_scriptorium_test_secret"
WEBHOOK = "/billing/stripe/webhook"


@pytest.fixture
def fake_stripe(settings):
    """The app pointed at a fake Stripe on loopback, with a fake key and this module's webhook secret."""
    with fake_stripe_serving() as fake:
        settings.STRIPE_SECRET_KEY = FAKE_SECRET_KEY
        settings.STRIPE_API_BASE = fake.url
        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        settings.PUBLIC_URL = ""
        yield fake


@pytest.fixture
def team(db):
    plan = Plan.objects.get(code="team")
    plan.stripe_price_id = TEAM_PRICE
    plan.save()
    return plan


def state_of(organization) -> dict:
    billing_of(organization_id=organization.pk)
    row = OrganizationBilling.objects.select_related("plan").get(organization=organization)
    return {"plan": row.plan.code, "status": row.status, "grace_ends_at": row.grace_ends_at,
            "current_period_end": row.current_period_end, "customer": row.stripe_customer_id,
            "subscription": row.stripe_subscription_id}


# --- signed events -------------------------------------------------------------------------------

def event_of(event_type: str, obj: dict, *, event_id: str | None = None) -> dict:
    return {"id": event_id or f"evt_{uuid.uuid4().hex}", "object": "event", "type": event_type,
            "api_version": "2025-03-31.basil", "created": int(time.time()), "livemode": False,
            "data": {"object": obj}}


def subscription_of(organization, *, status="active", price=TEAM_PRICE, subscription_id="sub_a1",
                    customer="cus_a1", period_end=None, metadata=True) -> dict:
    period_end = period_end or int(time.time()) + 30 * 86400
    return {"id": subscription_id, "object": "subscription", "customer": customer, "status": status,
            "metadata": {"organization_id": str(organization.pk)} if metadata else {},
            "items": {"object": "list", "data": [
                {"id": f"si_{subscription_id}", "object": "subscription_item", "current_period_end": period_end,
                 "price": {"id": price, "object": "price"}}]}}


def invoice_of(organization, *, subscription_id="sub_a1", customer="cus_a1", period_end=None) -> dict:
    period_end = period_end or int(time.time()) + 30 * 86400
    return {"id": f"in_{uuid.uuid4().hex[:12]}", "object": "invoice", "customer": customer,
            "parent": {"type": "subscription_details", "subscription_details": {
                "subscription": subscription_id, "metadata": {"organization_id": str(organization.pk)}}},
            "lines": {"object": "list", "data": [{"period": {"start": period_end - 30 * 86400, "end": period_end}}]}}


def deliver(client, event: dict, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None,
            body: str | None = None, signature: str | None = None):
    payload = json.dumps(event)
    header = signature if signature is not None else stripe.WebhookSignature.generate_signature_header(
        payload, secret, timestamp=timestamp)
    headers = {"Stripe-Signature": header} if header else {}
    return client.post(WEBHOOK, data=body if body is not None else payload, content_type="application/json",
                       headers=headers)


def upgrade_a_to_team(client, world, *, subscription_id="sub_a1", customer="cus_a1"):
    completed = deliver(client, event_of("checkout.session.completed", {
        "id": "cs_test_a", "object": "checkout.session", "mode": "subscription",
        "client_reference_id": str(world.org_a.pk), "metadata": {"organization_id": str(world.org_a.pk)},
        "customer": customer, "subscription": subscription_id}))
    created = deliver(client, event_of("customer.subscription.created", subscription_of(
        world.org_a, subscription_id=subscription_id, customer=customer)))
    assert completed.status_code == created.status_code == 200, (completed.content, created.content)


# --- checkout and portal ---------------------------------------------------------------------------

def test_checkout_returns_stripes_page_and_sent_the_price_customer_and_organization(world, owner, fake_stripe,
                                                                                     team):
    response = owner("post", "/api/billing/checkout", {"plan": "team"})
    assert response.status_code == 200, response.content
    [customer] = fake_stripe.sent("/v1/customers")
    [session] = fake_stripe.sent("/v1/checkout/sessions")
    assert response.json()["url"] == f"https://checkout.fake-stripe.test/c/pay/cs_test_fake{len(fake_stripe.requests)}"
    org_id = str(world.org_a.pk)
    assert customer.authorization == f"Bearer {FAKE_SECRET_KEY}" == session.authorization
    assert customer.form["metadata[organization_id]"] == org_id and customer.form["name"] == "Org A"
    assert customer.headers.get("Idempotency-Key")
    sent = session.form
    assert sent["mode"] == "subscription" and sent["line_items[0][price]"] == TEAM_PRICE
    assert sent["line_items[0][quantity]"] == "1"
    assert sent["customer"] == "cus_fake1" == state_of(world.org_a)["customer"]
    assert sent["client_reference_id"] == org_id
    assert sent["metadata[organization_id]"] == org_id == sent["subscription_data[metadata][organization_id]"]
    assert sent["success_url"].startswith("http://testserver/o/org-a/settings/billing?checkout=success")
    assert "{CHECKOUT_SESSION_ID}" in sent["success_url"]
    assert sent["cancel_url"].startswith("http://testserver/o/org-a/settings/billing")
    # The plan does not change until Stripe says it is paid.
    assert state_of(world.org_a)["plan"] == "enterprise"

    # A second checkout reuses the organization's customer.
    assert owner("post", "/api/billing/checkout", {"plan": "team"}).status_code == 200
    assert len(fake_stripe.sent("/v1/customers")) == 1
    assert fake_stripe.sent("/v1/checkout/sessions")[-1].form["customer"] == "cus_fake1"


def test_the_portal_opens_for_the_organizations_customer(world, owner, fake_stripe):
    refused = owner("post", "/api/billing/portal")
    assert refused.status_code == 409 and "checkout" in refused.json()["detail"]
    services.plan_set(organization_id=world.org_a.pk, plan=billing_of(organization_id=world.org_a.pk).plan,
                      stripe_customer_id="cus_a_existing")
    response = owner("post", "/api/billing/portal")
    assert response.status_code == 200, response.content
    [sent] = fake_stripe.sent("/v1/billing_portal/sessions")
    assert response.json()["url"].startswith("https://billing.fake-stripe.test/p/session/bps_fake")
    assert sent.form == {"customer": "cus_a_existing", "return_url": "http://testserver/o/org-a/settings/billing"}
    assert sent.authorization == f"Bearer {FAKE_SECRET_KEY}"


def test_checkout_errors_are_clear_and_never_carry_the_key(world, owner, fake_stripe, team, settings):
    no_price = owner("post", "/api/billing/checkout", {"plan": "enterprise"})
    assert no_price.status_code == 400 and "plan" in no_price.json()["validation_errors"]
    unknown = owner("post", "/api/billing/checkout", {"plan": "platinum"})
    assert unknown.status_code == 400 and "plan" in unknown.json()["validation_errors"]
    missing = owner("post", "/api/billing/checkout", {})
    assert missing.status_code == 400 and "plan" in missing.json()["validation_errors"]
    assert fake_stripe.requests == []

    fake_stripe.fail_next(message=f"No such price: '{TEAM_PRICE}' (key {FAKE_SECRET_KEY})")
    refused = owner("post", "/api/billing/checkout", {"plan": "team"})
    assert refused.status_code == 502 and "Stripe" in refused.json()["detail"]
    assert FAKE_SECRET_KEY.encode() not in refused.content and b"No such price" not in refused.content

    settings.STRIPE_SECRET_KEY = ""
    unconfigured = owner("post", "/api/billing/checkout", {"plan": "team"})
    assert unconfigured.status_code == 503 and "not configured" in unconfigured.json()["detail"]


def test_an_annotator_can_neither_check_out_nor_open_the_portal(world, annotator, fake_stripe, team):
    for path, body in (("/api/billing/checkout", {"plan": "team"}), ("/api/billing/portal", None)):
        response = annotator("post", path, body)
        assert response.status_code == 403, (path, response.content)
        assert "billing.change" in response.json()["detail"]
    assert fake_stripe.requests == []


def test_an_active_subscription_is_changed_in_the_portal_not_bought_twice(world, owner, fake_stripe, team, client):
    upgrade_a_to_team(client, world)
    response = owner("post", "/api/billing/checkout", {"plan": "team"})
    assert response.status_code == 409 and "portal" in response.json()["detail"]
    assert fake_stripe.requests == []


# --- webhook: the subscription's life --------------------------------------------------------------

def test_a_completed_checkout_and_its_subscription_upgrade_a_to_team(world, client, fake_stripe, team):
    period_end = int(time.time()) + 31 * 86400
    deliver(client, event_of("checkout.session.completed", {
        "id": "cs_test_a", "object": "checkout.session", "mode": "subscription",
        "client_reference_id": str(world.org_a.pk), "metadata": {"organization_id": str(world.org_a.pk)},
        "customer": "cus_a1", "subscription": "sub_a1"}))
    linked = state_of(world.org_a)
    assert (linked["customer"], linked["subscription"], linked["plan"]) == ("cus_a1", "sub_a1", "enterprise")
    response = deliver(client, event_of("customer.subscription.created",
                                        subscription_of(world.org_a, period_end=period_end)))
    assert response.status_code == 200 and response.json()["status"] == "handled"
    upgraded = state_of(world.org_a)
    assert (upgraded["plan"], upgraded["status"]) == ("team", SubscriptionStatus.ACTIVE)
    assert int(upgraded["current_period_end"].timestamp()) == period_end
    assert StripeEvent.objects.filter(organization=world.org_a).count() == 2


def test_a_replayed_event_changes_nothing(world, client, fake_stripe, team):
    created = event_of("customer.subscription.created", subscription_of(world.org_a))
    assert deliver(client, created).json()["status"] == "handled"
    assert state_of(world.org_a)["plan"] == "team"
    # Something else happens in between; the replay must not undo it.
    services.payment_failed(organization_id=world.org_a.pk)
    between = state_of(world.org_a)
    replay = deliver(client, created)
    assert replay.status_code == 200 and replay.json()["status"] == "replayed"
    assert state_of(world.org_a) == between
    assert StripeEvent.objects.filter(event_id=created["id"]).count() == 1


@pytest.mark.parametrize("forgery", ["tampered body", "wrong secret", "too old", "no signature", "garbage header"])
def test_forged_or_stale_events_are_refused_and_change_nothing(world, client, fake_stripe, team, forgery):
    before = state_of(world.org_a)
    event = event_of("customer.subscription.created", subscription_of(world.org_a))
    kwargs = {
        "tampered body": {"body": json.dumps(event).replace(TEAM_PRICE, "price_of_my_choosing")},
        "wrong secret": {"secret": "whsec_someone_elses"},
        "too old": {"timestamp": int(time.time()) - 301},
        "no signature": {"signature": ""},
        "garbage header": {"signature": "t=notanumber,v1=zzz"},
    }[forgery]
    response = deliver(client, event, **kwargs)
    assert response.status_code == 400, response.content
    assert WEBHOOK_SECRET.encode() not in response.content
    assert state_of(world.org_a) == before
    assert not StripeEvent.objects.filter(event_id=event["id"]).exists()


def test_no_webhook_secret_configured_is_a_503(world, client, fake_stripe, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    response = deliver(client, event_of("invoice.paid", invoice_of(world.org_a)))
    assert response.status_code == 503


def test_a_failed_payment_gives_grace_and_a_paid_invoice_restores_active(world, client, fake_stripe, team, settings):
    upgrade_a_to_team(client, world)
    deliver(client, event_of("invoice.payment_failed", invoice_of(world.org_a)))
    failed = state_of(world.org_a)
    assert (failed["plan"], failed["status"]) == ("team", SubscriptionStatus.PAST_DUE)
    expected_grace = clock.now() + timedelta(days=settings.BILLING_GRACE_DAYS)
    assert abs((failed["grace_ends_at"] - expected_grace).total_seconds()) < 60

    period_end = int(time.time()) + 62 * 86400
    deliver(client, event_of("invoice.paid", invoice_of(world.org_a, period_end=period_end)))
    paid = state_of(world.org_a)
    assert (paid["plan"], paid["status"], paid["grace_ends_at"]) == ("team", SubscriptionStatus.ACTIVE, None)
    assert int(paid["current_period_end"].timestamp()) == period_end


def test_a_past_due_subscription_update_starts_the_grace_period(world, client, fake_stripe, team):
    upgrade_a_to_team(client, world)
    deliver(client, event_of("customer.subscription.updated", subscription_of(world.org_a, status="past_due")))
    assert state_of(world.org_a)["status"] == SubscriptionStatus.PAST_DUE
    deliver(client, event_of("customer.subscription.updated", subscription_of(world.org_a, status="active")))
    assert state_of(world.org_a)["status"] == SubscriptionStatus.ACTIVE


def test_a_deleted_subscription_falls_back_to_free(world, client, fake_stripe, team):
    upgrade_a_to_team(client, world)
    response = deliver(client, event_of("customer.subscription.deleted",
                                        subscription_of(world.org_a, status="canceled")))
    assert response.status_code == 200 and response.json()["status"] == "handled"
    ended = state_of(world.org_a)
    assert (ended["plan"], ended["status"], ended["subscription"]) == ("free", SubscriptionStatus.CANCELED, "")
    # The billing page shows it.
    client.force_login(world.owner_a.user)
    page = client.get("/o/org-a/settings/billing").content.decode()
    assert 'data-testid="plan-title">Free<' in page and "No subscription" in page


def test_an_old_subscription_ending_after_a_new_one_started_is_ignored(world, client, fake_stripe, team):
    upgrade_a_to_team(client, world, subscription_id="sub_a_new")
    response = deliver(client, event_of("customer.subscription.deleted", subscription_of(
        world.org_a, status="canceled", subscription_id="sub_a_old")))
    assert response.json()["status"] == "ignored"
    assert (state_of(world.org_a)["plan"], state_of(world.org_a)["status"]) == ("team", SubscriptionStatus.ACTIVE)


def test_events_found_by_stored_ids_when_there_is_no_metadata(world, client, fake_stripe, team):
    upgrade_a_to_team(client, world)
    deliver(client, event_of("customer.subscription.updated",
                             subscription_of(world.org_a, status="unpaid", metadata=False)))
    assert state_of(world.org_a)["status"] == SubscriptionStatus.PAST_DUE


# --- webhook: other organizations, unknown things -------------------------------------------------

def test_events_about_b_never_touch_a(world, client, fake_stripe, team):
    upgrade_a_to_team(client, world)
    before_a = state_of(world.org_a)
    # B's own subscription, by B's metadata; then B's failure found by B's customer id alone.
    invoice = invoice_of(world.org_b, subscription_id="sub_b1", customer="cus_b1")
    invoice["parent"]["subscription_details"]["metadata"] = {}
    events_of_b = [
        event_of("customer.subscription.created", subscription_of(world.org_b, subscription_id="sub_b1",
                                                                  customer="cus_b1")),
        event_of("invoice.payment_failed", invoice),
    ]
    for event in events_of_b:
        assert deliver(client, event).json()["status"] == "handled"
    b = state_of(world.org_b)
    assert (b["plan"], b["status"], b["customer"]) == ("team", SubscriptionStatus.PAST_DUE, "cus_b1")
    ended = event_of("customer.subscription.deleted", subscription_of(
        world.org_b, status="canceled", subscription_id="sub_b1", customer="cus_b1"))
    deliver(client, ended)
    assert state_of(world.org_b)["plan"] == "free"
    assert state_of(world.org_a) == before_a
    recorded = StripeEvent.objects.filter(event_id__in=[event["id"] for event in [*events_of_b, ended]])
    assert set(recorded.values_list("organization_id", flat=True)) == {world.org_b.pk}


def test_events_of_no_known_organization_or_unknown_type_are_recorded_and_ignored(world, client, fake_stripe,
                                                                                  team):
    before = state_of(world.org_a)
    stranger = subscription_of(world.org_a, subscription_id="sub_stranger", customer="cus_stranger",
                               metadata=False)
    unknown_org = event_of("customer.subscription.created", stranger)
    response = deliver(client, unknown_org)
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    assert StripeEvent.objects.get(event_id=unknown_org["id"]).organization_id is None
    unknown_type = event_of("customer.tax_id.created", {"id": "txi_1", "object": "tax_id"})
    response = deliver(client, unknown_type)
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    assert StripeEvent.objects.filter(event_id=unknown_type["id"]).exists()
    assert state_of(world.org_a) == before
