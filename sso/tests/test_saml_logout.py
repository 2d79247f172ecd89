"""Single logout with the pysaml2 IdP, HTTP-Redirect binding both ways: the IdP's signed
LogoutRequest ends the session it names and gets our signed LogoutResponse; our logout ends the
session here and sends the IdP a signed LogoutRequest."""

import pytest
from lxml import etree

from sso.sessions import SSO_SESSION_INDEX_KEY
from sso.tests.saml_idp import TestIdentityProvider, query_of

pytestmark = pytest.mark.django_db

ADA = "ada@a.test"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"


@pytest.fixture
def strict_idp(saml_a, saml_keys, client):
    """IdP A checking the signatures of our LogoutRequests."""
    return TestIdentityProvider(directory=saml_keys.directory, entity_id=saml_a.idp.entity_id,
                                key_pair=saml_keys.idp_a, requests_signed=True,
                                sp_metadata=[client.get(f"{saml_a.root}/metadata").content.decode()])


@pytest.fixture
def signed_in(saml_a, client):
    assert saml_a.login(client, email=ADA).status_code == 302
    assert "_auth_user_id" in client.session
    return client.session[SSO_SESSION_INDEX_KEY]


def test_an_idp_logout_request_ends_the_session_and_is_answered(saml_a, client, signed_in):
    url = saml_a.idp.logout_request(sls_url=saml_a.sls_url, sp_entity_id=saml_a.entity_id, name_id=ADA,
                                    session_index=signed_in)
    answer = client.get(url.removeprefix("http://testserver"))
    assert answer.status_code == 302 and "_auth_user_id" not in client.session
    assert answer["Location"].startswith(saml_a.idp.slo_url + "?")
    assert "Signature" in query_of(answer["Location"])
    logout_response = saml_a.idp.receive_logout_response(answer["Location"])
    assert logout_response.status_ok()
    assert client.get("/o/org-a/").status_code == 302  # to the login page


def test_an_unsigned_logout_request_is_refused_and_the_session_stays(saml_a, client, signed_in):
    url = saml_a.idp.logout_request(sls_url=saml_a.sls_url, sp_entity_id=saml_a.entity_id, name_id=ADA, sign=False)
    answer = client.get(url.removeprefix("http://testserver"))
    assert answer.status_code == 400 and "_auth_user_id" in client.session


def test_a_logout_request_signed_by_another_key_is_refused(saml_a, impostor_a, client, signed_in):
    url = impostor_a.logout_request(sls_url=saml_a.sls_url, sp_entity_id=saml_a.entity_id, name_id=ADA)
    assert client.get(url.removeprefix("http://testserver")).status_code == 400
    assert "_auth_user_id" in client.session


def test_a_logout_request_for_someone_else_leaves_this_session_alone(saml_a, client, signed_in):
    url = saml_a.idp.logout_request(sls_url=saml_a.sls_url, sp_entity_id=saml_a.entity_id, name_id="bob@a.test")
    answer = client.get(url.removeprefix("http://testserver"))
    assert answer.status_code == 302 and "_auth_user_id" in client.session


def test_logging_out_here_ends_the_session_and_asks_the_idp(saml_a, strict_idp, client, signed_in):
    assert client.get(f"{saml_a.root}/logout").status_code == 200  # a confirmation: GET logs nobody out
    assert "_auth_user_id" in client.session
    answer = client.post(f"{saml_a.root}/logout")
    assert answer.status_code == 302 and "_auth_user_id" not in client.session
    request = strict_idp.receive_logout_request(answer["Location"])  # pysaml2 verified our signature
    assert request.issuer == saml_a.entity_id and request.name_id == ADA
    assert request.message.session_index[0].text == signed_in
    back = client.get(strict_idp.logout_response(request, sls_url=saml_a.sls_url).removeprefix("http://testserver"))
    assert back.status_code == 302 and back["Location"] == "/accounts/login/"


def test_without_an_idp_logout_endpoint_logging_out_stays_local(saml_a, api, client):
    metadata = etree.fromstring(saml_a.idp.metadata_xml.encode())
    for endpoint in metadata.iter(f"{{{MD}}}SingleLogoutService"):
        endpoint.getparent().remove(endpoint)
    saml_a.configure(api, metadata_xml=etree.tostring(metadata).decode())
    assert saml_a.login(client, email=ADA).status_code == 302
    answer = client.post(f"{saml_a.root}/logout")
    assert answer["Location"] == "/accounts/login/" and "_auth_user_id" not in client.session


def test_the_header_logs_an_sso_session_out_through_single_logout(saml_a, client, signed_in, world):
    from django.test import Client

    page = client.get("/o/org-a/").content.decode()
    assert 'action="/o/org-a/saml/logout" data-testid="logout-form"' in page
    password_session = Client()
    password_session.force_login(world.owner_a.user)
    page = password_session.get("/o/org-a/").content.decode()
    assert 'action="/accounts/logout/" data-testid="logout-form"' in page
