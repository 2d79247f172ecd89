"""SAML fixtures: a pysaml2 identity provider per organization, wired to our SP the way an
administrator does it (our SP metadata from `/o/<slug>/saml/metadata` into the IdP, the IdP's
metadata into our SP through `/api/saml/settings`).

Key pairs are made once per session (RSA key generation is the slow part); each test stores its
organization's SP key pair in its own rolled-back transaction.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import pytest

from conftest import service_missing
from platform_core.crypto import encrypt
from sso.models import SamlSettings
from sso.tests.saml_idp import KeyPair, ReceivedRequest, TestIdentityProvider, encoded, key_pair_make

BASE = "http://testserver"


@dataclass(frozen=True)
class SamlKeys:
    directory: object
    sp_a: KeyPair
    sp_b: KeyPair
    idp_a: KeyPair
    idp_b: KeyPair
    impostor: KeyPair  # claims to be IdP A, with a key of its own


@pytest.fixture(scope="session")
def saml_keys(tmp_path_factory) -> SamlKeys:
    if shutil.which("xmlsec1") is None:
        service_missing("xmlsec1 is missing: `make test` installs it (apt-get install xmlsec1)")
    directory = tmp_path_factory.mktemp("saml")
    return SamlKeys(directory=directory, **{name: key_pair_make(directory, name)
                                            for name in ("sp_a", "sp_b", "idp_a", "idp_b", "impostor")})


@dataclass
class SamlOrg:
    """One organization's SP and the IdP it trusts, with the steps of a browser login."""

    organization: object
    slug: str
    idp: TestIdentityProvider
    owner_key: str
    email_domain: str
    client: object  # the test's browser

    @property
    def root(self) -> str:
        return f"/o/{self.slug}/saml"

    @property
    def entity_id(self) -> str:
        return f"{BASE}{self.root}/metadata"

    @property
    def acs_url(self) -> str:
        return f"{BASE}{self.root}/acs"

    @property
    def sls_url(self) -> str:
        return f"{BASE}{self.root}/sls"

    def configure(self, api, **fields):
        """POST /api/saml/settings as the organization's Owner; the answer's JSON."""
        answer = api.call("post", f"/o/{self.slug}/api/saml/settings", token=self.owner_key, json=fields)
        assert answer.status_code == 201, answer.content
        return answer.json()

    def start_login(self, client, *, next_path: str = "", test: bool = False) -> ReceivedRequest:
        """GET our login URL and hand the redirect to the IdP, as the browser does."""
        query = "?test=1" if test else (f"?next={next_path}" if next_path else "")
        answer = client.get(f"{self.root}/login{query}")
        assert answer.status_code == 302, answer.content
        return self.idp.receive_authn_request(answer["Location"])

    def response_to(self, request: ReceivedRequest | None, *, email: str, groups=(), first_name: str = "",
                    last_name: str = "", idp: TestIdentityProvider | None = None, **options) -> str:
        attributes = {"groups": list(groups)} if groups else {}
        if first_name:
            attributes["firstName"] = [first_name]
        if last_name:
            attributes["lastName"] = [last_name]
        return (idp or self.idp).login_response(
            email=email, attributes=attributes, in_response_to=request.id if request else None,
            acs_url=self.acs_url, sp_entity_id=self.entity_id, **options,
        )

    def post(self, client, xml: str, *, relay_state: str | None = None, slug: str | None = None):
        data = {"SAMLResponse": encoded(xml)}
        if relay_state is not None:
            data["RelayState"] = relay_state
        return client.post(f"/o/{slug or self.slug}/saml/acs", data)

    def login(self, client, *, email: str, groups=(), next_path: str = "", **attributes):
        request = self.start_login(client, next_path=next_path)
        return self.post(client, self.response_to(request, email=email, groups=groups, **attributes),
                         relay_state=request.relay_state)


def _saml_org(*, organization, owner_key: str, sp: KeyPair, idp_key: KeyPair, idp_entity_id: str, domain: str,
              client, api, directory) -> SamlOrg:
    SamlSettings.objects.update_or_create(organization=organization, defaults={
        "sp_certificate": sp.cert_pem, "sp_private_key_encrypted": encrypt(sp.key_pem)})
    metadata = client.get(f"/o/{organization.slug}/saml/metadata")
    assert metadata.status_code == 200, metadata.content
    idp = TestIdentityProvider(directory=directory, entity_id=idp_entity_id, key_pair=idp_key,
                               sp_metadata=[metadata.content.decode()])
    org = SamlOrg(organization=organization, slug=organization.slug, idp=idp, owner_key=owner_key,
                  email_domain=domain, client=client)
    org.configure(api, metadata_xml=idp.metadata_xml, domain=domain, idp_provider="okta")
    return org


@pytest.fixture
def saml_a(world, saml_keys, client, api, settings) -> SamlOrg:
    """Org A: SP configured with IdP A (Okta-style attribute names), claiming a.test."""
    settings.PUBLIC_URL = ""
    return _saml_org(organization=world.org_a, owner_key=world.owner_a.legacy_key, sp=saml_keys.sp_a,
                     idp_key=saml_keys.idp_a, idp_entity_id="https://idp-a.example.com/saml/metadata",
                     domain="a.test", client=client, api=api, directory=saml_keys.directory)


@pytest.fixture
def saml_b(world, saml_keys, client, api, settings) -> SamlOrg:
    """Org B: its own SP, its own IdP B, claiming b.test."""
    settings.PUBLIC_URL = ""
    return _saml_org(organization=world.org_b, owner_key=world.owner_b.legacy_key, sp=saml_keys.sp_b,
                     idp_key=saml_keys.idp_b, idp_entity_id="https://idp-b.example.com/saml/metadata",
                     domain="b.test", client=client, api=api, directory=saml_keys.directory)


@pytest.fixture
def impostor_a(saml_a, saml_keys, client) -> TestIdentityProvider:
    """An IdP that calls itself IdP A but signs with a key org A never saw."""
    metadata = client.get(f"{saml_a.root}/metadata").content.decode()
    return TestIdentityProvider(directory=saml_keys.directory, entity_id=saml_a.idp.entity_id,
                                key_pair=saml_keys.impostor, sp_metadata=[metadata])


@pytest.fixture
def assert_refused(client):
    """`assert_refused(answer, email=...)`: a 4xx page that names nobody from the assertion, no session,
    and (for an address that had no account) no account and no membership made."""
    from accounts.models import Membership, User

    def check(answer, *, email: str, status: int | None = None, new_account: bool = True):
        assert 400 <= answer.status_code < 500, (answer.status_code, answer.content[:500])
        if status is not None:
            assert answer.status_code == status, answer.content[:500]
        assert "_auth_user_id" not in client.session
        assert email.encode() not in answer.content.lower()
        if new_account:
            assert not User.objects.filter(email__iexact=email).exists()
            assert not Membership.objects.filter(user__email__iexact=email).exists()
        return answer.content.decode()
    return check
