"""The three routing rules, the membership check, and the reset to public after every request."""

import pytest
from django.db import connection

from accounts.models import Membership, Role

pytestmark = pytest.mark.django_db

WHOAMI = "/api/current-user/whoami"


def test_rule1_org_prefix_serves_that_organization(world, api):
    response = api.call("get", f"/o/org-a{WHOAMI}", token=world.owner_a.legacy_key)
    assert response.status_code == 200
    assert response.json()["active_organization"] == world.org_a.pk


def test_rule1_unknown_slug_is_404(world, api):
    response = api.call("get", f"/o/no-such-org{WHOAMI}", token=world.owner_a.legacy_key)
    assert response.status_code == 404
    assert "no-such-org" in response.json()["detail"]


def test_rule1_token_of_another_organization_is_403(world, api):
    response = api.call("get", f"/o/org-a{WHOAMI}", token=world.owner_b.legacy_key)
    assert response.status_code == 403
    assert "another organization" in response.json()["detail"]


def test_rule2_bare_api_goes_to_the_credentials_organization(world, api):
    for member, organization in ((world.owner_a, world.org_a), (world.owner_b, world.org_b)):
        response = api.call("get", WHOAMI, token=member.legacy_key)
        assert response.status_code == 200
        assert response.json()["active_organization"] == organization.pk


def test_rule2_bare_api_with_session_uses_the_last_organization_visited(world, client):
    client.force_login(world.owner_a.user)
    assert client.get("/o/org-a/").status_code == 200
    assert client.get(WHOAMI).json()["active_organization"] == world.org_a.pk


def test_rule2_bare_api_without_credentials_is_401(world, client):
    response = client.get(WHOAMI)
    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication credentials were not provided."


def test_rule3_public_pages_and_open_endpoints(world, client):
    assert client.get("/").status_code == 200
    assert client.get("/api/version/").json()["edition"] == "Enterprise"
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/o/org-a/api/version/").status_code == 200


def test_org_page_requires_login_then_membership(world, client):
    response = client.get("/o/org-a/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/o/org-a/")

    client.force_login(world.owner_b.user)
    response = client.get("/o/org-a/")
    assert response.status_code == 403
    assert b"not a member" in response.content


@pytest.mark.parametrize("role", [Role.DEACTIVATED, Role.NOT_ACTIVATED])
def test_inactive_roles_are_refused(world, api, client, role):
    Membership.objects.filter(user=world.annotator_a.user, organization=world.org_a).update(role=role)
    assert api.call("get", f"/o/org-a{WHOAMI}", token=world.annotator_a.legacy_key).status_code == 403
    client.force_login(world.annotator_a.user)
    assert client.get("/o/org-a/").status_code == 403


def test_org_page_shows_name_role_and_the_projects_of_the_member(world, client):
    client.force_login(world.annotator_a.user)
    page = client.get("/o/org-a/").content.decode()
    assert "Org A" in page
    assert "Annotator" in page
    assert "A&#x27;s OCR project" in page


def test_org_page_of_an_annotator_in_no_project_says_so(world, client):
    from django_tenants.utils import tenant_context

    from labeling.models import ProjectMember

    with tenant_context(world.org_a):
        ProjectMember.objects.filter(user_id=world.annotator_a.user.pk).delete()
    client.force_login(world.annotator_a.user)
    page = client.get("/o/org-a/").content.decode()
    assert "No projects yet" in page
    assert "OCR project" not in page


def test_schema_is_reset_to_public_after_each_request(world, api):
    api.call("get", f"/o/org-a{WHOAMI}", token=world.owner_a.legacy_key)
    assert connection.schema_name == "public"
    api.call("get", "/o/no-such-org/", token=world.owner_a.legacy_key)
    assert connection.schema_name == "public"


def test_sdk_base_url_without_trailing_slash_still_refreshes(world, api):
    # urljoin("http://host/o/org-a", "api/token/refresh/") drops the slug: /o/api/... must work.
    response = api.call("post", "/o/api/token/refresh/", json={"refresh": world.owner_a.pat})
    assert response.status_code == 200
    assert "access" in response.json()
