"""Rules published as data, versioned (strategies, incentive schemes, alert rules), and
models: the one check every publisher makes (:func:`publisher`, the role), and the storing
of a version after its checks (:func:`store_version`).

A publication names the rules (its name), carries a version above the one in force and,
for rules in force from the moment they were published, comes after the newest; it is made
by a role :func:`lienwatch.access.policy.may_publish` allows. The rules' own checks (the
document parses as their file does, a strategy keeps its compliance profile) are their
publisher's, before this one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from lienwatch.access.policy import Publication, may_publish
from lienwatch.errors import ConflictError, Forbidden, LienwatchError
from lienwatch.store.repositories import UserRepository
from lienwatch.store.tables import User
from lienwatch.store.tables.base import PublishedVersion


@dataclass(frozen=True, slots=True)
class InForce:
    """The version a publication follows: its name, version, label for messages, and when
    it was published (None: the configured file's, or rules whose versions are not timed)."""

    name: str
    version: int
    label: str
    published_at: datetime | None = None


def publisher(session: Session, by: str, what: Publication) -> User:
    """The user ``by``, if their role may publish ``what`` (else Forbidden)."""
    user = UserRepository(session).get(by)
    if not may_publish(user.role, what):
        kind = what.value.replace("_", " ")
        raise Forbidden(f"by: {by} (role {user.role}) may not publish the {kind}")
    return user


def store_version(
    session: Session,
    row_type: type[PublishedVersion],
    *,
    what: Publication,
    document: dict[str, Any],
    name: str,
    version: int,
    current: InForce,
    by: str,
    at: datetime,
) -> PublishedVersion:
    """Store ``document`` as version ``version`` of ``name`` published by ``by`` at ``at``,
    after ``current``: Forbidden for a role that may not publish ``what``, LienwatchError for
    another name, ConflictError for a version not above ``current``'s or a moment not after
    it. Nothing is stored when it raises."""
    user = publisher(session, by, what)
    if name != current.name:
        raise LienwatchError(f"document.name: publish a version of {current.name!r}, "
                             f"not {name!r}")  # fmt: skip
    if version <= current.version:
        raise ConflictError(f"document.version: {current.label} is in force; publish a "
                            f"version above {current.version}")  # fmt: skip
    if current.published_at is not None and at <= current.published_at:
        raise ConflictError(f"at: {current.label} was published at "
                            f"{current.published_at.isoformat()}; a newer version is "
                            "published after it")  # fmt: skip
    row = row_type(name=name, version=version, document=document, published_by=user.id,
                   published_at=at)  # fmt: skip
    session.add(row)
    session.flush()
    return row
