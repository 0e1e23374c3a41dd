"""Reward/penalty scheme versions, published like strategies: a new version of the configured
scheme, checked as a scheme file is, stored with who and when; it scores the acts from the
moment it was published (:func:`scheme_versions`, which the league reads), so a month already
scored keeps its figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.access.policy import Publication
from lienwatch.services.published import InForce, store_version
from lienwatch.store.tables import IncentiveScheme
from lienwatch.workforce.incentives import Scheme, Schemes, parse_scheme


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
    as a scheme file does and pass the publication checks
    (:func:`~lienwatch.services.published.store_version`: after the newest, since a version
    may not rescore acts already scored under a later one)."""
    scheme = parse_scheme(document, source="document")
    versions = scheme_versions(session, configured)
    newest_at, current = (versions.published[-1] if versions.published
                          else (None, versions.first))  # fmt: skip
    store_version(session, IncentiveScheme, what=Publication.INCENTIVE_SCHEME,
                  document=document, name=scheme.name, version=scheme.version, by=by, at=at,
                  current=InForce(current.name, current.version, current.label, newest_at))
    return scheme
