"""Alert-rule sets: the collateral monitor's thresholds, per-product overrides and enabled alert
types as versioned data an analyst publishes (``lienwatch alert rules-publish``), in place of
the ``[monitor]`` configuration's from the moment they are published.

A rule set's file (TOML)::

    version = 2
    [thresholds]            # every MonitorThresholds key; a key left out takes its default
    long_stay_h = 48
    [thresholds.enabled]    # alert types switched off (every one is on by default)
    unusual_area = false
    [products.NEV]          # per-product overrides, as [monitor.products.NEV]
    offline_wired_h = 12

A version is whole: what it leaves out takes the built-in default, not the configuration's,
so the version an alert records says every threshold it was judged by.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lienwatch.config import MonitorSettings, MonitorThresholds
from lienwatch.errors import LienwatchError

#: The stored name of the rule sets (one set of rules per deployment, versioned).
RULES_NAME = "monitor"


class AlertRules(BaseModel):
    """One version of the alert rules; see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(ge=1)
    thresholds: MonitorThresholds = MonitorThresholds()
    products: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"alert rules v{self.version}"

    def applied_to(self, settings: MonitorSettings) -> MonitorSettings:
        """``settings`` (the ``[monitor]`` configuration) judging by these rules."""
        return settings.model_copy(update={"thresholds": self.thresholds,
                                           "products": self.products,
                                           "rule_set": self.version})  # fmt: skip


def parse_alert_rules(document: dict[str, Any]) -> AlertRules:
    """``document`` (a rule set as its TOML file holds it) checked; LienwatchError naming the
    first key at fault (``document.thresholds.long_stay_h: ...``)."""
    try:
        rules = AlertRules.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in ("document", *error["loc"]))
        raise LienwatchError(f"{key}: {error['msg']}") from None
    try:  # each product's overrides over the thresholds
        MonitorSettings(thresholds=rules.thresholds, products=rules.products)
    except ValidationError as exc:  # "Value error, products.NEV.key: why"
        raise LienwatchError(
            f"document.{exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
    return rules
