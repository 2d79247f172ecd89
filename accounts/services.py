"""Writes about identity: users, memberships, signup and API tokens."""

from datetime import timedelta

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import audit
from accounts.models import (
    ALL_SCOPES,
    INACTIVE_ROLES,
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
from billing import limits as billing_limits
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


@transaction.atomic
def membership_set(*, user: User, organization: Organization, role: str) -> Membership:
    before = (Membership.objects.select_for_update().filter(user=user, organization=organization)
              .values_list("role", flat=True).first())
    billing_limits.seats_follow(organization_id=organization.pk, before=before, after=role)
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
                       scopes: list[str] | None = None, request=None) -> str:
    """Create or replace the user's legacy key in this organization; returns the plain key once.
    Audited as "token.created" (first key) or "token.legacy_reset" (a replacement)."""
    key = key or new_legacy_key()
    if len(key) < 20 or not key.isalnum():
        raise ValidationError({"token": "A token is at least 20 letters or digits."})
    with transaction.atomic():
        replaced, _ = LegacyToken.objects.filter(user=user, organization=organization).delete()
        if LegacyToken.objects.filter(key_hash=hash_secret(key)).exists():
            raise ValidationError({"token": "This token is already in use."})
        token = LegacyToken.objects.create(
            user=user, organization=organization, key_hash=hash_secret(key), key_prefix=key[:6],
            scopes=normalize_scopes(scopes),
        )
        audit.record(organization=organization, actor=user,
                     action="token.legacy_reset" if replaced else "token.created", target=token,
                     details={"kind": "legacy", "scopes": token.scopes}, request=request)
    return key


def legacy_token_matches(*, user: User, organization: Organization, key: str) -> bool:
    return LegacyToken.objects.filter(user=user, organization=organization, key_hash=hash_secret(key)).exists()


# --- Personal access tokens (JWT) ---------------------------------------------------------------

def personal_access_token_create(*, user: User, organization: Organization, scopes: list[str] | None = None,
                                 ttl_days: int | None = None, creator: Credential | None = None,
                                 request=None) -> tuple[PersonalAccessToken, str]:
    """Issue a PAT (JWT refresh token). A token may only mint tokens with scopes it has itself.
    Audited as "token.created"."""
    with transaction.atomic():
        pat, token = _personal_access_token_issue(user=user, organization=organization, scopes=scopes,
                                                  ttl_days=ttl_days, creator=creator)
        audit.record(organization=organization, actor=user, action="token.created", target=pat,
                     details={"kind": "pat", "scopes": pat.scopes, "expires_at": pat.expires_at.isoformat()},
                     request=request)
    return pat, token


def _personal_access_token_issue(*, user: User, organization: Organization, scopes: list[str] | None,
                                 ttl_days: int | None, creator: Credential | None) -> tuple[PersonalAccessToken, str]:
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


@transaction.atomic
def personal_access_token_blacklist(*, refresh: str, organization: Organization | None = None,
                                    request=None) -> None:
    """Revoke a PAT (possession of it is the authority); audited as "token.revoked" by its owner."""
    claims = decode_jwt(refresh, expected_type=REFRESH)
    pat = PersonalAccessToken.objects.filter(jti=claims.jti, token_hash=hash_secret(refresh)).first()
    if pat is None or (organization is not None and pat.organization_id != organization.pk):
        raise PersonalAccessToken.DoesNotExist
    personal_access_token_revoke(pat=pat, request=request)


@transaction.atomic
def personal_access_token_revoke(*, pat: PersonalAccessToken, request=None) -> None:
    """Blacklist a PAT (again: a no-op); audited as "token.revoked" by its owner."""
    pat = PersonalAccessToken.objects.select_for_update().select_related("organization", "user").get(pk=pat.pk)
    if pat.blacklisted_at is None:
        pat.blacklisted_at = timezone.now()
        pat.save(update_fields=["blacklisted_at"])
        audit.record(organization=pat.organization, actor=pat.user, action="token.revoked", target=pat,
                     details={"kind": "pat"}, request=request)


@transaction.atomic
def personal_access_token_rotate(*, refresh: str, user: User, organization: Organization, request=None) -> str:
    """Blacklist a PAT and issue a new one with the same scopes and a fresh lifetime."""
    pat = _pat_from_refresh(refresh=refresh, organization=organization)
    if pat.user_id != user.pk:
        raise TokenError("This token belongs to another user.")
    pat.blacklisted_at = timezone.now()
    pat.save(update_fields=["blacklisted_at"])
    new_pat, token = _personal_access_token_issue(user=user, organization=organization, scopes=pat.scopes,
                                                  ttl_days=None, creator=None)
    audit.record(organization=organization, actor=user, action="token.rotated", target=new_pat,
                 details={"kind": "pat", "replaced_token_id": pat.pk, "scopes": new_pat.scopes}, request=request)
    return token


@transaction.atomic
def member_tokens_revoke(*, organization: Organization, user: User) -> dict[str, int]:
    """End a member's API access to one organization at once (deprovisioning): their legacy key
    there is deleted and their personal access tokens there are blacklisted, so the next call with
    either gets 401. Tokens for their other organizations are untouched. Returns the counts."""
    legacy, _ = LegacyToken.objects.filter(user=user, organization=organization).delete()
    pats = PersonalAccessToken.objects.filter(user=user, organization=organization,
                                              blacklisted_at__isnull=True).update(blacklisted_at=timezone.now())
    return {"legacy": legacy, "pats": pats}


TOKEN_SETTINGS_FIELDS = ("api_tokens_enabled", "legacy_api_tokens_enabled", "api_token_ttl_days")


@transaction.atomic
def token_settings_update(*, organization: Organization, actor: User | None = None, request=None,
                          **fields) -> OrganizationTokenSettings:
    """Change the organization's API token settings; audited as "token.settings_changed"."""
    token_settings, _ = OrganizationTokenSettings.objects.select_for_update().get_or_create(
        organization=organization
    )
    diff = {name: {"from": getattr(token_settings, name), "to": value}
            for name, value in fields.items() if getattr(token_settings, name) != value}
    for name, value in fields.items():
        setattr(token_settings, name, value)
    token_settings.save()
    if diff:
        audit.record(organization=organization, actor=actor, action="token.settings_changed",
                     target=token_settings, details=diff, request=request)
    return token_settings


# --- Profiles and the organization's users -------------------------------------------------------

# Fields a person changes on their own profile; an administrator with users.change may change
# only PROFILE_FIELDS of someone else (preferences, password and active organization stay theirs).
PROFILE_FIELDS = ("first_name", "last_name", "phone", "username")
OWN_FIELDS = (*PROFILE_FIELDS, "allow_newsletters", "custom_hotkeys", "active_organization", "password")
MAX_HOTKEYS = 500
MAX_HOTKEY_LENGTH = 100


def hotkeys_validate(value, *, field: str = "custom_hotkeys") -> dict | None:
    """`{action: key}` where key is a non-empty string ("ctrl+enter"), or Label Studio's
    `{action: {"key": str, "active": bool}}`; null clears them."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError({field: "Must be an object mapping actions to keys."})
    if len(value) > MAX_HOTKEYS:
        raise ValidationError({field: f"At most {MAX_HOTKEYS} hotkeys."})
    for action, binding in value.items():
        if not action.strip() or len(action) > MAX_HOTKEY_LENGTH:
            raise ValidationError({field: f"Action names are non-empty strings up to {MAX_HOTKEY_LENGTH} characters."})
        key = binding.get("key") if isinstance(binding, dict) else binding
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_HOTKEY_LENGTH:
            raise ValidationError({field: f"The key of {action!r} must be a non-empty string (e.g. \"ctrl+enter\")."})
        if isinstance(binding, dict):
            if set(binding) - {"key", "active", "description"}:
                raise ValidationError({field: f"The binding of {action!r} may only have key, active, description."})
            if not isinstance(binding.get("active", True), bool):
                raise ValidationError({field: f"'active' of {action!r} must be true or false."})
    return value


def user_profile_update(*, user: User, changes: dict, by_self: bool) -> User:
    """Change a profile. `by_self` allows OWN_FIELDS, else only PROFILE_FIELDS may be given."""
    allowed = (*OWN_FIELDS, "current_password") if by_self else PROFILE_FIELDS
    refused = sorted(set(changes) - set(allowed))
    if refused:
        raise ValidationError({refused[0]: "Only the user themselves can change this."})
    changes = dict(changes)
    current_password = changes.pop("current_password", None)
    if "custom_hotkeys" in changes:
        changes["custom_hotkeys"] = hotkeys_validate(changes["custom_hotkeys"])
    if "active_organization" in changes:
        changes["active_organization"] = _active_organization_of(user=user, pk=changes["active_organization"])
    fields = list(changes)
    if "password" in changes:
        password = changes.pop("password")
        if user.has_usable_password() and not user.check_password(current_password or ""):
            # A credential alone must not take over the account: an organization's single sign-on
            # (or a token it let someone make) speaks for its own members, never for the password
            # that opens the person's other organizations.
            raise ValidationError({"current_password": "Give your current password to set a new one."})
        try:
            validate_password(password, user=user)
        except ValidationError as exc:
            raise ValidationError({"password": list(exc.messages)}) from exc
        user.set_password(password)
    for name, value in changes.items():
        setattr(user, name, value)
    if fields:
        user.save(update_fields=fields)
    return user


def _active_organization_of(*, user: User, pk: int | None) -> Organization | None:
    if pk is None:
        return None
    membership = (
        Membership.objects.filter(user=user, organization_id=pk, organization__deleted_at__isnull=True)
        .exclude(role__in=INACTIVE_ROLES).select_related("organization").first()
    )
    if membership is None:
        raise ValidationError({"active_organization": "You are not an active member of that organization."})
    return membership.organization


@transaction.atomic
def organization_user_create(*, organization: Organization, actor: User, email: str, first_name: str = "",
                             last_name: str = "", phone: str = "", username: str = "",
                             request=None) -> Membership:
    """Add a person to the organization with its default role: the existing account of this email
    (whose profile stays as its owner keeps it), else a new account without a usable password (the
    person sets one by password reset or single sign-on). Audited as "member.created"."""
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationError({"email": "Enter a valid email address."}) from exc
    user = User.objects.filter(email__iexact=email).first()
    created = user is None
    if not created and (user.deleted_at is not None or not user.is_active):
        raise ValidationError({"email": "The account of this email is deactivated."})
    if not created and Membership.objects.filter(user=user, organization=organization).exists():
        raise ValidationError({"email": "This person is already a member of this organization."})
    try:
        with transaction.atomic():  # a concurrent request adding the same person loses here, as a 400
            if created:
                user = User.objects.create_user(email, None, first_name=first_name, last_name=last_name,
                                                phone=phone, username=username or email)
            billing_limits.seats_follow(organization_id=organization.pk, before=None, after=organization.default_role)
            membership = Membership.objects.create(user=user, organization=organization,
                                                   role=organization.default_role)
    except IntegrityError as exc:
        raise ValidationError({"email": "This person has just been added; reload the list."}) from exc
    audit.record(organization=organization, actor=actor, action="member.created", target=user,
                 details={"user_id": user.pk, "email": user.email, "role": membership.role,
                          "new_account": created}, request=request)
    return membership

