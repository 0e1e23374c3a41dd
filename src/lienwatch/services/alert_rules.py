"""Alert-rule versions published by analysts (:mod:`lienwatch.monitor.rules`): checked as a
rule-set file is, stored with who and when, in force for the collateral monitor from that
moment (:func:`monitor_settings_in_force`, which batch runs, ``lienwatch serve`` and the
workers read); the ``[monitor]`` configuration is in force before any."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.access.policy import Publication
from lienwatch.config import MonitorSettings
from lienwatch.monitor.rules import RULES_NAME, AlertRules, parse_alert_rules
from lienwatch.services.published import InForce, store_version
from lienwatch.store.tables import AlertRuleVersion, User


def _newest(session: Session, at: datetime | None = None) -> AlertRuleVersion | None:
    """The newest version published (at ``at`` or before, when given)."""
    query = select(AlertRuleVersion).where(AlertRuleVersion.name == RULES_NAME)
    if at is not None:
        query = query.where(AlertRuleVersion.published_at <= at)
    return session.scalar(query.order_by(AlertRuleVersion.version.desc()).limit(1))


def monitor_settings_in_force(
    session: Session, configured: MonitorSettings, *, at: datetime
) -> MonitorSettings:
    """``configured`` judging by the alert rules in force at ``at``: the newest version
    published by then, else ``configured``'s own thresholds (``rule_set`` None)."""
    row = _newest(session, at)
    return configured if row is None else parse_alert_rules(row.document).applied_to(configured)


def publish_alert_rules(
    session: Session, *, document: dict[str, Any], by: str, at: datetime
) -> AlertRules:
    """Publish ``document`` (a rule set as its TOML file holds it) as the next version, in
    force from ``at``: ``by`` an analyst; checked as a rule-set file is (LienwatchError
    naming the key at fault), a version above the newest, published after it
    (:func:`~lienwatch.services.published.store_version`). Nothing is stored when refused."""
    rules = parse_alert_rules(document)
    newest = _newest(session)
    current = (InForce(RULES_NAME, 0, "the [monitor] configuration") if newest is None
               else InForce(RULES_NAME, newest.version, f"alert rules v{newest.version}",
                            newest.published_at))  # fmt: skip
    store_version(session, AlertRuleVersion, what=Publication.ALERT_RULES, document=document,
                  name=RULES_NAME, version=rules.version, current=current, by=by,
                  at=at)  # fmt: skip
    return rules


def alert_rule_versions(
    session: Session, configured: MonitorSettings, *, at: datetime
) -> dict[str, Any]:
    """The rule set in force at ``at`` and every version published, newest first: who
    published it and when, its thresholds and enabled types in full, and what it changed
    against the one before (the configuration for the first)."""
    rows = session.execute(
        select(AlertRuleVersion, User.username)
        .join(User, User.id == AlertRuleVersion.published_by)
        .where(AlertRuleVersion.name == RULES_NAME)
        .order_by(AlertRuleVersion.version)
    ).all()  # fmt: skip
    before = _values(configured)
    versions = []
    for row, username in rows:
        values = _values(parse_alert_rules(row.document).applied_to(configured))
        versions.append({
            "version": row.version, "published_by": username, "published_at": row.published_at,
            "document": row.document, "values": values, "changes": _changes(before, values),
        })  # fmt: skip
        before = values
    # the newest published by ``at`` (the rows are read already: no second query, no parse)
    in_force = max((row.version for row, _ in rows if row.published_at <= at), default=None)
    return {"in_force": in_force, "configured": _values(configured),
            "versions": versions[::-1]}  # fmt: skip


def _values(settings: MonitorSettings) -> dict[str, Any]:
    """The rules of ``settings`` as a rule-set file holds them (every key)."""
    return {"thresholds": settings.thresholds.model_dump(), "products": settings.products}


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Every key whose value differs, by its dotted name (``thresholds.long_stay_h``)."""
    old, new = _flat(before), _flat(after)
    return [{"key": key, "before": old.get(key), "after": new.get(key)}
            for key in sorted(old.keys() | new.keys()) if old.get(key) != new.get(key)]  # fmt: skip


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat
