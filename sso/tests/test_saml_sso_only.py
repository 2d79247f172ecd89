"""SSO-only with a real IdP: switched on after a passed test login, then members whose only
organization it is cannot log in with a password, password sessions are sent to the SAML login
(pages) or refused (API), and a session made by org A's IdP opens org A only."""

import pytest

from accounts import services as accounts
from accounts.models import Role
from conftest import PASSWORD

pytestmark = pytest.mark.django_db

SOLO = "solo@a.test"


@pytest.fixture
def sso_only_a(world, saml_a, api, client):
    """Org A tested and switched to SSO-only through its settings API, as an Owner does it."""
    client.force_login(world.owner_a.user)
    request = saml_a.start_login(client, test=True)
    assert saml_a.post(client, saml_a.response_to(request, email="owner@a.test")).status_code == 200
    assert saml_a.configure(api, sso_only=True)["sso_only"] is True
    client.logout()
    yield saml_a
    saml_a.configure(api, sso_only=False)  # drops the cached switch with the rolled-back row


@pytest.fixture
def solo(world):
    user = accounts.user_create(email=SOLO, password=PASSWORD)
    accounts.membership_set(user=user, organization=world.org_a, role=Role.ANNOTATOR)
    return user


def test_a_password_login_into_an_sso_only_organization_is_refused(world, sso_only_a, solo, client):
    answer = client.post("/accounts/login/", {"login": SOLO, "password": PASSWORD})
    assert answer.status_code == 302 and answer["Location"] == "/sso/login/?email=solo%40a.test"
    assert "_auth_user_id" not in client.session
    discovery = client.get(answer["Location"])
    assert b'value="solo@a.test"' in discovery.content
    # A member of another organization too still logs in with a password (for that one).
    accounts.membership_set(user=solo, organization=world.org_b, role=Role.ANNOTATOR)
    assert client.post("/accounts/login/", {"login": SOLO, "password": PASSWORD}).status_code == 302
    assert "_auth_user_id" in client.session


def test_a_password_session_is_sent_to_the_saml_login_and_refused_by_the_api(world, sso_only_a, solo, client, api):
    client.force_login(solo)
    page = client.get("/o/org-a/settings/members")
    assert page.status_code == 302 and page["Location"] == "/o/org-a/saml/login?next=/o/org-a/settings/members"
    followed = client.get(page["Location"])
    request = sso_only_a.idp.receive_authn_request(followed["Location"])
    assert request.relay_state == "/o/org-a/settings/members"
    refused = client.get("/o/org-a/api/current-user/whoami")
    assert refused.status_code == 403 and refused.json()["code"] == "sso_required"
    # API tokens are not affected.
    assert api.call("get", "/api/current-user/whoami", token=world.annotator_a.legacy_key).status_code == 200
    # Signing in through the IdP opens the page asked for.
    answer = sso_only_a.post(client, sso_only_a.response_to(request, email=SOLO), relay_state=request.relay_state)
    assert answer["Location"] == "/o/org-a/settings/members"
    assert client.get("/o/org-a/api/current-user/whoami").status_code == 200


def test_a_saml_session_of_org_a_is_refused_on_org_b(world, saml_a, solo, client):
    accounts.membership_set(user=solo, organization=world.org_b, role=Role.ANNOTATOR)
    assert saml_a.login(client, email=SOLO).status_code == 302
    assert client.get("/o/org-a/").status_code == 200
    other = client.get("/o/org-b/")
    assert other.status_code == 403 and b"another organization" in other.content
    assert client.get("/o/org-b/api/current-user/whoami").json()["code"] == "sso_other_organization"
