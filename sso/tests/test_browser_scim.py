"""The SCIM settings page in a real browser (Debian's Chromium via Playwright): an Owner makes a SCIM
token (shown once, then usable by the IdP), maps groups, and revokes the token.

The live server commits, so the test works in an organization of its own.
"""

import json
import re
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import PASSWORD
from tests.test_browser_admin import in_worker, login

pytestmark = pytest.mark.browser

SUFFIX = uuid.uuid4().hex[:6]


def _build_organization() -> dict:
    from django_tenants.utils import tenant_context

    from accounts import services
    from workspaces.models import Workspace

    owner, organization = services.signup(
        email=f"owner-{SUFFIX}@scim-page.test", password=PASSWORD, organization_title=f"SCIM page {SUFFIX}",
    )
    with tenant_context(organization):
        Workspace.objects.create(title="Charters", created_by=owner)
    return {"slug": organization.slug, "email": owner.email, "organization_id": organization.pk}


@pytest.fixture(scope="module")
def organization(live_server_url, django_db_blocker) -> dict:
    return in_worker(django_db_blocker, _build_organization)


def _scim_get(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            json.loads(response.read())
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code


def _stored_mappings(organization_id: int):
    from sso.models import ScimSettings

    row = ScimSettings.objects.filter(organization_id=organization_id).first()
    return (row.roles_groups, row.workspaces_groups) if row else None


def test_an_owner_makes_a_scim_token_maps_groups_and_revokes_the_token(chromium_browser, live_server_url,
                                                                         organization, django_db_blocker):
    page = login(chromium_browser, live_server_url, organization["email"])
    try:
        page.goto(f"{live_server_url}/o/{organization['slug']}/settings/scim")
        base = page.get_by_test_id("scim-base-url")
        page.wait_for_function("() => document.querySelector('[data-testid=scim-base-url]').value !== ''")
        assert base.input_value().endswith(f"/o/{organization['slug']}/scim/v2/")

        page.get_by_label("Token label").fill("Okta production")
        page.get_by_role("button", name="Create token").click()
        page.get_by_test_id("scim-token-once").wait_for()  # shown once the token has come back
        token = page.get_by_test_id("scim-token-value").inner_text()
        assert re.fullmatch(r"scim_[\w-]{20,}", token)
        rows = page.locator("tr[data-testid=scim-token-row]")
        rows.filter(has_text="Okta production").wait_for()
        # What the IdP does with it: the endpoint answers, on the bare host too.
        assert _scim_get(f"{base.input_value()}ServiceProviderConfig", token) == 200
        assert _scim_get(f"{live_server_url}/scim/v2/Users", token) == 200
        page.get_by_role("button", name="Done").click()
        assert page.get_by_test_id("scim-token-value").inner_text() == ""

        page.get_by_role("button", name="Add a role mapping").click()
        page.get_by_test_id("map-roles").get_by_label("Group").fill("editors")
        page.get_by_test_id("map-roles").get_by_label("Role").select_option("Manager")
        page.get_by_role("button", name="Add a workspace mapping").click()
        page.get_by_test_id("map-workspaces").get_by_label("Group").fill("legal")
        page.get_by_role("button", name="Save group mappings").click()
        page.locator("#flash").filter(has_text="Group mappings saved").wait_for()
        assert in_worker(django_db_blocker, _stored_mappings, organization["organization_id"]) == (
            [["Manager", "editors"]], [["Charters", "legal"]])
        page.reload()
        page.get_by_test_id("map-roles").get_by_label("Group").wait_for()
        assert page.get_by_test_id("map-roles").get_by_label("Group").input_value() == "editors"

        # A mapping to nothing is refused on the page, naming the field; nothing stored changes.
        page.get_by_test_id("map-roles").get_by_label("Group").fill("")
        page.get_by_role("button", name="Save group mappings").click()
        page.locator("#scim-error li[data-field=roles_groups]").wait_for()
        assert in_worker(django_db_blocker, _stored_mappings, organization["organization_id"])[0] == [
            ["Manager", "editors"]]

        rows.filter(has_text="Okta production").get_by_role("button", name="Revoke").click()
        page.locator("#confirm-dialog").get_by_role("button", name="Revoke").click()
        rows.filter(has_text="Revoked").wait_for()
        assert _scim_get(f"{base.input_value()}Users", token) == 401
    finally:
        page.context.close()
