"""Reads about identity: credentials, memberships, tokens."""

from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import (
    ALL_SCOPES,
    LegacyToken,
    Membership,
    OrganizationTokenSettings,
    PersonalAccessToken,
    User,
)
from accounts.tokens import ACCESS, TokenError, decode_jwt, hash_secret, looks_like_jwt
from tenants.models import Organization


@dataclass(frozen=True)
class Credential:
    """Who an API token speaks for: one user in one organization, with scopes."""

    kind: str  # "legacy" | "jwt"
    user: User
    organization: Organization
    scopes: frozenset[str] = field(default_factory=lambda: frozenset(ALL_SCOPES))
    token_id: int | None = None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def _check_holder(*, user: User, organization: Organization) -> None:
    if not user.is_active or user.deleted_at is not None:
        raise TokenError("The user of this token is deactivated.")
    if organization.deleted_at is not None:
        raise TokenError("The organization of this token has been deleted.")


def credential_from_authorization(header: str) -> Credential | None:
    """Parse `Authorization: Token <key>` or `Bearer <jwt access token>`.

    Returns None when the header names no scheme we handle; raises TokenError for a credential
    that is present but unusable (unknown, malformed, expired, blacklisted, disabled).
    """
    scheme, _, value = header.strip().partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if scheme not in {"token", "bearer"}:
        return None
    if not value:
        raise TokenError("Authorization header has no token.")
    if scheme == "bearer" or looks_like_jwt(value):
        return _credential_from_access_token(value)
    return _credential_from_legacy_key(value)


def _credential_from_legacy_key(key: str) -> Credential:
    token = (
        LegacyToken.objects.select_related("user", "organization", "organization__token_settings")
        .filter(key_hash=hash_secret(key))
        .first()
    )
    if token is None:
        raise TokenError("Invalid token.")
    if token.expires_at is not None and token.expires_at <= timezone.now():
        raise TokenError("Token has expired.")
    _check_holder(user=token.user, organization=token.organization)
    if not token_settings_of(organization=token.organization).legacy_api_tokens_enabled:
        raise TokenError("Legacy API tokens are disabled for this organization; use a personal access token.")
    return Credential(
        kind="legacy", user=token.user, organization=token.organization,
        scopes=frozenset(token.scopes or ALL_SCOPES), token_id=token.id,
    )


def _credential_from_access_token(value: str) -> Credential:
    claims = decode_jwt(value, expected_type=ACCESS)
    pat = personal_access_token_get_usable(jti=claims.jti)
    if pat.user_id != claims.user_id or pat.organization_id != claims.organization_id:
        raise TokenError("Token is invalid or malformed.")
    return Credential(
        kind="jwt", user=pat.user, organization=pat.organization,
        scopes=frozenset(claims.scopes) & frozenset(pat.scopes), token_id=pat.id,
    )


def personal_access_token_get_usable(*, jti: str) -> PersonalAccessToken:
    """The PAT behind a refresh or access token, if it may still be used."""
    pat = (
        PersonalAccessToken.objects.select_related("user", "organization", "organization__token_settings")
        .filter(jti=jti)
        .first()
    )
    if pat is None:
        raise TokenError("Token is invalid or malformed.")
    if pat.blacklisted_at is not None:
        raise TokenError("Token is blacklisted.")
    if pat.expires_at <= timezone.now():
        raise TokenError("Token has expired.")
    _check_holder(user=pat.user, organization=pat.organization)
    if not token_settings_of(organization=pat.organization).api_tokens_enabled:
        raise TokenError("Personal access tokens are disabled for this organization.")
    return pat


def token_settings_of(*, organization: Organization) -> OrganizationTokenSettings:
    """The organization's token settings (unsaved defaults if none were ever stored)."""
    try:
        return organization.token_settings
    except OrganizationTokenSettings.DoesNotExist:
        return OrganizationTokenSettings(organization=organization)


def membership_get(*, user: User, organization: Organization) -> Membership | None:
    if not user.is_authenticated:
        return None
    membership = Membership.objects.filter(user=user, organization=organization).first()
    if membership is not None:
        membership.user = user  # already loaded: spare every later `membership.user` a query
    return membership


def memberships_of_user(*, user: User):
    return (
        Membership.objects.filter(user=user, organization__deleted_at__isnull=True)
        .select_related("organization")
        .order_by("organization__title", "organization_id")
    )


def personal_access_tokens_of(*, user: User, organization: Organization):
    return PersonalAccessToken.objects.filter(user=user, organization=organization)


# Orderings of /api/users/: the public names Label Studio's clients send -> membership columns.
MEMBER_ORDERINGS = {
    "id": "user_id", "email": "user__email", "username": "user__username", "first_name": "user__first_name",
    "last_name": "user__last_name", "date_joined": "user__date_joined", "last_activity": "user__last_activity",
    "role": "role",
}


def organization_members(*, organization: Organization, ordering: str | None = None):
    """The organization's people (deactivated members too; deleted accounts never), with their user."""
    order_by = []
    for name in (ordering or "id").split(","):
        name = name.strip()
        column = MEMBER_ORDERINGS.get(name.lstrip("-"))
        if column is None:
            raise ValidationError({"ordering": f"Order by one of {sorted(MEMBER_ORDERINGS)} (prefix - to reverse)."})
        order_by.append(f"-{column}" if name.startswith("-") else column)
    return (
        Membership.objects.filter(organization=organization, user__deleted_at__isnull=True)
        .select_related("user").order_by(*order_by, "user_id")
    )


def organization_member_get(*, organization: Organization, user_id) -> Membership | None:
    """A person of this organization by user id; None for anyone else (the API's 404)."""
    return organization_members(organization=organization).filter(user_id=user_id).first()
