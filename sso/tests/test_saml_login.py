"""SAML logins through a real pysaml2 IdP: just-in-time provisioning with the mapped role, workspaces
and projects, access re-synced on every login, IdP-initiated logins, signed AuthnRequests, our SP
metadata, the test login and the email-domain discovery page."""

import pytest
from django_tenants.utils import tenant_context
from lxml import etree
from saml2.response import IncorrectlySigned

from accounts import services as accounts
from accounts.models import Membership, Role, User
from conftest import PASSWORD
from labeling.models import Project, ProjectMember, ProjectRole
from platform_core.crypto import decrypt
from sso.models import SamlSettings, SsoGrant
from sso.sessions import SSO_NAME_ID_KEY, SSO_ORGANIZATION_KEY
from sso.tests.saml_idp import NS, TestIdentityProvider, query_of
from workspaces.models import Workspace, WorkspaceMembership

pytestmark = pytest.mark.django_db

NEWCOMER = "newcomer@a.test"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"


@pytest.fixture
def mapped(world, saml_a, api):
    """Org A maps editors -> Manager + workspace Legal + Reviewer on project Charters; staff -> Annotator."""
    with tenant_context(world.org_a):
        legal = Workspace.objects.create(title="Legal", created_by=world.owner_a.user)
        charters = Project.objects.create(title="Charters", created_by=world.owner_a.user)
    saml_a.configure(api, roles_groups=[["Manager", "editors"], ["Annotator", "staff"]],
                     workspaces_groups=[["Legal", "editors"]],
                     projects_groups=[{"project_id": charters.pk, "group": "editors", "role": "Reviewer"}])
    return legal, charters


def _access(world, user):
    role = Membership.objects.get(user=user, organization=world.org_a).role
    with tenant_context(world.org_a):
        return (role,
                set(WorkspaceMembership.objects.filter(user_id=user.pk).values_list("workspace__title", flat=True)),
                set(ProjectMember.objects.filter(user_id=user.pk).values_list("project__title", flat=True)),
                dict(ProjectRole.objects.filter(user_id=user.pk).values_list("project__title", "role")))


def test_a_first_login_provisions_the_mapped_access_and_lands_in_the_organization(world, saml_a, mapped, client):
    answer = saml_a.login(client, email="Newcomer@A.test", groups=["editors", "staff"], first_name="Nia",
                          last_name="Okafor")
    assert answer.status_code == 302 and answer["Location"] == "/o/org-a/"
    user = User.objects.get(email=NEWCOMER)
    assert (user.first_name, user.last_name, user.has_usable_password()) == ("Nia", "Okafor", False)
    assert _access(world, user) == ("MA", {"Legal"}, {"Charters"}, {"Charters": "RE"})
    assert int(client.session["_auth_user_id"]) == user.pk
    assert client.session[SSO_ORGANIZATION_KEY] == world.org_a.pk
    assert client.session[SSO_NAME_ID_KEY] == "Newcomer@A.test"
    home = client.get("/o/org-a/")
    assert home.status_code == 200 and NEWCOMER.encode() in home.content


def test_a_group_removed_in_the_idp_takes_its_access_back_at_the_next_login(world, saml_a, mapped, client):
    saml_a.login(client, email=NEWCOMER, groups=["editors", "staff"])
    client.logout()
    assert saml_a.login(client, email=NEWCOMER, groups=["staff"]).status_code == 302
    user = User.objects.get(email=NEWCOMER)
    assert _access(world, user) == ("AN", set(), set(), {})
    assert not SsoGrant.objects.filter(user=user, kind__in=["workspace", "project", "project_role"]).exists()


def test_without_a_mapped_group_a_newcomer_gets_the_default_role(world, saml_a, client):
    assert saml_a.login(client, email=NEWCOMER, groups=["unmapped"]).status_code == 302
    assert Membership.objects.get(user__email=NEWCOMER, organization=world.org_a).role == world.org_a.default_role


def test_the_email_can_come_from_the_name_id(world, saml_a, api, client):
    saml_a.configure(api, mapping_email="not-sent-by-the-idp")
    request = saml_a.start_login(client)
    xml = saml_a.response_to(request, email="someone-else@a.test", name_id=NEWCOMER)
    assert saml_a.post(client, xml).status_code == 302
    assert User.objects.filter(email=NEWCOMER).exists() and not User.objects.filter(email="someone-else@a.test")


def test_an_existing_account_is_linked_and_renamed_only_when_it_belongs_to_this_organization_alone(
        world, saml_a, client):
    elsewhere = accounts.user_create(email="both@a.test", password=PASSWORD, first_name="Kept")
    accounts.membership_set(user=elsewhere, organization=world.org_b, role=Role.ANNOTATOR)
    saml_a.login(client, email="both@a.test", first_name="Changed")
    elsewhere.refresh_from_db()
    assert elsewhere.first_name == "Kept" and elsewhere.has_usable_password()
    assert Membership.objects.get(user=elsewhere, organization=world.org_a).role == world.org_a.default_role
    client.logout()

    ours = accounts.user_create(email="ours@a.test", password=PASSWORD, first_name="Old")
    accounts.membership_set(user=ours, organization=world.org_a, role=Role.REVIEWER)
    saml_a.login(client, email="ours@a.test", first_name="New", last_name="Name")
    ours.refresh_from_db()
    assert (ours.first_name, ours.last_name) == ("New", "Name")
    assert int(client.session["_auth_user_id"]) == ours.pk


def test_an_owner_keeps_the_owner_role(world, saml_a, mapped, client):
    saml_a.login(client, email="owner@a.test", groups=["staff"])
    assert Membership.objects.get(user=world.owner_a.user, organization=world.org_a).role == Role.OWNER


def test_next_is_kept_inside_the_organization(saml_a, client):
    assert saml_a.start_login(client, next_path="/o/org-a/settings/members").relay_state == "/o/org-a/settings/members"
    for elsewhere in ("https://evil.example.com/", "/o/org-b/", "//evil.example.com/", "/o/org-a/../org-b/x"):
        assert saml_a.start_login(client, next_path=elsewhere).relay_state == "/o/org-a/"
    request = saml_a.start_login(client, next_path="/o/org-a/settings/members")
    answer = saml_a.post(client, saml_a.response_to(request, email=NEWCOMER), relay_state="https://evil.example.com/")
    assert answer["Location"] == "/o/org-a/settings/members"  # the relay state we stored, not the posted one


def test_idp_initiated_login_works_once_allowed(world, saml_a, api, client, assert_refused):
    assert_refused(saml_a.post(client, saml_a.response_to(None, email=NEWCOMER)), email=NEWCOMER, status=403)
    saml_a.configure(api, allow_idp_initiated=True)
    answer = saml_a.post(client, saml_a.response_to(None, email=NEWCOMER), relay_state="/o/org-a/settings/members")
    assert answer.status_code == 302 and answer["Location"] == "/o/org-a/settings/members"
    assert int(client.session["_auth_user_id"]) == User.objects.get(email=NEWCOMER).pk
    client.logout()
    answer = saml_a.post(client, saml_a.response_to(None, email=NEWCOMER), relay_state="https://evil.example.com/")
    assert answer["Location"] == "/o/org-a/"


def test_signed_authn_requests_carry_a_signature_the_idp_verifies(saml_a, saml_keys, api, client):
    strict_idp = TestIdentityProvider(directory=saml_keys.directory, entity_id=saml_a.idp.entity_id,
                                      key_pair=saml_keys.idp_a, requests_signed=True,
                                      sp_metadata=[client.get(f"{saml_a.root}/metadata").content.decode()])
    unsigned = client.get(f"{saml_a.root}/login")["Location"]
    assert "Signature" not in query_of(unsigned)
    with pytest.raises(IncorrectlySigned):
        strict_idp.receive_authn_request(unsigned)
    saml_a.configure(api, sign_authn_requests=True)
    metadata = etree.fromstring(client.get(f"{saml_a.root}/metadata").content)
    assert metadata.find(f"{{{MD}}}SPSSODescriptor").get("AuthnRequestsSigned") == "true"
    signed = client.get(f"{saml_a.root}/login?next=/o/org-a/settings/members")["Location"]
    assert query_of(signed)["SigAlg"] == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    request = strict_idp.receive_authn_request(signed)  # checked with the certificate in our metadata
    assert request.issuer == saml_a.entity_id and request.acs_url == saml_a.acs_url
    with pytest.raises(IncorrectlySigned):
        strict_idp.receive_authn_request(signed.replace("settings%2Fmembers", "settings%2Ftokens"))
    answer = saml_a.post(client, saml_a.response_to(request, email=NEWCOMER))
    assert answer.status_code == 302 and answer["Location"] == "/o/org-a/settings/members"


def test_sp_metadata_names_the_organization_s_endpoints_and_certificate(world, saml_a, client):
    answer = client.get(f"{saml_a.root}/metadata")
    assert answer["Content-Type"].startswith("application/samlmetadata+xml")
    root = etree.fromstring(answer.content)
    sp = root.find(f"{{{MD}}}SPSSODescriptor")
    assert root.get("entityID") == saml_a.entity_id
    assert sp.get("WantAssertionsSigned") == "true"
    acs = sp.find(f"{{{MD}}}AssertionConsumerService")
    bindings = "urn:oasis:names:tc:SAML:2.0:bindings"
    assert (acs.get("Location"), acs.get("Binding")) == (saml_a.acs_url, f"{bindings}:HTTP-POST")
    sls = sp.find(f"{{{MD}}}SingleLogoutService")
    assert (sls.get("Location"), sls.get("Binding")) == (saml_a.sls_url, f"{bindings}:HTTP-Redirect")
    signing = sp.find(f"{{{MD}}}KeyDescriptor[@use='signing']").find(".//ds:X509Certificate", NS).text
    stored = SamlSettings.objects.get(organization=world.org_a).sp_certificate
    assert "".join(signing.split()) in "".join(stored.split())
    assert b"PRIVATE" not in answer.content


def test_the_sp_key_pair_is_made_on_first_need_and_kept_encrypted(world, client):
    assert not SamlSettings.objects.filter(organization=world.org_b).exists()
    first = client.get("/o/org-b/saml/metadata").content
    row = SamlSettings.objects.get(organization=world.org_b)
    assert "BEGIN CERTIFICATE" in row.sp_certificate and "PRIVATE" not in row.sp_private_key_encrypted
    assert decrypt(row.sp_private_key_encrypted).startswith("-----BEGIN PRIVATE KEY-----")
    again = client.get("/o/org-b/saml/metadata").content
    assert etree.fromstring(first).find(".//ds:X509Certificate", NS).text == \
        etree.fromstring(again).find(".//ds:X509Certificate", NS).text
    assert client.get("/o/org-b/saml/login").status_code == 404  # no IdP yet


# --- the test login -----------------------------------------------------------------------------

def test_a_test_login_reports_what_the_idp_sent_and_changes_nobody(world, saml_a, mapped, client):
    client.force_login(world.admin_a.user)
    request = saml_a.start_login(client, test=True)
    answer = saml_a.post(client, saml_a.response_to(request, email=NEWCOMER, groups=["editors", "other"],
                                                    first_name="Nia"))
    page = answer.content.decode()
    assert answer.status_code == 200 and "Test login passed" in page
    assert NEWCOMER in page and "Nia" in page and "editors" in page and "other" in page
    assert "Manager" in page and "Legal" in page
    assert not User.objects.filter(email=NEWCOMER).exists()
    assert int(client.session["_auth_user_id"]) == world.admin_a.user.pk  # still the tester's own session
    assert SSO_ORGANIZATION_KEY not in client.session
    assert SamlSettings.objects.get(organization=world.org_a).tested_at is not None


def test_a_failed_test_login_says_why_and_records_nothing(world, saml_a, client):
    client.force_login(world.owner_a.user)
    request = saml_a.start_login(client, test=True)
    answer = saml_a.post(client, saml_a.response_to(request, email="eve@elsewhere.test"))
    assert answer.status_code == 403 and "Test login failed" in answer.content.decode()
    assert "not in one of the domains" in answer.content.decode()
    request = saml_a.start_login(client, test=True)
    answer = saml_a.post(client, saml_a.response_to(request, email=NEWCOMER, sign_assertion=False))
    assert answer.status_code == 400 and "not signed" in answer.content.decode()
    assert SamlSettings.objects.get(organization=world.org_a).tested_at is None


def test_only_members_who_may_change_sso_run_a_test_login(world, saml_a, client):
    assert client.get(f"{saml_a.root}/login?test=1")["Location"].startswith("/accounts/login/")
    client.force_login(world.annotator_a.user)
    assert client.get(f"{saml_a.root}/login?test=1").status_code == 403
    client.force_login(world.owner_b.user)
    assert client.get(f"{saml_a.root}/login?test=1").status_code == 403


# --- discovery ----------------------------------------------------------------------------------

def test_discovery_sends_an_email_to_its_organization_s_idp(saml_a, client):
    page = client.get("/sso/login/?email=ada%40a.test")
    assert page.status_code == 200 and b'value="ada@a.test"' in page.content
    answer = client.post("/sso/login/", {"email": "Ada@A.test"})
    assert answer.status_code == 302 and answer["Location"] == "/o/org-a/saml/login"
    followed = client.get(answer["Location"])
    assert followed["Location"].startswith(saml_a.idp.sso_url)


def test_discovery_of_an_unknown_domain_points_to_the_password_login(saml_a, client):
    answer = client.post("/sso/login/", {"email": "someone@unclaimed.test"})
    assert answer.status_code == 200 and b'data-testid="sso-unknown-domain"' in answer.content
    assert b'href="/accounts/login/"' in answer.content


def test_the_password_login_page_links_to_single_sign_on(client):
    page = client.get("/accounts/login/")
    assert b'href="/sso/login/"' in page.content and b"Sign in with single sign-on" in page.content
