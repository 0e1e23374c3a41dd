"""Signing in: bearer tokens (stored as their SHA-256) and the audit log of logins and of
views of unmasked personal data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from lienwatch.store.tables.base import Base, BigKey


class AuthToken(Base):
    """A bearer token: a login's, a console session's or an integration's API token. Only
    its SHA-256 is stored; ``scopes`` lists what it may do (``read``, ``write``)."""

    __tablename__ = "auth_tokens"

    id: Mapped[int] = mapped_column(BigKey, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # login | session | api
    name: Mapped[str] = mapped_column(String(80), default="")  # an API token's purpose
    scopes: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Who did what, when and from where: every login, failed login and view of unmasked
    personal data."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigKey, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(80), index=True)  # the username given
    action: Mapped[str] = mapped_column(String(32), index=True)
    subject: Mapped[str] = mapped_column(String(120), default="")
    client: Mapped[str] = mapped_column(String(64), default="")  # the client's address
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
