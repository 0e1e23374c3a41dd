"""Strategy versions published by analysts: a new version of the configured strategy, checked
as a strategy file is, stored with who and when, and in force for the follow-up engine from
then on (:func:`strategy_in_force`, which ``FollowupService.from_settings`` applies)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.errors import ConflictError, LienwatchError
from lienwatch.followup.strategy import Strategy, parse_strategy
from lienwatch.store.repositories import UserRepository
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
    strategy in force: it must parse as a strategy file does, keep the configured name and
    compliance profile, and carry a version above the one in force (else ConflictError)."""
    strategy = parse_strategy(document, source="document")  # FollowupError: a 422
    current = strategy_in_force(session, configured)
    if strategy.name != current.name:
        raise LienwatchError(f"document.name: publish a version of {current.name!r}, "
                             f"not {strategy.name!r}")  # fmt: skip
    if strategy.profile != current.profile:
        raise LienwatchError(f"document.profile: {current.name} passes the {current.profile} "
                             "compliance profile; a version may not change it")  # fmt: skip
    if strategy.version <= current.version:
        raise ConflictError(f"document.version: {current.label} is in force; publish a version "
                            f"above {current.version}")  # fmt: skip
    user = UserRepository(session).get(by)
    session.add(StrategyVersion(name=strategy.name, version=strategy.version,
                                document=document, published_by=user.id,
                                published_at=at))  # fmt: skip
    session.flush()
    return strategy

