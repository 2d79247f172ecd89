"""Single sign-on end to end in a real browser (Debian's Chromium via Playwright), against a pysaml2
identity provider served over HTTP on this machine, the way Okta or Entra ID serve theirs:

- an Owner sets SAML up on the settings page (IdP metadata file, domain, group mappings), runs a test
  login through the IdP, and switches SSO-only on, which the page refuses before the test passed;
- a person the organization has never seen signs in from the login page's "single sign-on" link:
  the discovery page finds the organization by the email's domain, the IdP posts its signed answer
  to our ACS, and they land in the organization with the mapped role, workspace and project;
- a member of that SSO-only organization cannot log in with a password.

The live server commits, so the test works in an organization of its own.
"""

import re
import threading
import urllib.request
import uuid
from dataclasses import dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import PASSWORD
from sso.tests.saml_idp import TestIdentityProvider, encoded, key_pair_make
from tests.test_browser_admin import in_worker, login

pytestmark = pytest.mark.browser

SUFFIX = uuid.uuid4().hex[:6]
DOMAIN = f"sso-{SUFFIX}.test"


@dataclass
class Person:
    """Who the IdP signs in next (a real IdP would ask for a password here)."""

    email: str
    groups: list[str] = field(default_factory=list)
    first_name: str = ""


class HttpIdentityProvider:
    """The pysaml2 IdP behind `GET /idp/sso?SAMLRequest=...` (HTTP-Redirect in) answering with an
    auto-submitted HTTP-POST form to the SP's ACS (HTTP-POST out), as IdPs do."""

    def __init__(self, directory, *, sp_metadata: str):
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.entity_id = f"http://127.0.0.1:{self.http.server_port}/idp/metadata"
        self.idp = TestIdentityProvider(directory=directory, entity_id=self.entity_id,
                                        key_pair=key_pair_make(directory, f"http-idp-{SUFFIX}"),
                                        sp_metadata=[sp_metadata])
        self.person: Person | None = None
        self.requests_seen: list[str] = []
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def _handler(self):
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                url = f"http://127.0.0.1:{provider.http.server_port}{self.path}"
                if self.path.startswith("/idp/metadata"):
                    return self._answer(200, provider.idp.metadata_xml, "application/samlmetadata+xml")
                if not self.path.startswith("/idp/sso?") or provider.person is None:
                    return self._answer(404, "no such page", "text/plain")
                request = provider.idp.receive_authn_request(url)
                provider.requests_seen.append(request.id)
                person = provider.person
                attributes = {"groups": person.groups, "firstName": [person.first_name or "Sam"]}
                xml = provider.idp.login_response(email=person.email, attributes=attributes, in_response_to=request.id,
                                                  acs_url=request.acs_url, sp_entity_id=request.issuer)
                form = (f'<form method="post" action="{escape(request.acs_url)}">'
                        f'<input type="hidden" name="SAMLResponse" value="{escape(encoded(xml))}">'
                        f'<input type="hidden" name="RelayState" value="{escape(request.relay_state)}"></form>'
                        "<script>document.forms[0].submit()</script>")
                return self._answer(200, f"<!doctype html><title>IdP</title>{form}", "text/html")

            def _answer(self, status: int, body: str, content_type: str):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", f"{content_type}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler

    def close(self):
        self.http.shutdown()


def _build_organization() -> dict:
    from django_tenants.utils import tenant_context

    from accounts import services
    from labeling import services as labeling
    from workspaces.models import Workspace

    owner, organization = services.signup(email=f"owner@{DOMAIN}", password=PASSWORD,
                                          organization_title=f"SSO page {SUFFIX}")
    member = services.user_create(email=f"password-user@{DOMAIN}", password=PASSWORD)
    services.membership_set(user=member, organization=organization, role="AN")
    with tenant_context(organization):
        Workspace.objects.create(title="Charters", created_by=owner)
        project = labeling.project_create(user=owner, fields={"title": "Letters"})
    return {"slug": organization.slug, "organization_id": organization.pk, "owner": owner.email,
            "member": member.email, "project_id": project.pk}


@pytest.fixture(scope="module")
def organization(live_server_url, django_db_blocker) -> dict:
    return in_worker(django_db_blocker, _build_organization)


@pytest.fixture(scope="module")
def identity_provider(organization, live_server_url, tmp_path_factory):
    """The IdP, given our SP's metadata from its public URL (what an admin pastes into Okta)."""
    url = f"{live_server_url}/o/{organization['slug']}/saml/metadata"
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback
        sp_metadata = answer.read().decode()
    provider = HttpIdentityProvider(tmp_path_factory.mktemp("http-idp"), sp_metadata=sp_metadata)
    yield provider
    provider.close()


def _access_of(organization_id: int, email: str) -> tuple:
    from django_tenants.utils import tenant_context

    from accounts.models import Membership
    from labeling.models import ProjectMember, ProjectRole
    from tenants.models import Organization
    from workspaces.models import WorkspaceMembership

    membership = Membership.objects.select_related("user").get(organization_id=organization_id,
                                                                user__email=email)
    with tenant_context(Organization.objects.get(pk=organization_id)):
        user_id = membership.user_id
        return (membership.role,
                sorted(WorkspaceMembership.objects.filter(user_id=user_id).values_list("workspace__title", flat=True)),
                sorted(ProjectMember.objects.filter(user_id=user_id).values_list("project__title", flat=True)),
                dict(ProjectRole.objects.filter(user_id=user_id).values_list("project__title", "role")))


def test_sso_set_up_tested_enforced_and_used_in_the_browser(chromium_browser, live_server_url, organization,
                                                            identity_provider, django_db_blocker):
    base = f"{live_server_url}/o/{organization['slug']}"
    page = login(chromium_browser, live_server_url, organization["owner"])
    try:
        page.goto(f"{base}/settings/sso")
        page.wait_for_function("() => document.querySelector('[data-testid=sp-entity_id]').value !== ''")
        assert page.get_by_test_id("sp-entity_id").input_value() == f"{base}/saml/metadata"
        assert page.get_by_test_id("sp-acs_url").input_value() == f"{base}/saml/acs"

        # The admin's set-up: the IdP's metadata file, the domain, a preset, the group mappings.
        page.locator("#saml-metadata-file").set_input_files(files=[{
            "name": "idp-metadata.xml", "mimeType": "application/xml",
            "buffer": identity_provider.idp.metadata_xml.encode()}])
        page.wait_for_function("() => document.getElementById('saml-metadata-xml').value.includes('EntityDescriptor')")
        page.locator("#saml-domain").fill(DOMAIN)
        page.locator("#saml-provider").select_option("okta")
        page.get_by_role("button", name="Add a role mapping").click()
        page.get_by_test_id("map-roles").get_by_label("Group").fill("editors")
        page.get_by_test_id("map-roles").get_by_label("Role").select_option("Manager")
        page.get_by_role("button", name="Add a workspace mapping").click()
        page.get_by_test_id("map-workspaces").get_by_label("Group").fill("legal")
        page.get_by_role("button", name="Add a project mapping").click()
        page.get_by_test_id("map-projects").get_by_label("Group").fill("editors")
        page.get_by_test_id("map-projects").get_by_label("Project role").select_option("Reviewer")
        page.get_by_role("button", name="Save SAML settings").click()
        page.locator("#flash").filter(has_text="SAML settings saved").wait_for()
        page.get_by_test_id("idp-entity-id").filter(has_text=identity_provider.entity_id).wait_for()
        assert page.locator("#saml-mapping_email").input_value() == "email"  # the Okta preset

        # SSO-only is refused before a test login passed; the switch goes back off.
        page.get_by_test_id("sso-only").check()
        page.locator("#saml-sso-only-error").filter(has_text="test login").wait_for()
        assert not page.get_by_test_id("sso-only").is_checked()

        # The test login: through the IdP and back, checked like a login, changing nothing.
        identity_provider.person = Person(email=organization["owner"], groups=["editors"])
        page.get_by_role("link", name="Run a test login").click()
        page.get_by_test_id("saml-test-passed").wait_for()
        assert page.get_by_test_id("saml-test-email").inner_text() == organization["owner"]
        page.get_by_role("link", name="Back to the single sign-on settings").click()
        page.wait_for_function("() => document.querySelector('[data-testid=saml-tested]').textContent !== 'never'")
        page.get_by_test_id("sso-only").check()
        page.locator("#flash").filter(has_text="Single sign-on is now required").wait_for()
        page.reload()
        page.wait_for_function("() => document.querySelector('[data-testid=sso-only]').checked")
    finally:
        page.context.close()

    # A newcomer signs in from the login page: discovery by domain, the IdP, our ACS, the organization.
    newcomer = f"newcomer@{DOMAIN}"
    identity_provider.person = Person(email=newcomer, groups=["editors", "legal"], first_name="Nadia")
    context = chromium_browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto(f"{live_server_url}/accounts/login/")
        page.get_by_role("link", name="Sign in with single sign-on").click()
        page.get_by_label("Work email").fill(newcomer)
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(f"{base}/")
        assert "Letters" in page.get_by_test_id("project-item").all_inner_texts()
        assert in_worker(django_db_blocker, _access_of, organization["organization_id"], newcomer) == (
            "MA", ["Charters"], ["Letters"], {"Letters": "RE"})
    finally:
        context.close()

    # A member with a password: SSO-only sends them to single sign-on instead.
    context = chromium_browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto(f"{live_server_url}/accounts/login/")
        page.locator("input[name=login]").fill(organization["member"])
        page.locator("input[name=password]").fill(PASSWORD)
        page.locator("form button[type=submit]").first.click()
        page.wait_for_url(re.compile(r".*/sso/login/\?email="))
        assert page.get_by_role("alert").filter(has_text="single sign-on only").is_visible()
        assert page.get_by_label("Work email").input_value() == organization["member"]
        assert page.goto(f"{base}/").url.startswith(f"{live_server_url}/accounts/login/")
    finally:
        context.close()
