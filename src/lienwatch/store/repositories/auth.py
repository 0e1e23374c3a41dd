"""Bearer tokens (by digest) and the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.store.tables import AuditEntry, AuthToken, User


class TokenRepository:
    """The bearer tokens users sign in with, found by the SHA-256 of the token."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self, *, digest: str, user: User, kind: str, scopes: Sequence[str], created_at: datetime,
        expires_at: datetime, name: str = "",
    ) -> AuthToken:  # fmt: skip
        token = AuthToken(digest=digest, user_id=user.id, kind=kind, name=name,
                          scopes=sorted(scopes), created_at=created_at,
                          expires_at=expires_at)  # fmt: skip
        self.session.add(token)
        self.session.flush()
        return token

    def find(self, digest: str) -> tuple[AuthToken, User] | None:
        """The token stored under ``digest`` with its user, whatever its state."""
        row = self.session.execute(
            select(AuthToken, User).join(User, User.id == AuthToken.user_id)
            .where(AuthToken.digest == digest)
        ).first()  # fmt: skip
        return None if row is None else (row[0], row[1])

    def page(
        self, *, kind: str, username: str | None, before_id: int | None, limit: int
    ) -> list[tuple[AuthToken, str]]:
        """Tokens of ``kind`` (of ``username`` when given) with their user's name, newest
        first, before ``before_id``."""
        query = (select(AuthToken, User.username).join(User, User.id == AuthToken.user_id)
                 .where(AuthToken.kind == kind)
                 .order_by(AuthToken.id.desc()).limit(limit))  # fmt: skip
        if username is not None:
            query = query.where(User.username == username)
        if before_id is not None:
            query = query.where(AuthToken.id < before_id)
        return [(token, name) for token, name in self.session.execute(query)]

    def get(
        self, token_id: int, *, kind: str, username: str | None
    ) -> tuple[AuthToken, str] | None:
        """Token ``token_id`` of ``kind`` (and of ``username`` when given) with its user's
        name."""
        query = (select(AuthToken, User.username).join(User, User.id == AuthToken.user_id)
                 .where(AuthToken.id == token_id, AuthToken.kind == kind))  # fmt: skip
        if username is not None:
            query = query.where(User.username == username)
        row = self.session.execute(query).first()
        return None if row is None else (row[0], row[1])



class AuditRepository:
    """The audit log: appended to, read newest first by keyset pages."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self, *, at: datetime, actor: str, action: str, subject: str = "", client: str = "",
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:  # fmt: skip
        entry = AuditEntry(at=at, actor=actor[:80], action=action, subject=subject[:120],
                           client=client[:64], details=details or {})  # fmt: skip
        self.session.add(entry)
        return entry

    def page(
        self, *, before_id: int | None, limit: int, actor: str | None = None,
        action: str | None = None, since: datetime | None = None, until: datetime | None = None,
    ) -> list[AuditEntry]:  # fmt: skip
        """Up to ``limit`` entries, newest first, older than ``before_id`` if given."""
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(AuditEntry.id < before_id)
        if actor is not None:
            query = query.where(AuditEntry.actor == actor)
        if action is not None:
            query = query.where(AuditEntry.action == action)
        if since is not None:
            query = query.where(AuditEntry.at >= since)
        if until is not None:
            query = query.where(AuditEntry.at < until)
        return list(self.session.scalars(query))
