"""Plan limits at every creation point, exact under concurrency; usage follows what is created
and removed; read-only organizations create nothing; the reconcile job recounts; the official
SDK's billing.info() returns the real counts and limits."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django_tenants.utils import tenant_context
from label_studio_sdk import LabelStudio

from billing import services
from billing.models import OrganizationBilling, Plan
from billing.selectors import billing_of
from conftest import PASSWORD, in_org_a, ocr_result

RACERS = 20


@pytest.fixture
def tight(world):
    """Org A on a copy of the trial's limits (projects 3, seats 5, ...) with every feature, for one test; its counters
    recounted first (the world's fixtures make some rows directly)."""
    services.usage_reconcile(organization=world.org_a)

    def put(**limits):
        plan = Plan.objects.get(code="trial")
        copy = Plan.objects.create(code=f"tight-{uuid.uuid4().hex[:6]}", title="Tight",
                                   features=Plan.objects.get(code="enterprise").features,
                                   **{name: getattr(plan, name) for name in
                                      ("projects", "seats", "results", "import_storages", "export_storages")})
        for name, value in limits.items():
            setattr(copy, name, value)
        copy.save()
        services.plan_set(organization_id=world.org_a.pk, plan=copy)
        services.usage_reconcile(organization=world.org_a)
        return copy
    return put


@pytest.mark.django_db
def test_the_last_project_slot_then_a_clear_402_naming_the_limit(world, owner, tight):
    used = billing_of(organization_id=world.org_a.pk).projects
    tight(projects=used + 1)
    assert owner("post", "/api/projects/", {"title": "The last one"}).status_code == 201
    refused = owner("post", "/api/projects/", {"title": "One too many"})
    assert refused.status_code == 402
    body = refused.json()
    assert body["limit"] == "projects" and body["max"] == used + 1 and "projects" in body["detail"]
    assert billing_of(organization_id=world.org_a.pk).projects == used + 1
    # Deleting gives the slot back.
    project_id = owner("get", "/api/projects/?page_size=1&ordering=-id").json()["results"][0]["id"]
    assert owner("delete", f"/api/projects/{project_id}/").status_code == 204
    assert billing_of(organization_id=world.org_a.pk).projects == used
    assert owner("post", "/api/projects/", {"title": "Again"}).status_code == 201


@pytest.mark.django_db
def test_annotations_count_against_results(world, owner, tight):
    counted = billing_of(organization_id=world.org_a.pk).results
    tight(results=counted + 1)
    task = world.task_a
    assert owner("post", f"/api/tasks/{task.pk}/annotations/", {"result": ocr_result()}).status_code == 201
    refused = owner("post", f"/api/tasks/{task.pk}/annotations/", {"result": ocr_result()})
    assert refused.status_code == 402 and refused.json()["limit"] == "results"
    assert billing_of(organization_id=world.org_a.pk).results == counted + 1


@pytest.mark.django_db
def test_seats_invites_and_activation(world, owner, tight):
    from accounts.models import Membership, Role
    from accounts.services import user_create

    seats = billing_of(organization_id=world.org_a.pk).seats
    tight(seats=seats)
    newcomer = user_create(email=f"newcomer-{uuid.uuid4().hex[:6]}@a.test", password=PASSWORD)
    response = owner("post", "/api/users/", {"email": f"another-{uuid.uuid4().hex[:6]}@a.test"})
    assert response.status_code == 402 and response.json()["limit"] == "seats"
    # Deactivating a member frees a seat; reactivating one needs it again.
    response = owner("patch", f"/api/organizations/{world.org_a.pk}/memberships",
                     {"user_id": world.annotator_a.user.pk, "role": Role.DEACTIVATED})
    assert response.status_code == 200, response.content
    assert billing_of(organization_id=world.org_a.pk).seats == seats - 1
    from accounts import services as accounts

    accounts.membership_set(user=newcomer, organization=world.org_a, role=Role.ANNOTATOR)
    assert billing_of(organization_id=world.org_a.pk).seats == seats
    response = owner("patch", f"/api/organizations/{world.org_a.pk}/memberships",
                     {"user_id": world.annotator_a.user.pk, "role": Role.ANNOTATOR})
    assert response.status_code == 402 and response.json()["limit"] == "seats"
    assert Membership.objects.get(user=world.annotator_a.user, organization=world.org_a).role == Role.DEACTIVATED


@pytest.mark.django_db
def test_storages_count_per_direction(world, owner, tight, settings, tmp_path):
    settings.LOCAL_FILES_DOCUMENT_ROOT = str(tmp_path)
    (tmp_path / "org-a" / "x").mkdir(parents=True)
    tight(import_storages=billing_of(organization_id=world.org_a.pk).import_storages + 1)
    body = {"project": world.project_a.pk, "path": "x"}
    assert owner("post", "/api/storages/localfiles/", body).status_code == 201
    refused = owner("post", "/api/storages/localfiles/", body)
    assert refused.status_code == 402 and refused.json()["limit"] == "import_storages"


@pytest.mark.django_db
def test_a_read_only_organization_views_and_exports_but_creates_nothing(world, owner, annotator):
    from datetime import timedelta

    from platform_core import clock

    services.payment_failed(organization_id=world.org_a.pk)
    assert owner("post", "/api/projects/", {"title": "In grace"}).status_code == 201  # grace period
    OrganizationBilling.objects.filter(organization=world.org_a).update(grace_ends_at=clock.now() - timedelta(hours=1))
    refused = owner("post", "/api/projects/", {"title": "After grace"})
    assert refused.status_code == 402 and refused.json()["code"] == "organization_read_only"
    assert owner("post", f"/api/tasks/{world.task_a.pk}/annotations/", {"result": ocr_result()}).status_code == 402
    assert owner("get", "/api/projects/").status_code == 200
    assert owner("get", f"/api/projects/{world.project_a.pk}/export?exportType=JSON").status_code == 200
    info = owner("get", "/api/billing/info").json()["billing_checks"]
    assert info["organization_is_active"] is False and info["is_license_expired"] is True
    services.payment_succeeded(organization_id=world.org_a.pk)
    assert owner("post", "/api/projects/", {"title": "Paid again"}).status_code == 201


@pytest.mark.django_db
def test_reconcile_recounts_what_a_path_missed(world):
    services.usage_reconcile(organization=world.org_a)
    OrganizationBilling.objects.filter(organization=world.org_a).update(projects=999, results=0)
    changed = services.usage_reconcile(organization=world.org_a)
    real = in_org_a(world, lambda: __import__("labeling.models", fromlist=["Project"]).Project.objects.count())
    assert changed["projects"] == (999, real)
    assert billing_of(organization_id=world.org_a.pk).projects == real


@pytest.mark.django_db
def test_other_organizations_are_not_counted(world, owner):
    before_b = billing_of(organization_id=world.org_b.pk).projects
    assert owner("post", "/api/projects/", {"title": "A's"}).status_code == 201
    assert billing_of(organization_id=world.org_b.pk).projects == before_b


# --- races and the SDK, against daphne (committed data, an organization of their own) -------------

@pytest.fixture
def racing_org(django_db_blocker):
    """A new organization (signup) on a plan with one project slot left."""
    from accounts import services as accounts
    from labeling import services as labeling

    with django_db_blocker.unblock():
        owner, organization = accounts.signup(email=f"racer-{uuid.uuid4().hex[:6]}@billing.test", password=PASSWORD,
                                              organization_title=f"Racers {uuid.uuid4().hex[:4]}")
        key = accounts.legacy_token_issue(user=owner, organization=organization)
        plan = Plan.objects.create(code=f"race-{uuid.uuid4().hex[:6]}", title="Race", projects=3, seats=2,
                                   results=10)
        services.plan_set(organization_id=organization.pk, plan=plan)
        with tenant_context(organization):
            for n in range(2):
                labeling.project_create(user=owner, fields={"title": f"Existing {n}"})
    return organization, key  # left in place, as the browser tests' organizations: the test database goes


def test_twenty_concurrent_creations_for_the_last_slot_make_exactly_one(live_server_url, racing_org,
                                                                         django_db_blocker):
    organization, key = racing_org

    def create(n):
        return requests.post(f"{live_server_url}/o/{organization.slug}/api/projects/", json={"title": f"Racer {n}"},
                             headers={"Authorization": f"Token {key}"}, timeout=30)

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        answers = list(pool.map(create, range(RACERS)))
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [201] + [402] * (RACERS - 1), codes
    assert all(answer.json()["limit"] == "projects" for answer in answers if answer.status_code == 402)
    with django_db_blocker.unblock(), tenant_context(organization):
        from labeling.models import Project

        assert Project.objects.count() == 3
        assert billing_of(organization_id=organization.pk).projects == 3


def test_the_sdk_reads_the_real_counts_and_limits(live_server_url, racing_org):
    organization, key = racing_org
    info = LabelStudio(base_url=f"{live_server_url}/o/{organization.slug}/", api_key=key).billing.info()
    checks = info.billing_checks
    assert (checks.projects.count, checks.projects.limit, checks.projects.reached) == (2, 3, False)
    assert (checks.users.count, checks.users.limit) == (1, 2)
    assert (checks.results.count, checks.results.limit) == (0, 10)
    assert checks.organization_is_active is True
    assert info.billing_flags.allow_sso is False


@pytest.mark.django_db
def test_invites_and_scim_need_a_seat_too(world, tight, api):
    from accounts.invites import InviteRefused, invite_accept
    from accounts.services import user_create
    from sso.services import scim_token_create

    seats = billing_of(organization_id=world.org_a.pk).seats
    tight(seats=seats)
    newcomer = user_create(email=f"invitee-{uuid.uuid4().hex[:6]}@a.test", password=PASSWORD)
    from billing.limits import LimitReached

    with pytest.raises((LimitReached, InviteRefused)):
        invite_accept(invite=world.invite_a, user=newcomer)
    _, token = scim_token_create(organization=world.org_a, actor=world.owner_a.user, label="seats")
    response = api.call("post", "/o/org-a/scim/v2/Users", bearer=token, json={
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"scim-{uuid.uuid4().hex[:6]}@a.test"})
    assert response.status_code == 403 and "seats" in response.json()["detail"]
    assert billing_of(organization_id=world.org_a.pk).seats == seats


@pytest.mark.django_db
def test_a_trial_that_ends_unpaid_falls_back_to_free(world):
    from datetime import timedelta

    from billing.models import SubscriptionStatus
    from platform_core import clock

    services.plan_set(organization_id=world.org_a.pk, plan=Plan.objects.get(code="trial"),
                      status=SubscriptionStatus.TRIALING)
    OrganizationBilling.objects.filter(organization=world.org_a).update(trial_ends_at=clock.now() - timedelta(days=1))
    assert services.trials_end() >= 1
    row = billing_of(organization_id=world.org_a.pk)
    assert (row.plan.code, row.status) == ("free", SubscriptionStatus.CANCELED)
