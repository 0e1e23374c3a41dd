"""Reward/penalty scheme versions, published like strategies: a new version of the configured
scheme, checked as a scheme file is, stored with who and when; it scores the acts from the
moment it was published (:func:`scheme_versions`, which the league reads), so a month already
scored keeps its figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.errors import ConflictError, Forbidden, LienwatchError
from lienwatch.followup.model import Role
from lienwatch.store.repositories import UserRepository
from lienwatch.store.tables import IncentiveScheme
from lienwatch.workforce.incentives import Scheme, Schemes, parse_scheme

#: Who may publish a scheme: analysts publish the rules as data (strategies, alert rules),
#: administrators own the configuration (issue 14's role table).
PUBLISHERS = frozenset({Role.ANALYST, Role.ADMIN})


def scheme_versions(session: Session, configured: Scheme) -> Schemes:
    """``configured`` and the versions of its name published since, each with its moment
    (only versions above the configured one count: an older file does not undo them)."""
    rows = session.execute(
        select(IncentiveScheme.published_at, IncentiveScheme.document, IncentiveScheme.version)
        .where(IncentiveScheme.name == configured.name,
               IncentiveScheme.version > configured.version)
        .order_by(IncentiveScheme.published_at, IncentiveScheme.version)
    ).all()  # fmt: skip
    published = tuple(
        (at, parse_scheme(document, source=f"published {configured.name}@{version}"))
        for at, document, version in rows
    )
    return Schemes(configured, published)


def publish_scheme(
    session: Session, *, document: dict[str, Any], configured: Scheme, by: str, at: datetime
) -> Scheme:
    """Publish ``document`` (a scheme as its TOML file holds it) as the next version of the
    configured scheme, in force from ``at``: ``by`` an analyst or administrator; it must parse
    as a scheme file does, keep the configured name, carry a version above the newest and be
    published after it (else ConflictError: a version may not rescore acts already scored
    under a later one)."""
    user = UserRepository(session).get(by)
    if user.role not in PUBLISHERS:
        raise Forbidden(f"by: {by} (role {user.role}) may not publish an incentive scheme; "
                        "an analyst or administrator does")  # fmt: skip
    scheme = parse_scheme(document, source="document")
    versions = scheme_versions(session, configured)
    newest_at, current = (versions.published[-1] if versions.published
                          else (None, versions.first))  # fmt: skip
    if scheme.name != current.name:
        raise LienwatchError(f"document.name: publish a version of {current.name!r}, "
                             f"not {scheme.name!r}")  # fmt: skip
    if scheme.version <= current.version:
        raise ConflictError(f"document.version: {current.label} is the newest; publish a "
                            f"version above {current.version}")  # fmt: skip
    if newest_at is not None and at <= newest_at:
        raise ConflictError(f"at: {current.label} was published at {newest_at.isoformat()}; "
                            "a newer version is published after it")  # fmt: skip
    session.add(IncentiveScheme(name=scheme.name, version=scheme.version, document=document,
                                published_by=user.id, published_at=at))  # fmt: skip
    session.flush()
    return scheme
