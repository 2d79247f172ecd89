"""Encryption of secrets at rest (webhook signing secrets, storage credentials, IdP keys).

Keys come from FIELD_ENCRYPTION_KEYS: newest first, so a key can be rotated in by prepending it
while the older ones still decrypt. Values are Fernet tokens (AES-128-CBC + HMAC-SHA256).
"""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class DecryptionError(ValueError):
    """A stored secret could not be decrypted with any configured key."""


def _fernet_key(material: str) -> bytes:
    # Any string becomes a valid 32-byte Fernet key; an operator can paste a generated key as-is.
    return base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest())


@lru_cache(maxsize=4)
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(key)) for key in keys])


def _current_cipher() -> MultiFernet:
    return _cipher(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    if not plaintext:
        return ""
    return _current_cipher().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _current_cipher().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("Stored secret cannot be decrypted with the configured keys.") from None
