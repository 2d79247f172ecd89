"""Writes about identity: users, memberships, signup and API tokens."""

from datetime import timedelta

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import (
    ALL_SCOPES,
    LegacyToken,
    Membership,
    OrganizationTokenSettings,
    PersonalAccessToken,
    Role,
    User,
)
from accounts.selectors import Credential, personal_access_token_get_usable, token_settings_of
from accounts.tokens import (
    ACCESS,
    REFRESH,
    ForeignTokenError,
    TokenError,
    decode_jwt,
    encode_jwt,
    hash_secret,
    new_jti,
    new_legacy_key,
)
from tenants.models import Organization
from tenants.services import organization_create, organization_validate


def normalize_scopes(scopes: list[str] | None, *, field: str = "scopes") -> list[str]:
    if scopes is None:
        return list(ALL_SCOPES)
    if not isinstance(scopes, list | tuple) or not scopes:
        raise ValidationError({field: f"Give a non-empty list of scopes from {ALL_SCOPES}."})
    unknown = sorted(set(scopes) - set(ALL_SCOPES))
    if unknown:
        raise ValidationError({field: f"Unknown scope(s) {unknown}; allowed: {ALL_SCOPES}."})
    return [scope for scope in ALL_SCOPES if scope in scopes]


def user_create(*, email: str, password: str, first_name: str = "", last_name: str = "") -> User:
    """Create a user after validating email and password. Raises ValidationError naming the field."""
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationError({"email": "Enter a valid email address."}) from exc
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": "An account with this email already exists; log in instead."})
    candidate = User(email=email, first_name=first_name, last_name=last_name)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ValidationError({"password": list(exc.messages)}) from exc
    try:
        with transaction.atomic():
            return User.objects.create_user(email, password, first_name=first_name, last_name=last_name)
    except IntegrityError as exc:
        raise ValidationError({"email": "An account with this email already exists; log in instead."}) from exc


def user_soft_delete(*, user: User) -> User:
    """Deactivate a user everywhere at once: sessions, tokens and memberships stop working.

    The row stays (tenant tables refer to it without a constraint); per-organization clean-up of
    their data, if ever wanted, is a Celery fan-out, never a cross-schema cascade.
    """
    if user.deleted_at is None:
        user.deleted_at = timezone.now()
        user.is_active = False
        user.save(update_fields=["deleted_at", "is_active"])
    return user


def membership_set(*, user: User, organization: Organization, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        user=user, organization=organization, defaults={"role": role}
    )
    return membership


@transaction.atomic
def organization_create_with_owner(*, user: User, title: str, slug: str | None = None) -> Organization:
    organization = organization_create(title=title, slug=slug)
    membership_set(user=user, organization=organization, role=Role.OWNER)
    OrganizationTokenSettings.objects.create(organization=organization)
    user.active_organization = organization
    user.save(update_fields=["active_organization"])
    return organization


@transaction.atomic
def signup(*, email: str, password: str, organization_title: str, first_name: str = "",
           last_name: str = "", slug: str | None = None) -> tuple[User, Organization]:
    """A new person and their new organization, all or nothing; every bad field is reported."""
    errors: dict[str, list[str]] = {}
    try:
        organization_validate(title=organization_title, slug=slug)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        user = user_create(email=email, password=password, first_name=first_name, last_name=last_name)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    organization = organization_create_with_owner(user=user, title=organization_title, slug=slug)
    return user, organization


# --- Legacy tokens ------------------------------------------------------------------------------

def legacy_token_issue(*, user: User, organization: Organization, key: str | None = None,
                       scopes: list[str] | None = None) -> str:
    """Create or replace the user's legacy key in this organization; returns the plain key once."""
    key = key or new_legacy_key()
    if len(key) < 20 or not key.isalnum():
        raise ValidationError({"token": "A token is at least 20 letters or digits."})
    with transaction.atomic():
        LegacyToken.objects.filter(user=user, organization=organization).delete()
        if LegacyToken.objects.filter(key_hash=hash_secret(key)).exists():
            raise ValidationError({"token": "This token is already in use."})
        LegacyToken.objects.create(
            user=user, organization=organization, key_hash=hash_secret(key), key_prefix=key[:6],
            scopes=normalize_scopes(scopes),
        )
    return key


def legacy_token_matches(*, user: User, organization: Organization, key: str) -> bool:
    return LegacyToken.objects.filter(user=user, organization=organization, key_hash=hash_secret(key)).exists()


# --- Personal access tokens (JWT) ---------------------------------------------------------------

def personal_access_token_create(*, user: User, organization: Organization, scopes: list[str] | None = None,
                                 ttl_days: int | None = None,
                                 creator: Credential | None = None) -> tuple[PersonalAccessToken, str]:
    """Issue a PAT (JWT refresh token). A token may only mint tokens with scopes it has itself."""
    scopes = normalize_scopes(scopes)
    if creator is not None and not set(scopes) <= set(creator.scopes):
        raise ValidationError({"scopes": "A token cannot create a token with more scopes than its own."})
    token_settings = token_settings_of(organization=organization)
    if not token_settings.api_tokens_enabled:
        raise ValidationError({"detail": "Personal access tokens are disabled for this organization."})
    max_days = token_settings.api_token_ttl_days
    if ttl_days is not None and not (1 <= ttl_days <= max_days):
        raise ValidationError({"ttl_days": f"Choose between 1 and {max_days} days."})
    now = timezone.now()
    expires_at = now + timedelta(days=ttl_days or max_days)
    jti = new_jti()
    token = encode_jwt(token_type=REFRESH, jti=jti, user_id=user.pk, organization_id=organization.pk,
                       scopes=scopes, issued_at=now, expires_at=expires_at)
    pat = PersonalAccessToken.objects.create(
        jti=jti, token_hash=hash_secret(token), user=user, organization=organization, scopes=scopes,
        expires_at=expires_at,
    )
    return pat, token


def _pat_from_refresh(*, refresh: str, organization: Organization | None) -> PersonalAccessToken:
    claims = decode_jwt(refresh, expected_type=REFRESH)
    pat = personal_access_token_get_usable(jti=claims.jti)
    if pat.token_hash != hash_secret(refresh):
        raise TokenError("Token is invalid or malformed.")
    if organization is not None and pat.organization_id != organization.pk:
        raise ForeignTokenError("This token belongs to another organization.")
    return pat


def access_token_issue(*, refresh: str, organization: Organization | None = None) -> str:
    """Trade a PAT for a short-lived access token (`/api/token/refresh/`)."""
    from django.conf import settings

    pat = _pat_from_refresh(refresh=refresh, organization=organization)
    now = timezone.now()
    expires_at = min(now + settings.JWT_ACCESS_TOKEN_LIFETIME, pat.expires_at)
    PersonalAccessToken.objects.filter(pk=pat.pk).update(last_used_at=now)
    return encode_jwt(token_type=ACCESS, jti=pat.jti, user_id=pat.user_id, organization_id=pat.organization_id,
                      scopes=pat.scopes, issued_at=now, expires_at=expires_at)


def personal_access_token_blacklist(*, refresh: str, organization: Organization | None = None) -> None:
    claims = decode_jwt(refresh, expected_type=REFRESH)
    pat = PersonalAccessToken.objects.filter(jti=claims.jti, token_hash=hash_secret(refresh)).first()
    if pat is None or (organization is not None and pat.organization_id != organization.pk):
        raise PersonalAccessToken.DoesNotExist
    if pat.blacklisted_at is None:
        pat.blacklisted_at = timezone.now()
        pat.save(update_fields=["blacklisted_at"])


@transaction.atomic
def personal_access_token_rotate(*, refresh: str, user: User, organization: Organization) -> str:
    """Blacklist a PAT and issue a new one with the same scopes and a fresh lifetime."""
    pat = _pat_from_refresh(refresh=refresh, organization=organization)
    if pat.user_id != user.pk:
        raise TokenError("This token belongs to another user.")
    pat.blacklisted_at = timezone.now()
    pat.save(update_fields=["blacklisted_at"])
    _, token = personal_access_token_create(user=user, organization=organization, scopes=pat.scopes)
    return token


def token_settings_update(*, organization: Organization, **fields) -> OrganizationTokenSettings:
    token_settings, _ = OrganizationTokenSettings.objects.get_or_create(organization=organization)
    for name, value in fields.items():
        setattr(token_settings, name, value)
    token_settings.save()
    return token_settings
