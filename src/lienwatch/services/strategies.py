"""Strategy versions published by analysts: a new version of the configured strategy, checked
as a strategy file is, stored with who and when, and in force for the follow-up engine from
then on (:func:`strategy_in_force`, which ``FollowupService.from_settings`` applies)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.access.policy import Publication
from lienwatch.errors import LienwatchError
from lienwatch.followup.strategy import Strategy, parse_strategy
from lienwatch.services.published import InForce, store_version
from lienwatch.store.tables import StrategyVersion


def strategy_in_force(session: Session, configured: Strategy) -> Strategy:
    """The newest published version of ``configured``'s name if it is newer than
    ``configured``, else ``configured``."""
    row = session.scalar(
        select(StrategyVersion).where(StrategyVersion.name == configured.name,
                                      StrategyVersion.version > configured.version)
        .order_by(StrategyVersion.version.desc()).limit(1)
    )  # fmt: skip
    if row is None:
        return configured
    return parse_strategy(row.document, source=f"published {row.name}@{row.version}")


def publish_strategy(
    session: Session, *, document: dict[str, Any], configured: Strategy, by: str, at: datetime
) -> Strategy:
    """Publish ``document`` (a strategy as its TOML file holds it) as the next version of the
    strategy in force, ``by`` an analyst: it must parse as a strategy file does, keep the
    compliance profile, and pass the publication checks
    (:func:`~lienwatch.services.published.store_version`)."""
    strategy = parse_strategy(document, source="document")  # FollowupError: a 422
    current = strategy_in_force(session, configured)
    if strategy.profile != current.profile:
        raise LienwatchError(f"document.profile: {current.name} passes the {current.profile} "
                             "compliance profile; a version may not change it")  # fmt: skip
    store_version(session, StrategyVersion, what=Publication.STRATEGY, document=document,
                  name=strategy.name, version=strategy.version, by=by, at=at,
                  current=InForce(current.name, current.version, current.label))  # fmt: skip
    return strategy
