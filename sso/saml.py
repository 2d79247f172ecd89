"""SAML 2.0 service provider, one per organization (python3-saml in strict mode).

Each organization is its own SP: entity ID = its metadata URL (`/o/<slug>/saml/metadata`), an
assertion consumer service (`/saml/acs`, HTTP-POST), single logout (`/saml/sls`, HTTP-Redirect)
and its own signing key pair, made on first need and stored encrypted. Its IdP comes from the
metadata in its `SamlSettings`.

A response is accepted only when every rule holds (`saml_response_validate`):
- the assertion is signed by a certificate of the organization's IdP metadata (a response
  signature, when present, is checked too); SHA-1 signatures and digests are refused, and so is
  any XML with a DTD or entity declaration;
- exactly one assertion, the signed one (python3-saml refuses wrapped or duplicated elements);
- issuer = the IdP's entity ID; audience = this organization's entity ID; Destination, when
  present, and the bearer confirmation's Recipient = this organization's ACS URL, exactly;
- Conditions NotBefore / NotOnOrAfter within python3-saml's clock drift (CLOCK_DRIFT_SECONDS, 300
  seconds) and a bearer confirmation that has not expired (no drift there);
- InResponseTo names an AuthnRequest this organization issued, unexpired and not used yet; a
  response with none is unsolicited, accepted only when the organization allows IdP-initiated login;
- the assertion ID was never accepted before (SamlAssertionSeen keeps it until it expires).

An accepted login provisions the person just in time (`saml_user_provision`) and re-applies the
group mappings (sso/grants.py) on every login; a test login (`?test=1`) checks the same response
rules and reports what it received, changing nobody's access.
"""

from __future__ import annotations

import base64
import datetime
import logging
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants as Saml
from onelogin.saml2.errors import OneLogin_Saml2_ValidationError as SamlValidationError
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML
from onelogin.saml2.xmlparser import DTDForbidden, EntitiesForbidden

from accounts import audit
from accounts.models import INACTIVE_ROLES, Membership, Role, User
from platform_core import ssrf
from platform_core.crypto import decrypt, encrypt
from sso.grants import GroupMappings, access_sync, mappings_clean, strongest_role
from sso.models import IdpProvider, SamlAssertionSeen, SamlAuthnRequest, SamlSettings
from sso.selectors import domains_of, email_domain, saml_settings_of, sso_only_changed
from tenants.models import Organization

logger = logging.getLogger(__name__)

NAMEID_FORMAT = Saml.NAMEID_EMAIL_ADDRESS
# python3-saml's allowance for clocks that disagree, applied to the assertion's Conditions.
CLOCK_DRIFT_SECONDS = Saml.ALLOWED_CLOCK_DRIFT
METADATA_MAX_BYTES = 1024 * 1024
METADATA_FETCH_TIMEOUT_SECONDS = 10
SP_CERTIFICATE_DAYS = 3650

# Attribute names each provider sends by default. Google Workspace has none of its own: its SAML app
# asks the admin to name each attribute; these are the names to give there.
PROVIDER_PRESETS: dict[str, dict[str, str]] = {
    IdpProvider.OKTA: {"mapping_email": "email", "mapping_first_name": "firstName",
                       "mapping_last_name": "lastName", "mapping_groups": "groups"},
    IdpProvider.AZURE: {
        "mapping_email": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "mapping_first_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
        "mapping_last_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
        "mapping_groups": "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
    },
    IdpProvider.GOOGLE: {"mapping_email": "email", "mapping_first_name": "first_name",
                         "mapping_last_name": "last_name", "mapping_groups": "groups"},
    IdpProvider.CUSTOM: {},
}
MAPPING_ATTRIBUTE_FIELDS = ("mapping_email", "mapping_first_name", "mapping_last_name", "mapping_groups")
TEXT_FIELDS = ("domain", "idp_provider", "metadata_url", "metadata_xml", *MAPPING_ATTRIBUTE_FIELDS)
SWITCH_FIELDS = ("sso_only", "allow_idp_initiated", "sign_authn_requests")
MAPPING_FIELD_MAX = 1024

# Mail services anyone can sign up with: claiming one would send strangers to this organization's IdP.
PUBLIC_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com",
    "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "gmx.com",
    "gmx.net", "gmx.de", "web.de", "mail.com", "zoho.com", "yandex.com", "yandex.ru", "mail.ru", "qq.com",
    "163.com", "126.com", "fastmail.com", "tutanota.com", "hey.com", "hotmail.co.uk", "yahoo.co.uk",
    "outlook.fr", "hotmail.fr", "yahoo.fr", "orange.fr", "free.fr", "libero.it", "t-online.de",
})
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TOP_LEVEL = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
# Serializes domain claims: two organizations cannot claim one domain at the same moment.
_DOMAIN_CLAIM_LOCK = 0x5A41_4D4C


class SamlNotConfigured(Exception):
    """The organization has no usable IdP metadata yet."""


class SamlRefused(Exception):
    """A response or a person refused: `message` is ours to show (never the assertion's content)."""

    def __init__(self, message: str, *, status: int = 400, reason: str = "", test: bool = False):
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason or message  # for the server log
        self.test = test


# --- URLs ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SpUrls:
    entity_id: str  # = the metadata URL
    acs: str
    sls: str
    login: str
    logout: str

    @property
    def metadata(self) -> str:
        return self.entity_id

    @property
    def test_login(self) -> str:
        return f"{self.login}?test=1"


def base_url_of(request) -> str:
    """The site's address: PUBLIC_URL, else the address the request came to."""
    if settings.PUBLIC_URL:
        return settings.PUBLIC_URL
    return f"{request.scheme}://{request.get_host()}"


def sp_urls(*, organization: Organization, base_url: str) -> SpUrls:
    root = f"{base_url.rstrip('/')}/o/{organization.slug}/saml"
    return SpUrls(entity_id=f"{root}/metadata", acs=f"{root}/acs", sls=f"{root}/sls", login=f"{root}/login",
                  logout=f"{root}/logout")


def _request_data(url: str, *, get: dict | None = None, post: dict | None = None, query_string: str = "") -> dict:
    """python3-saml's view of a request, built from our canonical URL rather than the Host header: the
    Destination and Recipient must name the address we published."""
    parts = urlsplit(url)
    data = {"https": "on" if parts.scheme == "https" else "off", "http_host": parts.netloc,
            "script_name": parts.path, "get_data": get or {}, "post_data": post or {}}
    if query_string:
        # Check redirect-binding signatures over the query string as sent, not as re-encoded here.
        data.update(query_string=query_string, validate_signature_from_qs=True)
    return data


def safe_next_path(organization: Organization, candidate: str | None) -> str:
    """A path inside the organization (`/o/<slug>/...`), else its home: RelayState and `next` come
    back from the browser or the IdP and must not send anyone elsewhere."""
    home = f"/o/{organization.slug}/"
    value = (candidate or "").strip()
    path = urlsplit(value).path
    if (not value.startswith(home) or "\\" in value or "//" in value or any(ord(ch) < 32 for ch in value)
            or any(segment in (".", "..") for segment in unquote(path).split("/"))
            or value.startswith(f"{home}saml/")):
        return home
    return value


# --- the SP key pair -------------------------------------------------------------------------------

def _key_pair_make(*, common_name: str) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=SP_CERTIFICATE_DAYS))
                   .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM).decode()


def sp_key_pair_ensure(*, organization: Organization) -> SamlSettings:
    """The organization's stored settings, with its SP key pair made on first need."""
    stored = SamlSettings.objects.filter(organization_id=organization.pk).first()
    if stored is not None and stored.sp_certificate and stored.sp_private_key_encrypted:
        return stored
    with transaction.atomic():
        SamlSettings.objects.get_or_create(organization=organization)
        stored = SamlSettings.objects.select_for_update().get(organization=organization)
        if not (stored.sp_certificate and stored.sp_private_key_encrypted):
            key_pem, certificate_pem = _key_pair_make(common_name=f"Scriptorium SAML SP {organization.slug}")
            stored.sp_certificate = certificate_pem
            stored.sp_private_key_encrypted = encrypt(key_pem)
            stored.save(update_fields=["sp_certificate", "sp_private_key_encrypted", "updated_at"])
    return stored


# --- IdP metadata ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class IdpMetadata:
    entity_id: str
    sso_url: str
    slo_url: str  # "" without an HTTP-Redirect single logout endpoint
    signing_certificates: tuple[str, ...]  # base64 DER
    settings: dict  # python3-saml's "idp" block

    def fingerprint(self) -> tuple:
        return self.entity_id, self.sso_url, self.slo_url, tuple(sorted(self.signing_certificates))


def idp_metadata_parse(xml: str, *, field_name: str = "metadata_xml") -> IdpMetadata:
    """The IdP in SAML metadata XML, parsed with DTDs and entities refused. It must describe an
    IdP (IDPSSODescriptor) with an entity ID, an HTTP-Redirect SSO endpoint and a signing certificate."""
    if not isinstance(xml, str) or not xml.strip():
        raise ValidationError({field_name: "Give the identity provider's SAML metadata XML."})
    if len(xml.encode()) > METADATA_MAX_BYTES:
        raise ValidationError({field_name: f"The metadata is larger than {METADATA_MAX_BYTES // 1024} KB."})
    try:
        document = OneLogin_Saml2_XML.to_etree(xml.strip())
    except (DTDForbidden, EntitiesForbidden):
        raise ValidationError({field_name: "The metadata declares a DTD or entities, which are refused."}) from None
    except Exception:  # noqa: BLE001 - lxml's syntax errors and the like: all mean "not XML"
        raise ValidationError({field_name: "The metadata is not well-formed XML."}) from None
    descriptors = OneLogin_Saml2_XML.query(document, "//md:EntityDescriptor[md:IDPSSODescriptor]")
    if not descriptors:
        raise ValidationError({field_name: "The metadata describes no identity provider (no IDPSSODescriptor)."})
    entity_id = (descriptors[0].get("entityID") or "").strip()
    if not entity_id or "'" in entity_id:
        raise ValidationError({field_name: "The identity provider in the metadata has no usable entityID."})
    parsed = OneLogin_Saml2_IdPMetadataParser.parse(document, entity_id=entity_id).get("idp", {})
    if not parsed.get("singleSignOnService", {}).get("url"):
        raise ValidationError({field_name: "The metadata has no SingleSignOnService with the HTTP-Redirect binding."})
    certificates = [parsed["x509cert"]] if parsed.get("x509cert") else \
        parsed.get("x509certMulti", {}).get("signing", [])
    if not certificates:
        raise ValidationError({field_name: "The metadata has no signing certificate (KeyDescriptor) for the IdP."})
    for certificate in certificates:
        try:
            x509.load_der_x509_certificate(base64.b64decode(certificate))
        except ValueError:
            raise ValidationError({field_name: "A certificate in the metadata cannot be read."}) from None
    return IdpMetadata(entity_id=entity_id, sso_url=parsed["singleSignOnService"]["url"],
                       slo_url=parsed.get("singleLogoutService", {}).get("url", ""),
                       signing_certificates=tuple(certificates), settings=parsed)


def idp_of(saml_settings: SamlSettings) -> IdpMetadata | None:
    """The configured IdP, or None when no (usable) metadata is stored."""
    if not saml_settings.metadata_xml:
        return None
    try:
        return idp_metadata_parse(saml_settings.metadata_xml)
    except ValidationError:
        return None


def _endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def metadata_fetch(url: str, *, field_name: str = "metadata_url") -> str:
    """GET the IdP's metadata through the SSRF guard. https only, but for endpoints listed in
    SSRF_PROTECTION_ALLOWLIST (an intranet IdP): the certificates in it decide whom we trust."""
    try:
        vetted = ssrf.vet_url(url)
    except ssrf.UnsafeUrlError as exc:
        raise ValidationError({field_name: str(exc)}) from None
    if vetted.scheme != "https" and _endpoint(vetted.host, vetted.port) not in ssrf.allowlist():
        raise ValidationError({field_name: "The metadata URL must use https."})
    try:
        answer = ssrf.pinned_request(vetted, method="GET", headers={"Accept": "application/samlmetadata+xml, */*"},
                                     timeout=METADATA_FETCH_TIMEOUT_SECONDS, max_body=METADATA_MAX_BYTES + 1)
    except urllib3.exceptions.HTTPError as exc:
        raise ValidationError({field_name: f"The metadata URL could not be reached ({type(exc).__name__})."}) \
            from None
    if 300 <= answer.status < 400:
        raise ValidationError({field_name: "The metadata URL redirects elsewhere; give the final URL."})
    if answer.status != 200:
        raise ValidationError({field_name: f"The metadata URL answered HTTP {answer.status}."})
    if len(answer.body) > METADATA_MAX_BYTES:
        raise ValidationError({field_name: f"The metadata is larger than {METADATA_MAX_BYTES // 1024} KB."})
    try:
        return answer.body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError({field_name: "The metadata URL did not return UTF-8 XML."}) from None


def metadata_url_check(*, url: str) -> dict:
    """Fetch and parse without saving: {"valid", "detail", "idp_entity_id"}."""
    try:
        idp = idp_metadata_parse(metadata_fetch(url), field_name="metadata_url")
    except ValidationError as exc:
        return {"valid": False, "detail": " ".join(exc.message_dict.get("metadata_url", exc.messages)),
                "idp_entity_id": None}
    return {"valid": True, "detail": "The URL returns usable identity provider metadata.",
            "idp_entity_id": idp.entity_id}


# --- python3-saml settings -------------------------------------------------------------------------

def _onelogin_settings(*, saml_settings: SamlSettings, urls: SpUrls, idp: IdpMetadata | None,
                       messages_signed: bool = False) -> OneLogin_Saml2_Settings:
    """Strict python3-saml settings of one organization's SP. `messages_signed`: single logout,
    where the IdP's redirect-binding messages must carry a signature."""
    security = {
        "authnRequestsSigned": saml_settings.sign_authn_requests,
        "logoutRequestSigned": True,
        "logoutResponseSigned": True,
        "wantAssertionsSigned": True,
        "wantMessagesSigned": messages_signed,
        "wantNameId": True,
        "wantAttributeStatement": False,  # some IdPs send only the NameID (an email)
        "rejectDeprecatedAlgorithm": True,
        "signatureAlgorithm": Saml.RSA_SHA256,
        "digestAlgorithm": Saml.SHA256,
        "requestedAuthnContext": False,
        "allowSingleLabelDomains": True,  # intranet host names
        "allowRepeatAttributeName": True,  # multi-valued groups sent as repeated attributes
    }
    data = {
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": urls.entity_id,
            "assertionConsumerService": {"url": urls.acs, "binding": Saml.BINDING_HTTP_POST},
            "singleLogoutService": {"url": urls.sls, "binding": Saml.BINDING_HTTP_REDIRECT},
            "NameIDFormat": NAMEID_FORMAT,
            "x509cert": saml_settings.sp_certificate,
            "privateKey": decrypt(saml_settings.sp_private_key_encrypted),
        },
        "security": security,
    }
    if idp is None:
        return OneLogin_Saml2_Settings(data, sp_validation_only=True)
    return OneLogin_Saml2_Settings({**data, "idp": idp.settings})


def _configured(*, organization: Organization, base_url: str) -> tuple[SamlSettings, SpUrls, IdpMetadata]:
    saml_settings = sp_key_pair_ensure(organization=organization)
    idp = idp_of(saml_settings)
    if idp is None:
        raise SamlNotConfigured(f"Single sign-on is not set up for {organization.title}.")
    return saml_settings, sp_urls(organization=organization, base_url=base_url), idp


def sp_metadata(*, organization: Organization, base_url: str) -> str:
    """This organization's SP metadata XML: entity ID, ACS (HTTP-POST), SLS (HTTP-Redirect), its certificate."""
    saml_settings = sp_key_pair_ensure(organization=organization)
    urls = sp_urls(organization=organization, base_url=base_url)
    onelogin = _onelogin_settings(saml_settings=saml_settings, urls=urls, idp=None)
    metadata = onelogin.get_sp_metadata()
    return metadata.decode() if isinstance(metadata, bytes) else metadata


# --- login: the AuthnRequest -----------------------------------------------------------------------

def _authn_request_lifetime() -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.SAML_AUTHN_REQUEST_TTL_SECONDS)


def authn_request_issue(*, organization: Organization, base_url: str, next_path: str = "",
                        test_requested_by: User | None = None) -> str:
    """Start an SP-initiated login: the IdP URL (HTTP-Redirect binding, signed when the organization
    asks) carrying a new AuthnRequest, whose id is recorded so its answer is accepted once."""
    saml_settings, urls, idp = _configured(organization=organization, base_url=base_url)
    relay_state = safe_next_path(organization, next_path)
    auth = OneLogin_Saml2_Auth(_request_data(urls.login),
                               old_settings=_onelogin_settings(saml_settings=saml_settings, urls=urls, idp=idp))
    redirect_url = auth.login(return_to=relay_state)
    now = timezone.now()
    with transaction.atomic():
        SamlAuthnRequest.objects.filter(organization=organization, expires_at__lte=now).delete()
        SamlAuthnRequest.objects.create(organization=organization, request_id=auth.get_last_request_id(),
                                        relay_state=relay_state, test_requested_by=test_requested_by,
                                        expires_at=now + _authn_request_lifetime())
    return redirect_url


# --- the response ----------------------------------------------------------------------------------

_SIGNATURE_PROBLEM = "The response's signature does not verify with your identity provider's certificate."
_REFUSAL_MESSAGES = {
    SamlValidationError.NO_SIGNED_ASSERTION: "The assertion is not signed: your identity provider must sign it.",
    SamlValidationError.NO_SIGNATURE_FOUND: "The assertion is not signed: your identity provider must sign it.",
    SamlValidationError.INVALID_SIGNATURE: _SIGNATURE_PROBLEM,
    SamlValidationError.WRONG_SIGNED_ELEMENT: _SIGNATURE_PROBLEM,
    SamlValidationError.ID_NOT_FOUND_IN_SIGNED_ELEMENT: _SIGNATURE_PROBLEM,
    SamlValidationError.DUPLICATED_ID_IN_SIGNED_ELEMENTS: _SIGNATURE_PROBLEM,
    SamlValidationError.INVALID_SIGNED_ELEMENT: _SIGNATURE_PROBLEM,
    SamlValidationError.DUPLICATED_REFERENCE_IN_SIGNED_ELEMENTS: _SIGNATURE_PROBLEM,
    SamlValidationError.UNEXPECTED_SIGNED_ELEMENTS: _SIGNATURE_PROBLEM,
    SamlValidationError.WRONG_NUMBER_OF_SIGNATURES_IN_RESPONSE: _SIGNATURE_PROBLEM,
    SamlValidationError.WRONG_NUMBER_OF_SIGNATURES_IN_ASSERTION: _SIGNATURE_PROBLEM,
    SamlValidationError.WRONG_NUMBER_OF_SIGNATURES: _SIGNATURE_PROBLEM,
    SamlValidationError.DEPRECATED_SIGNATURE_METHOD: "The response is signed with SHA-1, which is refused: "
                                                     "configure your identity provider to use SHA-256.",
    SamlValidationError.DEPRECATED_DIGEST_METHOD: "The response is signed with SHA-1, which is refused: "
                                                  "configure your identity provider to use SHA-256.",
    SamlValidationError.WRONG_NUMBER_OF_ASSERTIONS: "The response must hold exactly one assertion.",
    SamlValidationError.ASSERTION_TOO_EARLY: "The assertion is not valid yet: check the identity provider's clock.",
    SamlValidationError.ASSERTION_EXPIRED: "The assertion has expired: sign in again.",
    SamlValidationError.SESSION_EXPIRED: "The assertion has expired: sign in again.",
    SamlValidationError.RESPONSE_EXPIRED: "The assertion has expired: sign in again.",
    SamlValidationError.WRONG_DESTINATION: "The response was addressed to another URL than this organization's ACS.",
    SamlValidationError.EMPTY_DESTINATION: "The response was addressed to another URL than this organization's ACS.",
    SamlValidationError.WRONG_AUDIENCE: "The assertion is meant for another service provider (audience).",
    SamlValidationError.WRONG_ISSUER: "The response comes from another identity provider than this organization's.",
    SamlValidationError.ISSUER_MULTIPLE_IN_RESPONSE: "The response comes from another identity provider than "
                                                     "this organization's.",
    SamlValidationError.ISSUER_NOT_FOUND_IN_ASSERTION: "The response comes from another identity provider than "
                                                       "this organization's.",
    SamlValidationError.WRONG_SUBJECTCONFIRMATION: "The assertion has no valid bearer confirmation for this "
                                                   "organization's ACS (wrong recipient, expired, or for "
                                                   "another request).",
    SamlValidationError.WRONG_INRESPONSETO: "The response answers another request than ours.",
    SamlValidationError.STATUS_CODE_IS_NOT_SUCCESS: "Your identity provider did not sign you in.",
    SamlValidationError.NO_NAMEID: "The assertion names nobody (no NameID).",
    SamlValidationError.EMPTY_NAMEID: "The assertion names nobody (no NameID).",
    SamlValidationError.DUPLICATED_ATTRIBUTE_NAME_FOUND: "The assertion repeats an attribute.",
}
_BEARER_CONFIRMATIONS = ("//saml:Assertion/saml:Subject/saml:SubjectConfirmation"
                         f"[@Method='{Saml.CM_BEARER}']/saml:SubjectConfirmationData")


@dataclass(frozen=True)
class SamlIdentity:
    """Who the IdP says signed in, from a validated assertion."""

    email: str
    first_name: str
    last_name: str
    groups: tuple[str, ...]
    name_id: str
    session_index: str


@dataclass(frozen=True)
class ValidatedResponse:
    identity: SamlIdentity
    assertion_id: str
    expires_at: datetime.datetime
    authn_request: SamlAuthnRequest | None  # None: IdP-initiated
    relay_state: str


def _refusal(exc: Exception, *, test: bool) -> SamlRefused:
    if isinstance(exc, SamlValidationError):
        message = _REFUSAL_MESSAGES.get(exc.code, "The SAML response was refused.")
        return SamlRefused(message, reason=f"python3-saml code {exc.code}", test=test)
    if isinstance(exc, DTDForbidden | EntitiesForbidden):
        return SamlRefused("The response declares a DTD or entities, which are refused.", reason="DTD", test=test)
    return SamlRefused("The SAML response could not be read.", reason=type(exc).__name__, test=test)


def _first_value(attributes: dict, name: str | None) -> str:
    values = attributes.get(name) if name else None
    return values[0] if values else ""


def _looks_like_email(value: str) -> bool:
    try:
        validate_email(value)
    except ValidationError:
        return False
    return True


def _identity_of(response: OneLogin_Saml2_Response, saml_settings: SamlSettings) -> SamlIdentity:
    attributes = {name: [value.strip() for value in values if isinstance(value, str) and value.strip()]
                  for name, values in response.get_attributes().items()}
    name_id = (response.get_nameid() or "").strip()
    email = _first_value(attributes, saml_settings.mapping_email)
    if not email and _looks_like_email(name_id):
        email = name_id
    groups = attributes.get(saml_settings.mapping_groups, []) if saml_settings.mapping_groups else []
    return SamlIdentity(
        email=email.lower(), first_name=_first_value(attributes, saml_settings.mapping_first_name)[:256],
        last_name=_first_value(attributes, saml_settings.mapping_last_name)[:256],
        groups=tuple(dict.fromkeys(groups)), name_id=name_id, session_index=response.get_session_index() or "",
    )


def _bearer_confirmation_of(document, *, acs_url: str, in_response_to: str | None) -> datetime.datetime:
    """The end of the bearer confirmation meant for our ACS, checked exactly (python3-saml matches a
    Recipient that merely contains our URL). The Web SSO profile requires Recipient and NotOnOrAfter."""
    now = OneLogin_Saml2_Utils.now()
    for node in OneLogin_Saml2_XML.query(document, _BEARER_CONFIRMATIONS):
        not_on_or_after, not_before = node.get("NotOnOrAfter"), node.get("NotBefore")
        if node.get("Recipient") != acs_url or not not_on_or_after:
            continue
        if node.get("InResponseTo") != in_response_to:  # the Web SSO profile: an answer says which request
            continue
        ends = OneLogin_Saml2_Utils.parse_SAML_to_time(not_on_or_after)
        if ends <= now or (not_before and OneLogin_Saml2_Utils.parse_SAML_to_time(not_before) > now):
            continue
        return datetime.datetime.fromtimestamp(ends, tz=datetime.UTC)
    raise SamlValidationError("no bearer confirmation for our ACS", SamlValidationError.WRONG_SUBJECTCONFIRMATION)


def _in_response_to_of(document) -> str | None:
    """The request a response answers: the (signed) assertion's bearer confirmation says so when the
    (possibly unsigned) Response element does not."""
    response_value = document.get("InResponseTo")
    assertion_values = {node.get("InResponseTo") for node in OneLogin_Saml2_XML.query(document, _BEARER_CONFIRMATIONS)
                        if node.get("InResponseTo")}
    if response_value:
        return response_value
    return next(iter(assertion_values)) if len(assertion_values) == 1 else None


def saml_response_validate(*, organization: Organization, base_url: str, saml_response: str,
                           relay_state: str = "") -> ValidatedResponse:
    """Check a posted SAMLResponse against every rule (module docstring). Reads only; raises
    SamlRefused. Consuming the request id and the assertion id is `saml_response_accept`'s."""
    try:
        saml_settings, urls, idp = _configured(organization=organization, base_url=base_url)
    except SamlNotConfigured as exc:
        raise SamlRefused(str(exc), status=404) from None
    if not saml_response:
        raise SamlRefused("No SAMLResponse was posted.", reason="missing SAMLResponse")
    onelogin = _onelogin_settings(saml_settings=saml_settings, urls=urls, idp=idp)
    try:
        response = OneLogin_Saml2_Response(onelogin, saml_response)
        document = response.get_xml_document()
        in_response_to = _in_response_to_of(document)
    except Exception as exc:  # noqa: BLE001 - every parse failure (base64, XML, DTD) is a refusal
        raise _refusal(exc, test=False) from None

    authn_request = None
    if in_response_to is not None:
        authn_request = SamlAuthnRequest.objects.filter(organization=organization, request_id=in_response_to).first()
        if authn_request is None or authn_request.expires_at <= timezone.now():
            raise SamlRefused("This response answers no sign-in request of this organization that is still open "
                              "(it expired, was already used, or was never ours). Sign in again.",
                              reason="unknown InResponseTo")
    elif not saml_settings.allow_idp_initiated:
        raise SamlRefused("Sign-ins started at the identity provider are not allowed for this organization: "
                          "start from this site's sign-in page.", status=403, reason="unsolicited")
    test = authn_request is not None and authn_request.test_requested_by_id is not None
    try:
        response.is_valid(_request_data(urls.acs), request_id=in_response_to, raise_exceptions=True)
        destination = document.get("Destination")
        if destination is not None and destination != urls.acs:
            raise SamlValidationError("destination", SamlValidationError.WRONG_DESTINATION)
        if urls.entity_id not in response.get_audiences():
            raise SamlValidationError("audience", SamlValidationError.WRONG_AUDIENCE)
        confirmation_ends = _bearer_confirmation_of(document, acs_url=urls.acs, in_response_to=in_response_to)
        identity = _identity_of(response, saml_settings)
        assertion_id = response.get_assertion_id()
    except Exception as exc:  # noqa: BLE001 - see _refusal
        raise _refusal(exc, test=test) from None
    if not assertion_id:
        raise SamlRefused("The assertion has no ID.", test=test)
    return ValidatedResponse(
        identity=identity, assertion_id=assertion_id,
        # Kept past the confirmation's end by the drift python3-saml allows the Conditions.
        expires_at=confirmation_ends + datetime.timedelta(seconds=CLOCK_DRIFT_SECONDS),
        authn_request=authn_request,
        relay_state=authn_request.relay_state if authn_request is not None else safe_next_path(organization,
                                                                                              relay_state),
    )


def saml_response_accept(*, organization: Organization, validated: ValidatedResponse) -> None:
    """Use the assertion id and the request id up, committed before anything else happens: whatever
    follows, this response is never accepted again."""
    test = validated.authn_request is not None and validated.authn_request.test_requested_by_id is not None
    now = timezone.now()
    with transaction.atomic():
        SamlAssertionSeen.objects.filter(organization=organization, expires_at__lte=now).delete()
        try:
            with transaction.atomic():
                SamlAssertionSeen.objects.create(organization=organization, assertion_id=validated.assertion_id,
                                                 expires_at=validated.expires_at)
        except IntegrityError:
            raise SamlRefused("This assertion was already accepted once: sign in again.",
                              reason="replayed assertion", test=test) from None
        if validated.authn_request is not None:
            used, _ = SamlAuthnRequest.objects.filter(pk=validated.authn_request.pk).delete()
            if not used:
                raise SamlRefused("This sign-in request was already answered: sign in again.",
                                  reason="InResponseTo used twice", test=test)


# --- just-in-time provisioning ---------------------------------------------------------------------

def _email_checked(*, saml_settings: SamlSettings, identity: SamlIdentity, test: bool = False) -> str:
    if not identity.email or not _looks_like_email(identity.email):
        raise SamlRefused("Your identity provider sent no email address for you (configure the email attribute, "
                          "or send the email as NameID).", status=403, reason="no email", test=test)
    if email_domain(identity.email) not in domains_of(saml_settings):
        raise SamlRefused("Your email address is not in one of the domains this organization signs in through "
                          "single sign-on.", status=403, reason="email domain not claimed", test=test)
    return identity.email


def saml_user_provision(*, organization: Organization, identity: SamlIdentity) -> User:
    """The account and membership a SAML login opens: made just in time, or linked by email; group
    mappings re-applied. Deleted accounts and deactivated members are refused."""
    saml_settings = saml_settings_of(organization=organization)
    email = _email_checked(saml_settings=saml_settings, identity=identity)
    with transaction.atomic():
        user = User.objects.select_for_update().filter(email__iexact=email).first()
        if user is not None and (user.deleted_at is not None or not user.is_active):
            raise SamlRefused("This account has been deleted or disabled.", status=403, reason="inactive account")
        if user is not None and Membership.objects.filter(user=user, organization=organization,
                                                          role__in=INACTIVE_ROLES).exists():
            raise SamlRefused("Your membership in this organization is not active: ask an administrator.",
                              status=403, reason="deactivated member")
        if user is None:
            user = User.objects.create_user(email, None, first_name=identity.first_name,
                                            last_name=identity.last_name)
        elif not Membership.objects.filter(user=user).exclude(organization=organization).exists():
            # The account is this organization's alone: its IdP may keep the name up to date.
            names = {"first_name": identity.first_name, "last_name": identity.last_name}
            changed = [name for name, value in names.items() if value and getattr(user, name) != value]
            if changed:
                for name in changed:
                    setattr(user, name, names[name])
                user.save(update_fields=changed)
        result = access_sync(organization=organization, user=user, source="saml", groups=identity.groups,
                             mappings=GroupMappings.of(saml_settings), create_membership=True)
        if result.membership is None or not result.membership.is_active:
            raise SamlRefused("Your membership in this organization is not active: ask an administrator.",
                              status=403, reason="deactivated member")
    return user


# --- test login ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TestLoginResult:
    identity: SamlIdentity
    role: str  # the role label the mappings give (or the organization's default role)
    role_from_groups: bool
    workspaces: list[str] = field(default_factory=list)
    project_ids: list[int] = field(default_factory=list)


def mapped_role_of(*, organization: Organization, saml_settings: SamlSettings, groups) -> tuple[str, bool]:
    """The organization role label a login with these groups gets (strongest mapped role, else the default)."""
    role = strongest_role(GroupMappings.of(saml_settings), groups)
    return str(Role(role or organization.default_role).label), role is not None


def saml_test_login_complete(*, organization: Organization, validated: ValidatedResponse) -> TestLoginResult:
    """A passed test login: its response satisfied every rule and its email a claimed domain. Records
    `tested_at` (which lets SSO-only be switched on); provisions nothing, logs nobody in."""
    saml_settings = saml_settings_of(organization=organization)
    _email_checked(saml_settings=saml_settings, identity=validated.identity, test=True)
    groups = set(validated.identity.groups)
    mappings = GroupMappings.of(saml_settings)
    role, from_groups = mapped_role_of(organization=organization, saml_settings=saml_settings, groups=groups)
    with transaction.atomic():
        SamlSettings.objects.filter(pk=saml_settings.pk).update(tested_at=timezone.now())
        audit.record(organization=organization, actor=validated.authn_request.test_requested_by,
                     action="saml.test_login_passed", target=saml_settings,
                     details={"email": validated.identity.email, "groups": sorted(groups)})
    return TestLoginResult(
        identity=validated.identity, role=role, role_from_groups=from_groups,
        workspaces=sorted({title for title, group in mappings.workspaces if group in groups}),
        project_ids=sorted({project_id for project_id, group, _ in mappings.projects if group in groups}),
    )


# --- single logout ---------------------------------------------------------------------------------

def logout_request_url(*, organization: Organization, base_url: str, name_id: str, session_index: str) -> str | None:
    """The IdP's single logout URL carrying our signed LogoutRequest, or None when the IdP has no
    HTTP-Redirect SLO endpoint (the local session is ended either way)."""
    try:
        saml_settings, urls, idp = _configured(organization=organization, base_url=base_url)
    except SamlNotConfigured:
        return None
    if not idp.slo_url or not name_id:
        return None
    auth = OneLogin_Saml2_Auth(_request_data(urls.logout),
                               old_settings=_onelogin_settings(saml_settings=saml_settings, urls=urls, idp=idp))
    return auth.logout(return_to=f"/o/{organization.slug}/", name_id=name_id, session_index=session_index or None,
                       name_id_format=NAMEID_FORMAT)


@dataclass(frozen=True)
class SloOutcome:
    redirect_url: str
    # A LogoutRequest from the IdP: the NameID whose session must end here.
    logout_name_id: str | None = None


def slo_process(*, organization: Organization, base_url: str, get_data: dict, query_string: str) -> SloOutcome:
    """A message at our SLS (HTTP-Redirect): the IdP's signed LogoutRequest (answered with our signed
    LogoutResponse) or its LogoutResponse to ours. Raises SamlRefused."""
    try:
        saml_settings, urls, idp = _configured(organization=organization, base_url=base_url)
    except SamlNotConfigured as exc:
        raise SamlRefused(str(exc), status=404) from None
    if not idp.slo_url:
        raise SamlRefused("Your identity provider has no single logout endpoint configured.", status=404)
    if "SAMLRequest" not in get_data and "SAMLResponse" not in get_data:
        raise SamlRefused("No SAML logout message was sent.")
    onelogin = _onelogin_settings(saml_settings=saml_settings, urls=urls, idp=idp, messages_signed=True)
    auth = OneLogin_Saml2_Auth(_request_data(urls.sls, get=get_data, query_string=query_string),
                               old_settings=onelogin)
    try:
        redirect_url = auth.process_slo(keep_local_session=True)
    except Exception as exc:  # noqa: BLE001 - malformed messages
        raise _refusal(exc, test=False) from None
    if auth.get_errors():
        logger.warning("SAML logout message refused for organization %s: %s", organization.pk, auth.get_errors())
        raise SamlRefused("The logout message was refused (unsigned, wrongly signed, expired or not for us).")
    if "SAMLRequest" in get_data:
        request_xml = auth.get_last_request_xml()
        return SloOutcome(redirect_url=redirect_url,
                          logout_name_id=OneLogin_Saml2_Logout_Request.get_nameid(request_xml, None))
    return SloOutcome(redirect_url=settings.LOGIN_URL)


# --- settings --------------------------------------------------------------------------------------

def domains_clean(*, organization: Organization, value) -> str:
    """Comma-separated email domains: each a real domain, no public mail service, none claimed by
    another organization. Returns them normalized ("a.com,b.org")."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError({"domain": "Give the domains as one comma-separated string."})
    domains = []
    for part in value.split(","):
        domain = part.strip().lower().rstrip(".")
        if not domain:
            continue
        try:
            ascii_domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValidationError({"domain": f"{domain!r} is not a valid domain."}) from None
        labels = ascii_domain.split(".")
        if (len(labels) < 2 or len(ascii_domain) > 253 or not all(_DOMAIN_LABEL.match(label) for label in labels)
                or not _TOP_LEVEL.match(labels[-1])):
            raise ValidationError({"domain": f"{domain!r} is not a valid domain (e.g. example.com)."})
        if ascii_domain in PUBLIC_MAIL_DOMAINS:
            raise ValidationError({"domain": f"{ascii_domain} is a public mail service; claim your own domain."})
        if ascii_domain not in domains:
            domains.append(ascii_domain)
    if domains:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DOMAIN_CLAIM_LOCK])
        mentions = Q()
        for domain in domains:
            mentions |= Q(domain__icontains=domain)
        claimed = (SamlSettings.objects.exclude(organization_id=organization.pk)
                   .filter(mentions, organization__deleted_at__isnull=True))
        for other in claimed:
            taken = set(domains_of(other)) & set(domains)
            if taken:
                raise ValidationError({"domain": f"{sorted(taken)[0]} is already claimed by another organization."})
    return ",".join(domains)


def _text(data: dict, name: str, *, max_length: int | None = None) -> str:
    value = data[name]
    if value is not None and not isinstance(value, str):
        raise ValidationError({name: "Must be a string."})
    value = (value or "").strip()
    if max_length is not None and len(value) > max_length:
        raise ValidationError({name: f"At most {max_length} characters."})
    return value


def _switch(data: dict, name: str) -> bool:
    value = data[name]
    if not isinstance(value, bool):
        raise ValidationError({name: "Must be true or false."})
    return value


def saml_settings_update(*, organization: Organization, actor, data: dict, request=None) -> SamlSettings:
    """Change the fields present in `data` (a partial update; unknown keys are ignored).

    `metadata_url`, when given, is fetched through the SSRF guard and its XML stored (a
    `metadata_xml` in the same call is then ignored); `metadata_xml` alone replaces the URL. A
    provider preset fills each attribute mapping not given. SSO-only can be switched on only after
    a test login passed with the current IdP. Raises ValidationError naming the field."""
    url = _text(data, "metadata_url", max_length=65536) if "metadata_url" in data else None
    # Fetched before any row is locked: the IdP may take seconds to answer.
    fetched = metadata_fetch(url) if url else None
    sp_key_pair_ensure(organization=organization)
    with transaction.atomic():
        return _settings_apply(organization=organization, actor=actor, data=data, url=url, fetched=fetched,
                               request=request)


def saml_metadata_refresh(*, organization: Organization) -> bool | None:
    """Fetch the IdP metadata again from `metadata_url` (an IdP rolling its signing certificate
    publishes the new one there) and store it when it changed, as a settings change by nobody
    (audited). True: changed; False: the same; None: no URL. A failed fetch or invalid metadata
    raises ValidationError (naming `metadata_url`) and keeps what is stored."""
    row = SamlSettings.objects.filter(organization=organization).first()
    if row is None or not row.metadata_url:
        return None
    url = row.metadata_url
    fetched = metadata_fetch(url)
    if fetched.strip() == row.metadata_xml.strip():
        return False
    with transaction.atomic():
        _settings_apply(organization=organization, actor=None, data={"metadata_url": url}, url=url, fetched=fetched,
                        request=None)
    return True


def _settings_apply(*, organization: Organization, actor, data: dict, url: str | None, fetched: str | None,
                    request) -> SamlSettings:
    row = SamlSettings.objects.select_for_update().get(organization=organization)
    before = {name: getattr(row, name) for name in (*TEXT_FIELDS, *SWITCH_FIELDS, "roles_groups",
                                                      "workspaces_groups", "projects_groups")}
    previous_idp = idp_of(row)

    if "domain" in data:
        row.domain = domains_clean(organization=organization, value=_text(data, "domain", max_length=65536))
    for name in MAPPING_ATTRIBUTE_FIELDS:
        if name in data:
            setattr(row, name, _text(data, name, max_length=MAPPING_FIELD_MAX) or None)
    if "idp_provider" in data:
        provider = (_text(data, "idp_provider") or "").lower() or None
        if provider is not None and provider not in PROVIDER_PRESETS:
            raise ValidationError({"idp_provider": f"Choose one of {', '.join(PROVIDER_PRESETS)}."})
        row.idp_provider = provider
        for name, preset in PROVIDER_PRESETS.get(provider or "", {}).items():
            if not (isinstance(data.get(name), str) and data[name].strip()):
                setattr(row, name, preset)

    if url:
        idp_metadata_parse(fetched, field_name="metadata_url")
        row.metadata_url, row.metadata_xml = url, fetched.strip()
    elif "metadata_xml" in data:
        xml = _text(data, "metadata_xml")
        if xml:
            idp_metadata_parse(xml)
        row.metadata_xml, row.metadata_url = xml, ""
    elif url == "":
        row.metadata_url = ""

    for name, value in mappings_clean(organization=organization, data=data).items():
        setattr(row, name, value)
    for name in ("allow_idp_initiated", "sign_authn_requests"):
        if name in data:
            setattr(row, name, _switch(data, name))

    current_idp = idp_of(row)
    now = timezone.now()
    if (current_idp.fingerprint() if current_idp else None) != (previous_idp.fingerprint() if previous_idp else None):
        row.idp_metadata_changed_at = now
    if "sso_only" in data:
        wanted = _switch(data, "sso_only")
        if wanted and not row.sso_only:
            tested_after_change = (current_idp is not None and row.tested_at is not None
                                   and (row.idp_metadata_changed_at is None
                                        or row.tested_at > row.idp_metadata_changed_at))
            if not tested_after_change:
                raise ValidationError({"sso_only": "Run a test login that passes with the current identity provider "
                                                   "settings first (Test login), then switch SSO-only on."})
        row.sso_only = wanted
    if not current_idp and row.sso_only:
        raise ValidationError({"sso_only": "SSO-only needs an identity provider: switch it off before removing "
                                           "the IdP metadata."})
    row.save()

    changed = sorted(name for name, value in before.items() if getattr(row, name) != value)
    if "sso_only" in changed:
        sso_only_changed(organization.pk)
    if changed:
        audit.record(organization=organization, actor=actor, action="saml.settings_changed", target=row,
                     details={"fields": changed, "sso_only": row.sso_only, "domain": row.domain}, request=request)
    return row


@transaction.atomic
def saml_settings_reset(*, organization: Organization, actor, request=None) -> SamlSettings:
    """Back to defaults (no IdP, no domains, no mappings, SSO-only off); the SP key pair stays, so
    the SP metadata an IdP already holds remains valid."""
    sp_key_pair_ensure(organization=organization)
    row = SamlSettings.objects.select_for_update().get(organization=organization)
    defaults = SamlSettings(organization=organization)
    kept = {"id", "organization", "sp_certificate", "sp_private_key_encrypted", "created_at", "updated_at"}
    for model_field in SamlSettings._meta.concrete_fields:
        if model_field.name not in kept:
            setattr(row, model_field.attname, getattr(defaults, model_field.attname))
    row.save()
    SamlAuthnRequest.objects.filter(organization=organization).delete()
    sso_only_changed(organization.pk)
    audit.record(organization=organization, actor=actor, action="saml.settings_reset", target=row, request=request)
    return row
