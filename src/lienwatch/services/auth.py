"""Signing in: passwords, login with lockout, bearer tokens (logins, console sessions, API
tokens for integrations) and the audit log. The rules (hashing, tokens, lockout, the route
policy, masking) are in :mod:`lienwatch.access`; this module stores and reads them.

Every login and failed login is written to the audit log (who, what, when, from where); a
failed login raises :class:`~lienwatch.errors.LoginRefused`, which ``transaction()`` commits
with the failure counted, so that a lockout holds across requests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from lienwatch.access.credentials import (
    check_password_strength,
    hash_password,
    locked_until,
    needs_rehash,
    new_token,
    token_digest,
    verify_password,
)
from lienwatch.access.policy import TokenScope
from lienwatch.access.principal import Principal
from lienwatch.config import AuthSettings
from lienwatch.errors import LienwatchError, LoginRefused, NotAuthenticated, NotFoundError
from lienwatch.followup.model import Role
from lienwatch.store.repositories import AuditRepository, TokenRepository, UserRepository
from lienwatch.store.tables import AuditEntry, User

#: What a login or a console session may do.
FULL = frozenset(s.value for s in TokenScope)


class TokenKind(StrEnum):
    LOGIN = "login"  # POST /api/v1/auth/login
    SESSION = "session"  # the console's cookie
    API = "api"  # an integration's (lienwatch user token)


class AuditAction(StrEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    PERSONAL_DATA = "personal_data_viewed"
    TOKEN_ISSUED = "token_issued"
    TOKEN_REVOKED = "token_revoked"
    PASSWORD_SET = "password_set"
    USER_ADDED = "user_added"
    ROLE_CHANGED = "role_changed"
    USER_DISABLED = "user_disabled"
    USER_ENABLED = "user_enabled"
    MODEL_PUBLISHED = "model_published"


@dataclass(frozen=True, slots=True)
class Issued:
    """A token just issued: the secret itself (shown once, never stored) and its terms."""

    token: str
    kind: TokenKind
    scopes: frozenset[str]
    expires_at: datetime


class AuthService:
    """Passwords, logins, tokens and the audit log on one session (never committing)."""

    def __init__(self, session: Session, settings: AuthSettings | None = None) -> None:
        self.session = session
        self.settings = settings or AuthSettings()
        self.users = UserRepository(session)
        self.tokens = TokenRepository(session)
        self.log = AuditRepository(session)

    def set_password(self, *, username: str, password: str, by: str, at: datetime) -> None:
        """Set ``username``'s password (argon2id); unlocks the account."""
        check_password_strength(password)
        user = self.users.get(username)
        user.password_hash = hash_password(password)
        user.failed_logins, user.last_failed_login_at = 0, None
        self.audit(actor=by, action=AuditAction.PASSWORD_SET, subject=username, at=at)

    def login(
        self, *, username: str, password: str, at: datetime, client: str = "",
        kind: TokenKind = TokenKind.LOGIN,
    ) -> Issued:  # fmt: skip
        """A bearer token for ``username`` if ``password`` is theirs and the account is
        active and not locked; else :class:`LoginRefused` (one wording for an unknown user
        and a wrong password), the failure counted and audited."""
        user = self._find(username)
        lock = self._locked_until(user, at)
        if lock is not None:
            self._fail(user, username, client, at, "locked", count=False)
            raise LoginRefused(
                f"username: account locked until {lock.isoformat(timespec='seconds')}",
                reason="locked", until=lock)  # fmt: skip
        if not verify_password(user.password_hash if user else None, password):
            self._fail(user, username, client, at, "wrong username or password")
            raise LoginRefused("password: wrong username or password", reason="wrong_password")
        assert user is not None
        if not user.active:
            self._fail(user, username, client, at, "disabled", count=False)
            raise LoginRefused("username: this account is disabled", reason="disabled")
        if user.password_hash and needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        user.failed_logins, user.last_failed_login_at = 0, None
        lifetime = timedelta(minutes=self.settings.token_ttl_minutes)
        issued = self._issue(user, kind, FULL, at, lifetime)
        self.audit(actor=username, action=AuditAction.LOGIN, client=client, at=at,
                   details={"kind": kind.value})  # fmt: skip
        return issued

    def issue_api_token(
        self, *, username: str, name: str, scopes: Iterable[str], by: str, at: datetime,
        ttl: timedelta | None = None,
    ) -> Issued:  # fmt: skip
        """An integration's API token acting as ``username`` with ``scopes`` (read, write)."""
        wanted = frozenset(scopes)
        unknown = sorted(wanted - FULL)
        if not wanted or unknown:
            raise LienwatchError(f"--scope: {', '.join(unknown) or 'none'} given; choose read, "
                                 "write or both")  # fmt: skip
        if not name.strip():
            raise LienwatchError("--name: say what the token is for")
        user = self.users.get(username)
        lifetime = ttl or timedelta(days=self.settings.api_token_ttl_days)
        issued = self._issue(user, TokenKind.API, wanted, at, lifetime, name=name.strip())
        self.audit(actor=by, action=AuditAction.TOKEN_ISSUED, subject=username, at=at,
                   details={"name": name.strip(), "scopes": sorted(wanted),
                            "expires_at": issued.expires_at.isoformat()})  # fmt: skip
        return issued

    def authenticate(self, token: str, *, at: datetime) -> Principal:
        """The user ``token`` stands for; :class:`NotAuthenticated` if it is unknown,
        expired or revoked, or its user disabled."""
        found = self.tokens.find(token_digest(token)) if token else None
        if found is None:
            raise NotAuthenticated("token: missing or unknown")
        stored, user = found
        if stored.revoked_at is not None or stored.expires_at <= at:
            raise NotAuthenticated("token: expired or revoked; log in again")
        if not user.active:
            raise NotAuthenticated("token: this account is disabled")
        return Principal(username=user.username, user_id=user.id, role=Role(user.role),
                         team=user.team, scopes=frozenset(stored.scopes),
                         token_kind=stored.kind)  # fmt: skip

    def revoke(self, token: str, *, at: datetime, client: str = "") -> None:
        """End the session or token ``token`` (logging out); an unknown token is ignored."""
        found = self.tokens.find(token_digest(token))
        if found is not None and found[0].revoked_at is None:
            found[0].revoked_at = at
            self.audit(actor=found[1].username, action=AuditAction.LOGOUT, client=client, at=at,
                       details={"kind": found[0].kind})  # fmt: skip

    def api_tokens(
        self, *, username: str | None = None, before_id: int | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Integrations' API tokens newest first (``username``'s, or everybody's), as listed:
        never the secret, which is not stored."""
        return [{"id": t.id, "username": who, "name": t.name, "scopes": list(t.scopes),
                 "created_at": t.created_at, "expires_at": t.expires_at,
                 "revoked_at": t.revoked_at}
                for t, who in self.tokens.page(kind=TokenKind.API.value, username=username,
                                               before_id=before_id, limit=limit)]  # fmt: skip

    def revoke_api_token(
        self, *, token_id: int, by: str, at: datetime, username: str | None = None,
        client: str = "",
    ) -> dict[str, Any]:  # fmt: skip
        """Revoke API token ``token_id`` (only ``username``'s when given), audited; revoking
        a revoked token changes nothing."""
        found = self.tokens.get(token_id, kind=TokenKind.API.value, username=username)
        if found is None:
            raise NotFoundError(f"token_id: no API token {token_id}")
        token, owner = found
        if token.revoked_at is None:
            token.revoked_at = at
            self.audit(actor=by, action=AuditAction.TOKEN_REVOKED, subject=owner, at=at,
                       client=client, details={"token": token.id, "name": token.name})  # fmt: skip
        return {"id": token.id, "username": owner, "name": token.name,
                "scopes": list(token.scopes), "created_at": token.created_at,
                "expires_at": token.expires_at, "revoked_at": token.revoked_at}  # fmt: skip

    def audit(
        self, *, actor: str, action: AuditAction | str, at: datetime, subject: str = "",
        client: str = "", details: dict[str, Any] | None = None,
    ) -> AuditEntry:  # fmt: skip
        """Append to the audit log."""
        return self.log.add(at=at, actor=actor, action=str(action), subject=subject,
                            client=client, details=details)  # fmt: skip

    def audit_entries(
        self, *, before_id: int | None = None, limit: int = 100, actor: str | None = None,
        action: str | None = None, since: datetime | None = None, until: datetime | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """The audit log newest first, as the auditor reads it."""
        rows = self.log.page(before_id=before_id, limit=limit, actor=actor, action=action,
                             since=since, until=until)  # fmt: skip
        return [{"id": e.id, "at": e.at, "actor": e.actor, "action": e.action,
                 "subject": e.subject, "client": e.client, "details": e.details}
                for e in rows]  # fmt: skip

    def _find(self, username: str) -> User | None:
        try:
            return self.users.get(username)
        except NotFoundError:
            return None

    def _locked_until(self, user: User | None, at: datetime) -> datetime | None:
        if user is None:
            return None
        until = locked_until(user.failed_logins, user.last_failed_login_at,
                             max_failures=self.settings.max_failed_logins,
                             lockout=timedelta(minutes=self.settings.lockout_minutes))  # fmt: skip
        if until is not None and until > at:
            return until
        if until is not None:  # the lock has run out: a fresh count
            user.failed_logins = 0
        return None

    def _fail(
        self, user: User | None, username: str, client: str, at: datetime, why: str,
        *, count: bool = True,
    ) -> None:  # fmt: skip
        if user is not None and count:
            user.failed_logins += 1
            user.last_failed_login_at = at
        self.audit(actor=username, action=AuditAction.LOGIN_FAILED, client=client, at=at,
                   details={"reason": why})  # fmt: skip
        self.session.flush()

    def _issue(
        self, user: User, kind: TokenKind, scopes: frozenset[str], at: datetime,
        lifetime: timedelta, name: str = "",
    ) -> Issued:  # fmt: skip
        token = new_token()
        self.tokens.add(digest=token_digest(token), user=user, kind=kind.value, scopes=scopes,
                        created_at=at, expires_at=at + lifetime, name=name)  # fmt: skip
        return Issued(token, kind, scopes, at + lifetime)
