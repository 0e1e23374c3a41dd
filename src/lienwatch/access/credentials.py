"""Passwords (argon2id), bearer tokens (random, stored as their SHA-256), the CSRF token of a
console session, and the lockout rule after repeated failed logins."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from lienwatch.errors import LienwatchError

#: argon2id with OWASP's recommended minimum (m=19 MiB, t=2, p=1): about 70 ms a hash on a
#: small server, where the library's default (RFC 9106 low-memory, m=64 MiB, t=3, p=4) took
#: 450 ms and let a few concurrent logins stall the API. A stored hash names its parameters,
#: so raising them later rehashes each password at its owner's next login.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)

#: Shortest password accepted.
MIN_PASSWORD = 10
#: Longest password accepted (argon2 takes any length; this bounds the work of one request).
MAX_PASSWORD = 1024
#: Bearer tokens carry this prefix so a leaked one is recognisable (secret scanners).
TOKEN_PREFIX = "lw_"


def check_password_strength(password: str) -> None:
    """Refuse (one line) a password too short, too long or only spaces."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD or not password.strip():
        raise LienwatchError(
            f"password: must be {MIN_PASSWORD}-{MAX_PASSWORD} characters, not only spaces"
        )


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string, salt included) of ``password``."""
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches the ``stored`` hash. Without a hash (an unknown user, a
    user who never set a password) a dummy hash is verified all the same, so that the answer
    takes as long as for a wrong password (no enumeration of users by timing)."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _HASHER.verify(stored or _dummy_hash(), password) and bool(stored)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was made with weaker parameters than today's."""
    return _HASHER.check_needs_rehash(stored)


@cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def new_token() -> str:
    """A new bearer token: 32 random bytes, URL-safe, with the lienwatch prefix."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The SHA-256 (hex) under which a token is stored: the token itself never is."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(session_token: str) -> str:
    """The CSRF token of a console session: derived from the session's secret token, so a
    page can embed it in its forms and the server check it without storing it, and another
    site (which cannot read the HTTP-only cookie) cannot forge it."""
    return hmac.new(session_token.encode(), b"lienwatch csrf", hashlib.sha256).hexdigest()


def check_csrf(session_token: str, given: str | None) -> bool:
    """Whether ``given`` is the CSRF token of ``session_token`` (constant time)."""
    return bool(given) and hmac.compare_digest(csrf_token(session_token), given or "")


def locked_until(
    failures: int, last_failure: datetime | None, *, max_failures: int, lockout: timedelta
) -> datetime | None:
    """When an account with ``failures`` consecutive failed logins, the last at
    ``last_failure``, may try again; None when it is not locked."""
    if failures < max_failures or last_failure is None:
        return None
    return last_failure + lockout
