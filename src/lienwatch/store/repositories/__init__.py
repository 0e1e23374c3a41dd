"""The persistence verbs, one module per aggregate; the caller owns the transaction."""

from lienwatch.store.repositories.alerts import AlertRepository
from lienwatch.store.repositories.auth import AuditRepository, TokenRepository
from lienwatch.store.repositories.common import insert_ignoring_duplicates
from lienwatch.store.repositories.devices import DeviceRepository
from lienwatch.store.repositories.loans import LoanRepository, PaymentRepository
from lienwatch.store.repositories.positions import (
    PositionRepository,
    PositionRow,
    adopt_staged_positions,
    load_positions,
    positions_schema,
    stage_positions,
    store_position_rows,
)
from lienwatch.store.repositories.users import USERNAME, TeamRepository, UserRepository

__all__ = [
    "USERNAME",
    "AlertRepository",
    "AuditRepository",
    "DeviceRepository",
    "LoanRepository",
    "PaymentRepository",
    "PositionRepository",
    "PositionRow",
    "TeamRepository",
    "TokenRepository",
    "UserRepository",
    "adopt_staged_positions",
    "insert_ignoring_duplicates",
    "load_positions",
    "positions_schema",
    "stage_positions",
    "store_position_rows",
]
