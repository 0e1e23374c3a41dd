"""The tables of lienwatch (SQLAlchemy 2 typed declarative models), one module per area.

Conventions: money columns are ``BigInteger`` fen; times are :class:`UTCDateTime`; due dates
are local calendar ``Date``s; business identifiers (loan ``ref``, ``vin``, device ``ident``)
are unique text next to an integer surrogate key that foreign keys use.
"""

from lienwatch.store.tables.alerts import Alert, AlertRuleVersion
from lienwatch.store.tables.auth import AuditEntry, AuthToken
from lienwatch.store.tables.base import NAMING_CONVENTION, Base, BigKey
from lienwatch.store.tables.book import (
    Borrower,
    BucketChange,
    Event,
    Installment,
    Loan,
    LoanSnapshot,
    Payment,
    Vehicle,
)
from lienwatch.store.tables.followup import (
    Action,
    BehaviourFit,
    Case,
    Complaint,
    ContactAttempt,
    IncentiveScheme,
    Promise,
    StrategyVersion,
    Task,
    Team,
    Trigger,
    User,
)
from lienwatch.store.tables.ledger import LedgerEntry, LedgerHead, LedgerNode
from lienwatch.store.tables.origination import ApplicationRecord, ScorecardRecord
from lienwatch.store.tables.repossession import Repossession, RepossessionCost, RepossessionStep
from lienwatch.store.tables.telematics import Device, Position, PositionConflict

__all__ = [
    "NAMING_CONVENTION",
    "Action",
    "Alert",
    "AlertRuleVersion",
    "ApplicationRecord",
    "AuditEntry",
    "AuthToken",
    "Base",
    "BehaviourFit",
    "BigKey",
    "Borrower",
    "BucketChange",
    "Case",
    "Complaint",
    "ContactAttempt",
    "Device",
    "Event",
    "IncentiveScheme",
    "Installment",
    "LedgerEntry",
    "LedgerHead",
    "LedgerNode",
    "Loan",
    "LoanSnapshot",
    "Payment",
    "Position",
    "PositionConflict",
    "Promise",
    "Repossession",
    "RepossessionCost",
    "RepossessionStep",
    "ScorecardRecord",
    "StrategyVersion",
    "Task",
    "Team",
    "Trigger",
    "User",
    "Vehicle",
]
