"""A SAML 2.0 identity provider for the tests, built on pysaml2 (`saml2.server.Server`).

It has its own key pair and certificate, loads our SP's metadata as served by
`/o/<slug>/saml/metadata`, publishes its own metadata (which the tests give our SP through the
settings API), reads our AuthnRequests and LogoutRequests off the redirect URLs, and signs
responses with pysaml2 and xmlsec1, exactly as a real IdP does.

Misbehaviour is made the way a broken or hostile IdP would make it: `before_signing` edits the
response pysaml2 built before the signature is computed (a wrong audience, a clock off by an
hour: still validly signed), and tests edit the signed XML afterwards (tampering, wrapping).
"""

from __future__ import annotations

import base64
import copy
import datetime
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.s_utils import sid
from saml2.saml import NAME_FORMAT_UNSPECIFIED, NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.sigver import pre_signature_part
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

NS = {"samlp": "urn:oasis:names:tc:SAML:2.0:protocol", "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
      "ds": "http://www.w3.org/2000/09/xmldsig#"}
ASSERTION_NODE = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
RESPONSE_NODE = "urn:oasis:names:tc:SAML:2.0:protocol:Response"
SHA256 = (SIG_RSA_SHA256, DIGEST_SHA256)
SHA1 = (SIG_RSA_SHA1, DIGEST_SHA1)
PASSWORD_CONTEXT = {"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"}
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# pysaml2 renames attributes through converters; this one keeps every name as the test gives it.
VERBATIM_ATTRIBUTE_MAP = f"MAP = {{'identifier': '{NAME_FORMAT_UNSPECIFIED}', 'fro': {{}}, 'to': {{}}}}\n"


@dataclass(frozen=True)
class KeyPair:
    key_path: str
    cert_path: str
    cert_pem: str
    key_pem: str


def key_pair_make(directory: Path, name: str) -> KeyPair:
    """An RSA 2048 key and a self-signed SHA-256 certificate, written where pysaml2 reads them."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.crt"
    key_path.write_text(key_pem)
    cert_path.write_text(cert_pem)
    return KeyPair(key_path=str(key_path), cert_path=str(cert_path), cert_pem=cert_pem, key_pem=key_pem)


@dataclass(frozen=True)
class ReceivedRequest:
    """An AuthnRequest or LogoutRequest of our SP, as the IdP read it off the redirect."""

    id: str
    issuer: str
    relay_state: str
    destination: str
    acs_url: str = ""
    name_id: str = ""
    message: object = None


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def encoded(xml: str) -> str:
    """The HTTP-POST binding's SAMLResponse value."""
    return base64.b64encode(xml.encode()).decode()


class TestIdentityProvider:
    """One IdP: `entity_id` with `key_pair`, trusting the SPs whose metadata it was given. With
    `requests_signed` it refuses AuthnRequests and LogoutRequests without a valid signature."""

    __test__ = False  # not a pytest test class

    def __init__(self, *, directory: Path, entity_id: str, key_pair: KeyPair, sp_metadata: list[str],
                 requests_signed: bool = False):
        maps = directory / "attribute-maps"
        maps.mkdir(exist_ok=True)
        (maps / "verbatim.py").write_text(VERBATIM_ATTRIBUTE_MAP)
        self.entity_id = entity_id
        self.sso_url = f"{entity_id.rsplit('/', 1)[0]}/sso"
        self.slo_url = f"{entity_id.rsplit('/', 1)[0]}/slo"
        config = IdPConfig()
        config.load({
            "entityid": entity_id,
            "key_file": key_pair.key_path,
            "cert_file": key_pair.cert_path,
            "attribute_map_dir": str(maps),
            "metadata": {"inline": sp_metadata},
            "service": {"idp": {
                "endpoints": {"single_sign_on_service": [(self.sso_url, BINDING_HTTP_REDIRECT)],
                              "single_logout_service": [(self.slo_url, BINDING_HTTP_REDIRECT)]},
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                "want_authn_requests_signed": requests_signed,
                "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_UNSPECIFIED,
                                       "attribute_restrictions": None}},
            }},
        })
        self.config = config
        self.server = Server(config=config)

    @property
    def metadata_xml(self) -> str:
        return str(entity_descriptor(self.config))

    # --- reading what our SP sends -------------------------------------------------------------

    def receive_authn_request(self, redirect_url: str) -> ReceivedRequest:
        """Parse the AuthnRequest in our SP's redirect (pysaml2 checks its signature when one is sent)."""
        assert redirect_url.startswith(self.sso_url + "?"), redirect_url
        query = query_of(redirect_url)
        parsed = self.server.parse_authn_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT,
                                                 relay_state=query.get("RelayState"), sigalg=query.get("SigAlg"),
                                                 signature=query.get("Signature"))
        message = parsed.message
        return ReceivedRequest(id=message.id, issuer=message.issuer.text, relay_state=query.get("RelayState", ""),
                               destination=message.destination, acs_url=message.assertion_consumer_service_url,
                               message=message)

    def receive_logout_request(self, redirect_url: str) -> ReceivedRequest:
        assert redirect_url.startswith(self.slo_url + "?"), redirect_url
        query = query_of(redirect_url)
        parsed = self.server.parse_logout_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT,
                                                  relay_state=query.get("RelayState"), sigalg=query.get("SigAlg"),
                                                  signature=query.get("Signature"))
        message = parsed.message
        return ReceivedRequest(id=message.id, issuer=message.issuer.text, relay_state=query.get("RelayState", ""),
                               destination=message.destination, name_id=message.name_id.text, message=message)

    def receive_logout_response(self, redirect_url: str):
        assert redirect_url.startswith(self.slo_url + "?"), redirect_url
        return self.server.parse_logout_request_response(query_of(redirect_url)["SAMLResponse"],
                                                         BINDING_HTTP_REDIRECT)

    # --- what it answers -----------------------------------------------------------------------

    def login_response(self, *, email: str, attributes: dict | None = None, in_response_to: str | None,
                       acs_url: str, sp_entity_id: str, sign_assertion: bool = True, sign_response: bool = False,
                       algorithms: tuple[str, str] = SHA256, name_id: str | None = None,
                       before_signing: Callable[[etree._Element], None] | None = None) -> str:
        """A samlp:Response for `email` as pysaml2 builds it; `before_signing` may edit it (an lxml
        root) before it is signed. Returns the XML."""
        response = self.server.create_authn_response(
            {"email": [email], **(attributes or {})}, in_response_to=in_response_to, destination=acs_url,
            sp_entity_id=sp_entity_id, name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=name_id or email),
            authn=PASSWORD_CONTEXT, sign_assertion=False, sign_response=False,
        )
        sign_alg, digest_alg = algorithms
        to_sign = []
        if sign_assertion:
            response.assertion.signature = pre_signature_part(response.assertion.id, self.server.sec.my_cert, 2,
                                                              sign_alg=sign_alg, digest_alg=digest_alg)
            to_sign.append((ASSERTION_NODE, response.assertion.id))
        if sign_response:
            response.signature = pre_signature_part(response.id, self.server.sec.my_cert, 1, sign_alg=sign_alg,
                                                    digest_alg=digest_alg)
            to_sign.append((RESPONSE_NODE, response.id))
        xml = response.to_string().decode()
        if before_signing is not None:
            root = etree.fromstring(xml.encode())
            before_signing(root)
            xml = etree.tostring(root).decode()
        for node_name, node_id in to_sign:  # the assertion first: the response signature covers it
            xml = self.server.sec.sign_statement(xml, node_name=node_name, node_id=node_id)
        return xml

    def logout_request(self, *, sls_url: str, sp_entity_id: str, name_id: str, session_index: str = "",
                       sign: bool = True, relay_state: str = "") -> str:
        """The redirect URL of an IdP-initiated LogoutRequest to our SLS."""
        _, request = self.server.create_logout_request(
            destination=sls_url, issuer_entity_id=sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=name_id),
            session_indexes=[session_index] if session_index else None, sign=False,
        )
        return self._redirect(str(request), sls_url, relay_state=relay_state, sign=sign)

    def logout_response(self, request: ReceivedRequest, *, sls_url: str, relay_state: str = "") -> str:
        """The redirect URL of the IdP's (signed) LogoutResponse to our LogoutRequest."""
        response = self.server.create_logout_response(request.message, [BINDING_HTTP_REDIRECT], sign=False)
        return self._redirect(str(response), sls_url, relay_state=relay_state, sign=True, response=True)

    def _redirect(self, message: str, destination: str, *, relay_state: str, sign: bool, response: bool = False) -> str:
        info = self.server.apply_binding(BINDING_HTTP_REDIRECT, message, destination=destination,
                                         relay_state=relay_state, response=response, sign=sign,
                                         sigalg=SIG_RSA_SHA256 if sign else None)
        return dict(info["headers"])["Location"]


# --- edits a hostile or broken IdP makes -------------------------------------------------------------

def _shift(value: str, seconds: int) -> str:
    moment = datetime.datetime.strptime(value, TIME_FORMAT) + datetime.timedelta(seconds=seconds)
    return moment.strftime(TIME_FORMAT)


def clock_off_by(seconds: int) -> Callable[[etree._Element], None]:
    """Every time in the response as an IdP whose clock is `seconds` ahead (negative: behind) writes it."""
    names = ("IssueInstant", "NotBefore", "NotOnOrAfter", "AuthnInstant", "SessionNotOnOrAfter")

    def edit(root):
        for element in root.iter():
            for name in names:
                if element.get(name):
                    element.set(name, _shift(element.get(name), seconds))
    return edit


def audience(value: str) -> Callable[[etree._Element], None]:
    def edit(root):
        for node in root.iterfind(".//saml:Audience", NS):
            node.text = value
    return edit


def recipient(value: str) -> Callable[[etree._Element], None]:
    def edit(root):
        for node in root.iterfind(".//saml:SubjectConfirmationData", NS):
            node.set("Recipient", value)
    return edit


def destination(value: str) -> Callable[[etree._Element], None]:
    def edit(root):
        root.set("Destination", value)
    return edit


def issuer(value: str) -> Callable[[etree._Element], None]:
    def edit(root):
        for node in root.iterfind(".//saml:Issuer", NS):
            node.text = value
    return edit


def forged_copy(signed_xml: str, *, email: str, placement: str) -> str:
    """XML signature wrapping: a forged, unsigned copy of the signed assertion (another email, another
    ID) placed `before` the signed one, or with the signed one moved `into` the forged copy's Advice
    (so that a naive lookup of "the signed assertion" still finds a valid signature)."""
    root = etree.fromstring(signed_xml.encode())
    signed = root.find("saml:Assertion", NS)
    forged = copy.deepcopy(signed)
    forged.set("ID", sid())
    forged.remove(forged.find("ds:Signature", NS))
    for node in forged.iterfind(".//saml:NameID", NS):
        node.text = email
    for node in forged.iterfind(".//saml:AttributeValue", NS):
        if "@" in (node.text or ""):
            node.text = email
    if placement == "before":
        signed.addprevious(forged)
    elif placement == "into":
        root.replace(signed, forged)
        advice = etree.SubElement(forged, f"{{{NS['saml']}}}Advice")
        forged.insert(forged.index(forged.find("saml:Conditions", NS)) + 1, advice)
        advice.append(signed)
    else:
        raise ValueError(placement)
    return etree.tostring(root).decode()
