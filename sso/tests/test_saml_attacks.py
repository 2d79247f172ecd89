"""The attack corpus: responses a hostile or broken identity provider, or someone who caught a
response in flight, posts to org A's assertion consumer. Every one is made by pysaml2 (edited
before signing, as an IdP would sign it, or after, as an attacker would change it) and every one
is refused with a 4xx, no session and no account or membership."""

import datetime
from types import SimpleNamespace

import pytest
from django.utils import timezone
from lxml import etree

from accounts import services as accounts
from accounts.models import Membership, Role, User
from conftest import PASSWORD
from sso.models import SamlAssertionSeen, SamlAuthnRequest
from sso.tests.saml_idp import (
    SHA1,
    TestIdentityProvider,
    audience,
    clock_off_by,
    destination,
    forged_copy,
    issuer,
    recipient,
)

pytestmark = pytest.mark.django_db

EVE = "eve@a.test"  # the person whose genuine response the attacker holds
TARGET = "ceo@a.test"  # whom the attacker wants to be
BEA = "bea@b.test"  # a member of org B


def _tampered(xml: str) -> str:
    assert EVE in xml
    return xml.replace(EVE, TARGET)


def _with_doctype(xml: str) -> str:
    body = xml.split("?>", 1)[1] if xml.startswith("<?xml") else xml
    doctype = f'<!DOCTYPE r [<!ENTITY who "{TARGET}">]>'
    return doctype + body.replace(EVE, "&who;")


def _answering(xml: str, request_id: str) -> str:
    """The (unsigned) Response element claims to answer `request_id`."""
    root = etree.fromstring(xml.encode())
    root.set("InResponseTo", request_id)
    return etree.tostring(root).decode()


def _envelope_changed(xml: str) -> str:
    """The Response element changed after it was signed; the assertion inside stays intact."""
    root = etree.fromstring(xml.encode())
    root.set("IssueInstant", "2001-01-01T00:00:00Z")
    return etree.tostring(root).decode()


# name -> (make the response XML from (sso, request), the email at stake, words of the refusal)
CORPUS = {
    "signature wrapping: a forged assertion next to the signed one": (
        lambda sso, request: forged_copy(sso.response_to(request, email=EVE), email=TARGET, placement="before"),
        TARGET, "exactly one assertion"),
    "signature wrapping: the signed assertion hidden in a forged one's Advice": (
        lambda sso, request: forged_copy(sso.response_to(request, email=EVE), email=TARGET, placement="into"),
        TARGET, "exactly one assertion"),
    "tampering after signing: another email": (
        lambda sso, request: _tampered(sso.response_to(request, email=EVE)), TARGET, "signature"),
    "tampering after signing: another group": (
        lambda sso, request: sso.response_to(request, email=EVE, groups=["staff"]).replace(">staff<", ">admins<"),
        EVE, "signature"),
    "tampering after signing a signed response and assertion": (
        lambda sso, request: _tampered(sso.response_to(request, email=EVE, sign_response=True)), TARGET,
        "signature"),
    "a response signature that no longer verifies, around an intact signed assertion": (
        lambda sso, request: _envelope_changed(sso.response_to(request, email=EVE, sign_response=True)), EVE,
        "signature"),
    "wrong audience (org B's SP)": (
        lambda sso, request: sso.response_to(request, email=EVE, before_signing=audience(
            "http://testserver/o/org-b/saml/metadata")), EVE, "audience"),
    "no audience restriction at all": (
        lambda sso, request: sso.response_to(request, email=EVE, before_signing=lambda root: [
            node.getparent().remove(node) for node in root.iter("{*}AudienceRestriction")]), EVE, "audience"),
    "wrong destination (org B's ACS)": (
        lambda sso, request: sso.response_to(request, email=EVE, sign_response=True, before_signing=destination(
            "http://testserver/o/org-b/saml/acs")), EVE, "addressed to another URL"),
    "wrong destination, a longer URL that starts with ours": (
        lambda sso, request: sso.response_to(request, email=EVE, sign_response=True, before_signing=destination(
            sso.acs_url + "-elsewhere")), EVE, "addressed to another URL"),
    "wrong recipient (org B's ACS)": (
        lambda sso, request: sso.response_to(request, email=EVE, before_signing=recipient(
            "http://testserver/o/org-b/saml/acs")), EVE, "bearer confirmation"),
    "wrong recipient that merely contains our ACS URL": (
        lambda sso, request: sso.response_to(request, email=EVE, before_signing=recipient(
            "https://evil.example.com/?to=" + sso.acs_url)), EVE, "bearer confirmation"),
    "expired: the IdP's clock an hour behind": (
        lambda sso, request: sso.response_to(request, email=EVE, before_signing=clock_off_by(-3600)), EVE,
        "expired"),
    "not yet valid: the IdP's clock ten minutes ahead (beyond the 5-minute drift)": (
        lambda sso, request: sso.response_to(request, email=EVE, before_signing=clock_off_by(600)), EVE,
        "not valid yet"),
    "unsigned: neither response nor assertion": (
        lambda sso, request: sso.response_to(request, email=EVE, sign_assertion=False), EVE, "not signed"),
    "signed response around an unsigned assertion": (
        lambda sso, request: sso.response_to(request, email=EVE, sign_assertion=False, sign_response=True), EVE,
        "not signed"),
    "signed with SHA-1": (
        lambda sso, request: sso.response_to(request, email=EVE, algorithms=SHA1), EVE, "SHA-1"),
    "an issuer other than org A's IdP (signed with IdP A's key)": (
        lambda sso, request: sso.response_to(request, email=EVE, before_signing=issuer(
            "https://idp-b.example.com/saml/metadata")), EVE, "another identity provider"),
    "an InResponseTo we never issued": (
        lambda sso, request: sso.response_to(SimpleNamespace(id="id-we-never-sent"), email=EVE), EVE,
        "answers no sign-in request"),
    "an unsolicited assertion presented as the answer to our request": (
        lambda sso, request: _answering(sso.response_to(None, email=EVE), request.id), EVE, "bearer confirmation"),
    "an answer to another of our requests presented as the answer to this one": (
        lambda sso, request: _answering(sso.response_to(sso.start_login(sso.client), email=EVE), request.id), EVE,
        "bearer confirmation"),
    "a DOCTYPE with an ENTITY": (
        lambda sso, request: _with_doctype(sso.response_to(request, email=EVE)), TARGET, "DTD"),
    "an email outside org A's domains": (
        lambda sso, request: sso.response_to(request, email="eve@elsewhere.test"), "eve@elsewhere.test",
        "not in one of the domains"),
}


@pytest.mark.parametrize("case", list(CORPUS))
def test_the_corpus_is_refused_without_a_session(saml_a, client, assert_refused, case):
    make, email, words = CORPUS[case]
    request = saml_a.start_login(client)
    answer = saml_a.post(client, make(saml_a, request), relay_state=request.relay_state)
    page = assert_refused(answer, email=email)
    assert words in page
    assert EVE not in page and TARGET not in page  # the error page never echoes the assertion


def test_the_same_response_unedited_is_accepted(saml_a, client):
    """The corpus's control: what the attacks start from logs Eve in."""
    request = saml_a.start_login(client)
    answer = saml_a.post(client, saml_a.response_to(request, email=EVE, groups=["staff"]),
                         relay_state=request.relay_state)
    assert answer.status_code == 302 and answer["Location"] == "/o/org-a/"
    assert int(client.session["_auth_user_id"]) == User.objects.get(email=EVE).pk


def test_a_clock_two_minutes_ahead_is_within_the_drift(saml_a, client):
    request = saml_a.start_login(client)
    answer = saml_a.post(client, saml_a.response_to(request, email=EVE, before_signing=clock_off_by(120)))
    assert answer.status_code == 302 and "_auth_user_id" in client.session


def test_a_key_org_a_never_saw_is_refused(saml_a, impostor_a, client, assert_refused):
    request = saml_a.start_login(client)
    answer = saml_a.post(client, saml_a.response_to(request, email=EVE, idp=impostor_a))
    assert "signature does not verify" in assert_refused(answer, email=EVE)


def test_a_replayed_response_is_refused(saml_a, client, assert_refused):
    request = saml_a.start_login(client)
    response = saml_a.response_to(request, email=EVE)
    assert saml_a.post(client, response).status_code == 302
    client.logout()
    assert_refused(saml_a.post(client, response), email=EVE, new_account=False)


def test_a_replayed_idp_initiated_assertion_is_refused(saml_a, client, api, assert_refused):
    """No request id to use up here: the assertion id alone stops the replay, until it expires."""
    saml_a.configure(api, allow_idp_initiated=True)
    response = saml_a.response_to(None, email=EVE)
    assert saml_a.post(client, response).status_code == 302
    seen = SamlAssertionSeen.objects.get(organization=saml_a.organization)
    assert seen.expires_at > timezone.now() + datetime.timedelta(minutes=5)  # the assertion's end, plus the drift
    client.logout()
    page = assert_refused(saml_a.post(client, response), email=EVE, new_account=False)
    assert "assertion was already accepted" in page


def test_a_request_id_is_answered_once(saml_a, client, assert_refused):
    """A second, freshly signed assertion for a request that was already answered."""
    request = saml_a.start_login(client)
    assert saml_a.post(client, saml_a.response_to(request, email=EVE)).status_code == 302
    assert not SamlAuthnRequest.objects.filter(request_id=request.id).exists()
    client.logout()
    page = assert_refused(saml_a.post(client, saml_a.response_to(request, email=TARGET)), email=TARGET)
    assert "answers no sign-in request" in page


def test_an_expired_request_id_is_refused(saml_a, client, assert_refused):
    request = saml_a.start_login(client)
    SamlAuthnRequest.objects.filter(request_id=request.id).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert "answers no sign-in request" in assert_refused(saml_a.post(client, saml_a.response_to(
        request, email=EVE)), email=EVE)


def test_unsolicited_responses_are_refused_unless_allowed(saml_a, client, api, assert_refused):
    page = assert_refused(saml_a.post(client, saml_a.response_to(None, email=EVE)), email=EVE, status=403)
    assert "started at the identity provider are not allowed" in page


def test_org_b_s_response_is_refused_at_org_a(saml_a, saml_b, client, api, assert_refused):
    """B's IdP answering B's request for B's SP, posted to A's ACS; then, with A allowing IdP-initiated
    logins, B's IdP-initiated response for a b.test and an a.test address."""
    request = saml_b.start_login(client)
    for_b = saml_b.response_to(request, email="bob@b.test")
    assert "answers no sign-in request" in assert_refused(saml_b.post(client, for_b, slug="org-a"),
                                                          email="bob@b.test")
    saml_a.configure(api, allow_idp_initiated=True)
    for email in ("bob@b.test", EVE):
        unsolicited = saml_b.response_to(None, email=email)
        assert_refused(saml_b.post(client, unsolicited, slug="org-a"), email=email)
    # B's own ACS takes it: the refusal above is about where it was posted.
    assert saml_b.post(client, saml_b.response_to(saml_b.start_login(client), email="bob@b.test")).status_code == 302


def test_a_response_made_for_org_b_by_an_idp_both_trust_is_refused_at_org_a(saml_a, saml_b, saml_keys, client, api,
                                                                            assert_refused):
    """One IdP serving both organizations (same entity ID and key in both settings): its response for
    B's SP names B as audience and recipient, so A refuses it, solicited or not."""
    shared = TestIdentityProvider(directory=saml_keys.directory, entity_id=saml_a.idp.entity_id,
                                  key_pair=saml_keys.idp_a, sp_metadata=[
                                      client.get(f"{sso.root}/metadata").content.decode() for sso in (saml_a, saml_b)])
    saml_b.configure(api, metadata_xml=shared.metadata_xml)
    answer = client.get(f"{saml_b.root}/login")
    request = shared.receive_authn_request(answer["Location"])
    for_b = saml_b.response_to(request, email=BEA, idp=shared)
    saml_a.configure(api, allow_idp_initiated=True)
    assert "answers no sign-in request" in assert_refused(saml_a.post(client, for_b), email=BEA)
    unsolicited_for_b = saml_b.response_to(None, email=BEA, idp=shared)
    assert "addressed to another URL" in assert_refused(saml_a.post(client, unsolicited_for_b), email=BEA)
    # Without a Destination (it is optional), the audience alone refuses it.
    unsolicited_for_b = saml_b.response_to(None, email=BEA, idp=shared,
                                           before_signing=lambda root: root.attrib.pop("Destination"))
    assert "audience" in assert_refused(saml_a.post(client, unsolicited_for_b), email=BEA)
    assert saml_b.post(client, for_b).status_code == 302  # where it was meant to go, it is accepted


def test_a_deactivated_member_is_refused(world, saml_a, client, assert_refused):
    member = accounts.user_create(email=EVE, password=PASSWORD)
    accounts.membership_set(user=member, organization=world.org_a, role=Role.DEACTIVATED)
    page = assert_refused(saml_a.login(client, email=EVE, groups=["staff"]), email=EVE, status=403,
                          new_account=False)
    assert "not active" in page
    assert Membership.objects.get(user=member, organization=world.org_a).role == Role.DEACTIVATED


def test_a_deleted_account_is_refused(world, saml_a, client, assert_refused):
    deleted = accounts.user_soft_delete(user=accounts.user_create(email=EVE, password=PASSWORD))
    page = assert_refused(saml_a.login(client, email=EVE), email=EVE, status=403, new_account=False)
    assert "deleted or disabled" in page
    assert not Membership.objects.filter(user=deleted).exists()


def test_no_saml_response_or_garbage_is_refused(saml_a, client, assert_refused):
    assert "No SAMLResponse" in assert_refused(client.post(f"{saml_a.root}/acs", {}), email=EVE)
    assert "could not be read" in assert_refused(client.post(f"{saml_a.root}/acs", {"SAMLResponse": "%%%"}),
                                                 email=EVE)


def test_an_organization_without_an_idp_refuses_every_response(world, saml_b, client, assert_refused):
    answer = saml_b.post(client, saml_b.response_to(None, email=EVE), slug="org-a")
    assert "not set up" in assert_refused(answer, email=EVE, status=404)
