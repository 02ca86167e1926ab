"""Password, token and API-key hashing. Passwords use argon2id; random secrets (tokens and
keys, 256 bits of entropy) are stored as SHA-256 digests, which is safe for high-entropy input
and cheap enough to check on every request."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

# What PostgreSQL text cannot hold (NUL), what UTF-8 cannot encode (lone surrogates), and the
# other C0 controls and DEL, which no form field or file cell means to send; tab, newline and CR stay.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
CONTROL_CHARACTER_ERROR = "Must not contain control characters."

_hasher = PasswordHasher(type=Type.ID)


def configure_password_hasher(time_cost: int, memory_kib: int) -> None:
    global _hasher
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, type=Type.ID)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    if not stored_hash:
        # Spend the same time as a real check so a missing user is not revealed by timing.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def new_secret(prefix: str) -> str:
    """A random bearer secret such as `jy_st_...`; the prefix says what it is when leaked."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def digest_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secrets_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)


def mask_phone(phone: str | None) -> str:
    """138****5678: enough to recognise one's own number, not to call a stranger."""
    if not phone:
        return ""
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_name(name: str | None) -> str:
    """张*梅 / 王* / J*** S****: the first character (and the last for three or more); a name of
    one character has nothing to show that would not be the whole name."""
    if not name:
        return ""
    if name.isascii():
        return " ".join(part[0] + "*" * (len(part) - 1) if len(part) > 1 else "*" for part in name.split())
    if len(name) == 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
