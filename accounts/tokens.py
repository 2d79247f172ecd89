"""Token primitives: key generation, hashing and JWT encoding. No database access here.

A personal access token (PAT) is a JWT refresh token, as label-studio-sdk 2.x expects: the SDK
decodes it without verification, reads `exp` and `token_type`, and trades it at
`/api/token/refresh/` for a short-lived access token that it sends as `Authorization: Bearer`.
"""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from django.conf import settings

JWT_ALGORITHM = "HS256"
REFRESH = "refresh"
ACCESS = "access"


class TokenError(Exception):
    """A credential that cannot be accepted; the message is safe to show to the caller."""


class ForeignTokenError(TokenError):
    """A valid token used under another organization's URL (403, not 401)."""


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_legacy_key() -> str:
    return secrets.token_hex(20)


def new_jti() -> str:
    return uuid.uuid4().hex


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2


@dataclass(frozen=True)
class JwtClaims:
    token_type: str
    jti: str
    user_id: int
    organization_id: int
    scopes: tuple[str, ...]
    expires_at: datetime


def encode_jwt(*, token_type: str, jti: str, user_id: int, organization_id: int, scopes: list[str],
               issued_at: datetime, expires_at: datetime) -> str:
    payload = {
        "token_type": token_type,
        "jti": jti,
        "user_id": user_id,
        "org": organization_id,
        "scopes": list(scopes),
        "iat": int(issued_at.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    return jwt.encode(payload, settings.JWT_SIGNING_KEY, algorithm=JWT_ALGORITHM)


def decode_jwt(token: str, *, expected_type: str) -> JwtClaims:
    try:
        payload = jwt.decode(
            token, settings.JWT_SIGNING_KEY, algorithms=[JWT_ALGORITHM],
            options={"require": ["exp", "jti", "token_type"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("Token has expired.") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError("Token is invalid or malformed.") from exc
    if payload.get("token_type") != expected_type:
        raise TokenError(f"Expected a JWT {expected_type} token.")
    try:
        return JwtClaims(
            token_type=payload["token_type"],
            jti=str(payload["jti"]),
            user_id=int(payload["user_id"]),
            organization_id=int(payload["org"]),
            scopes=tuple(payload.get("scopes") or ()),
            expires_at=datetime.fromtimestamp(payload["exp"], tz=UTC),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TokenError("Token is invalid or malformed.") from exc
