"""Reads of single sign-on: SCIM bearer credentials, settings, and which organization an email's
domain signs in through."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import caches
from django.utils import timezone

from accounts.tokens import TokenError, hash_secret
from sso.models import SamlSettings, ScimSettings, ScimToken
from tenants.models import Organization

SCIM_TOKEN_PREFIX = "scim_"


@dataclass(frozen=True)
class ScimCredential:
    """A SCIM bearer token: it speaks for the organization's identity provider, not for a user, and
    reaches only that organization's `/scim/v2/` (tenants.resolver routes it; sso.api_scim checks it)."""

    organization: Organization
    token_id: int
    kind: str = "scim"
    # Not a member: the membership middleware and the activity log look for a user on credentials.
    user = None
    scopes = frozenset()


def looks_like_scim_token(value: str) -> bool:
    return value.startswith(SCIM_TOKEN_PREFIX)


def scim_credential_from_authorization(header: str | None) -> ScimCredential | None:
    """`Authorization: Bearer scim_...`. None without a header; TokenError for any other scheme or
    token, and for a revoked one or one of a deleted organization."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not looks_like_scim_token(value):
        raise TokenError("SCIM endpoints take the organization's SCIM bearer token (Authorization: Bearer scim_...).")
    token = (ScimToken.objects.select_related("organization")
             .filter(token_hash=hash_secret(value), revoked_at__isnull=True).first())
    if token is None:
        raise TokenError("Invalid or revoked SCIM token.")
    if token.organization.deleted_at is not None:
        raise TokenError("The organization of this token has been deleted.")
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        # Minute resolution: "last used" for the admin page without a write per SCIM call.
        ScimToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return ScimCredential(organization=token.organization, token_id=token.pk)


def scim_tokens_of(*, organization: Organization):
    return ScimToken.objects.filter(organization=organization)


def saml_settings_of(*, organization: Organization) -> SamlSettings:
    """The organization's SAML settings (unsaved defaults if it never stored any)."""
    found = SamlSettings.objects.filter(organization_id=organization.pk).first()
    return found or SamlSettings(organization=organization)


def scim_settings_of(*, organization: Organization) -> ScimSettings:
    found = ScimSettings.objects.filter(organization_id=organization.pk).first()
    return found or ScimSettings(organization=organization)


def _sso_only_cache_key(organization_id: int) -> str:
    return f"sso-only:{organization_id}"


def is_sso_only(*, organization_id: int) -> bool:
    """Whether members must sign in to the organization through its IdP; read on every browser
    request, so cached until the settings change (`sso_only_changed`)."""
    key = _sso_only_cache_key(organization_id)
    cached = caches["shared"].get(key)
    if cached is None:
        cached = SamlSettings.objects.filter(organization_id=organization_id, sso_only=True).exists()
        caches["shared"].set(key, cached, 300)
    return cached


def sso_only_changed(organization_id: int) -> None:
    """Drop the cached switch now and after commit (a request in between may have cached the old one)."""
    from django.db import transaction

    key = _sso_only_cache_key(organization_id)
    caches["shared"].delete(key)
    transaction.on_commit(lambda: caches["shared"].delete(key))


def email_domain(email: str) -> str:
    return email.rpartition("@")[2].strip().lower()


def domains_of(saml_settings: SamlSettings) -> list[str]:
    return [part.strip().lower() for part in (saml_settings.domain or "").split(",") if part.strip()]


def organization_for_email(*, email: str) -> Organization | None:
    """The organization whose SAML settings claim the email's domain (domains are unique across
    organizations: sso.saml refuses a domain another organization claims)."""
    domain = email_domain(email)
    if not domain:
        return None
    candidates = (SamlSettings.objects.select_related("organization")
                  .filter(domain__icontains=domain, organization__deleted_at__isnull=True))
    for candidate in candidates:
        if domain in domains_of(candidate):
            return candidate.organization
    return None
