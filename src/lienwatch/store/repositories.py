"""Repositories: the small persistence verbs the capabilities use.

Each repository wraps a :class:`~sqlalchemy.orm.Session` and never commits: the caller owns
the transaction, so a payment and its ledger entry (or an alert and its case) commit together.
The same code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lienwatch.domain.delinquency import MANUAL_STATUSES, LoanStatus
from lienwatch.domain.positions import PositionColumns
from lienwatch.domain.schedule import parse_enum
from lienwatch.errors import ConflictError, LienwatchError, NotFoundError
from lienwatch.followup.model import Role, Skill
from lienwatch.monitor.model import Alert as MonitorAlert
from lienwatch.monitor.model import AlertStatus, utc
from lienwatch.store.db import savepoint
from lienwatch.store.tables import (
    Alert,
    Device,
    Installment,
    Loan,
    Payment,
    Position,
    Team,
    User,
    Vehicle,
)


def insert_ignoring_duplicates(
    session: Session, table: Table, rows: Sequence[Mapping[str, Any]]
) -> int:
    """Insert ``rows``, skipping those that collide with a unique constraint; return how many
    were new."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # RETURNING counts the rows really inserted on every driver (executemany's rowcount is -1
    # on psycopg); SQLAlchemy batches it into multi-row VALUES statements.
    statement = insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)
    return len(session.execute(statement, list(rows)).all())


class LoanRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, loan: Loan, installments: Iterable[Installment]) -> Loan:
        """Add a loan with its schedule; an existing ``ref`` is a :class:`ConflictError`."""
        with self.session.no_autoflush:
            taken = self.session.scalar(select(Loan.id).where(Loan.ref == loan.ref))
        if taken is not None:
            raise ConflictError(f"loan {loan.ref!r} already exists")
        loan.installments = list(installments)
        self.session.add(loan)
        self.session.flush()
        return loan

    def get_by_ref(self, ref: str) -> Loan:
        loan = self.session.scalar(select(Loan).where(Loan.ref == ref))
        if loan is None:
            raise NotFoundError(f"loan {ref!r} does not exist")
        return loan

    def set_operator_status(self, loan: Loan, status: LoanStatus | str | None) -> None:
        """Record the terminal status an operator decided (repossessed, settled, written-off),
        which the nightly run keeps over the derived one; ``None`` hands the status back to
        the run. Raises :class:`ValueError` naming ``status`` for any other status."""
        if status is not None:
            if status not in MANUAL_STATUSES:
                allowed = ", ".join(sorted(MANUAL_STATUSES))
                raise ValueError(f"status: {status!r} cannot be set by hand; one of {allowed}")
            loan.status = LoanStatus(status).value
        loan.operator_status = None if status is None else LoanStatus(status).value
        self.session.flush()

    def count_by_status(self) -> dict[str, int]:
        rows = self.session.execute(select(Loan.status, func.count()).group_by(Loan.status))
        return {status: count for status, count in rows.all()}

    def due_between(self, start: date, end: date) -> list[Installment]:
        """Installments falling due in ``[start, end]``, in due-date order."""
        query = (
            select(Installment)
            .where(Installment.due_date.between(start, end))
            .order_by(Installment.due_date, Installment.loan_id, Installment.n)
        )
        return list(self.session.scalars(query))


class PaymentRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self,
        *,
        loan: Loan,
        external_id: str,
        paid_on: date,
        amount: int,
        channel: str = "bank_debit",
    ) -> tuple[Payment, bool]:
        """Store a payment once per ``external_id``; return it and whether it is new.

        The same id with the same loan and amount is a harmless retry. The same id with anything
        else is a :class:`ConflictError`: two different payments cannot share a bank reference.
        """
        if amount <= 0:
            raise ValueError(f"amount: must be positive, got {amount} fen")
        if paid_on < loan.disbursed_on:
            raise ValueError(f"paid_on: {paid_on} is before disbursement on {loan.disbursed_on}")
        with self.session.no_autoflush:
            existing = self.session.scalar(
                select(Payment).where(Payment.external_id == external_id)
            )
        if existing is None:
            payment = Payment(
                external_id=external_id,
                loan_id=loan.id,
                paid_on=paid_on,
                amount=amount,
                channel=channel,
            )
            try:
                with savepoint(self.session):
                    self.session.add(payment)
            except IntegrityError:  # a concurrent writer stored the same id first
                existing = self.session.scalar(
                    select(Payment).where(Payment.external_id == external_id)
                )
            else:
                return payment, True
        assert existing is not None
        if existing.loan_id != loan.id or existing.amount != amount or existing.paid_on != paid_on:
            raise ConflictError(
                f"payment {external_id!r} already recorded as {existing.amount} fen on "
                f"{existing.paid_on} for loan id {existing.loan_id}; refusing a different one"
            )
        return existing, False

    def reverse(self, *, external_id: str, reason: str, at: datetime) -> tuple[Payment, bool]:
        """Mark payment ``external_id`` reversed (a bounced payment) at ``at``; return it and
        whether this call reversed it.

        Idempotent: a payment already reversed is returned unchanged with ``False`` (the first
        reversal's time and reason stand). The nightly run ignores reversed payments, so its
        next run replays the loan as if the payment had never arrived. Raises
        :class:`NotFoundError` for an unknown id and :class:`ValueError` naming ``reason``
        (empty or over 200 characters) or ``at`` (without a time zone).
        """
        reason = reason.strip()
        if not reason or len(reason) > 200:
            raise ValueError(f"reason: must say why, in 1–200 characters, got {reason!r}")
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"at: must carry a time zone, got {at.isoformat()}")
        payment = self.session.scalar(
            select(Payment).where(Payment.external_id == external_id).with_for_update()
        )
        if payment is None:
            raise NotFoundError(f"payment {external_id!r} does not exist")
        if payment.reversed_at is not None:
            return payment, False
        payment.reversed_at = at
        payment.reversal_reason = reason
        self.session.flush()
        return payment, True


class DeviceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_by_ident(self, ident: str) -> Device:
        device = self.session.scalar(select(Device).where(Device.ident == ident))
        if device is None:
            raise NotFoundError(f"device {ident!r} is not registered")
        return device

    def find(self, ident: str) -> Device | None:
        return self.session.scalar(select(Device).where(Device.ident == ident))

    def add_quarantined(self, ident: str, protocol: str, partner: str | None = None) -> Device:
        """Record a device nobody registered, unbound and quarantined (tied to the HTTP
        ``partner`` that posted for it, if any); an existing ``ident`` (a concurrent
        connection got there first) is returned as it is."""
        device = Device(
            ident=ident, protocol=protocol, kind="wired", quarantined=True, partner=partner
        )
        try:
            with savepoint(self.session):
                self.session.add(device)
        except IntegrityError:
            return self.get_by_ident(ident)
        return device

    def set_partner(self, ident: str, partner: str | None) -> Device | None:
        """Tie the device to the HTTP ingest ``partner`` (None: any partner); None if there
        is no such device."""
        device = self.find(ident)
        if device is not None:
            device.partner = partner
        return device

    def loan_of(self, vehicle_id: int) -> int | None:
        """The id of the vehicle's most recently disbursed loan, or None."""
        query = (
            select(Loan.id)
            .where(Loan.vehicle_id == vehicle_id)
            .order_by(Loan.disbursed_on.desc(), Loan.id.desc())
            .limit(1)
        )
        return self.session.scalar(query)

    def set_auth_code(self, device_id: int, code: str | None) -> None:
        self.session.execute(update(Device).where(Device.id == device_id).values(auth_code=code))

    def set_status(self, device_id: int, status: str) -> None:
        self.session.execute(update(Device).where(Device.id == device_id).values(status=status))

    def note_last_fixes(self, last_fix: Mapping[int, datetime]) -> None:
        """Move each device's ``last_fix_at`` forward to the given time (never backward)."""
        if not last_fix:
            return
        table = Device.__table__
        statement = (
            update(table)
            .where(table.c.id == bindparam("device"))
            .where(or_(table.c.last_fix_at.is_(None), table.c.last_fix_at < bindparam("at")))
            .values(last_fix_at=bindparam("at"))
        )
        rows = [{"device": device, "at": at} for device, at in last_fix.items()]
        self.session.connection().execute(statement, rows)

    def bind(self, *, device: Device, vehicle: Vehicle) -> None:
        """Fit ``device`` to ``vehicle``: one wired and one wireless tracker at most."""
        taken = self.session.scalar(
            select(Device.ident).where(
                Device.vehicle_id == vehicle.id, Device.kind == device.kind, Device.id != device.id
            )
        )
        if taken is not None:
            raise ConflictError(
                f"vehicle {vehicle.vin} already carries {device.kind} device {taken}; "
                f"unbind it before fitting {device.ident}"
            )
        device.vehicle = vehicle
        self.session.flush()


class PositionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add_many(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Store fixes, dropping duplicates of (device, fix time); return how many were new."""
        return insert_ignoring_duplicates(self.session, Position.__table__, rows)

    def track(self, device_id: int, start: datetime, end: datetime) -> list[Position]:
        """A device's fixes with ``start <= fix_time < end`` in time order."""
        query = (
            select(Position)
            .where(Position.device_id == device_id)
            .where(Position.fix_time >= start, Position.fix_time < end)
            .order_by(Position.fix_time)
        )
        return list(self.session.scalars(query))

    def last_fix(self, device_id: int) -> Position | None:
        query = (
            select(Position)
            .where(Position.device_id == device_id)
            .order_by(Position.fix_time.desc())
            .limit(1)
        )
        return self.session.scalar(query)


def load_positions(session: Session, columns: PositionColumns, *, chunk: int = 200_000) -> int:
    """Bulk-store fixes (received when they were taken), dropping duplicates of (device, time).

    Goes around the ORM for speed: ``executemany`` on SQLite, ``COPY`` into a staging table on
    PostgreSQL. Returns how many fixes were new.
    """
    dialect = session.get_bind().dialect.name
    loader = _copy_positions_postgresql if dialect == "postgresql" else _insert_positions_sqlite
    total = 0
    for start in range(0, len(columns), chunk):
        part = slice(start, start + chunk)
        total += loader(session, {name: getattr(columns, name)[part] for name in _POSITION_FIELDS})
    return total


_POSITION_FIELDS = ("device_id", "time", "lat", "lon", "speed_kmh", "course", "valid", "alarms")
_POSITION_COLUMNS = (
    "device_id, fix_time, received_at, lat, lon, speed_kmh, course, valid, alarms, archived"
)


def _utc_text(epoch_seconds: np.ndarray, separator: str) -> list[str]:
    """Epoch seconds as ``YYYY-MM-DD hh:mm:ss.ffffff`` (SQLAlchemy's SQLite datetime text)."""
    text_times = np.datetime_as_string(epoch_seconds.astype("datetime64[s]"), unit="us")
    return np.char.replace(text_times, "T", separator).tolist()


def _position_rows(part: dict[str, np.ndarray], times: list[str]) -> Iterable[tuple[Any, ...]]:
    return zip(
        part["device_id"].tolist(),
        times,
        times,
        part["lat"].tolist(),
        part["lon"].tolist(),
        part["speed_kmh"].astype(float).tolist(),
        part["course"].astype(int).tolist(),
        part["valid"].astype(bool).tolist(),
        part["alarms"].tolist(),
        [False] * len(times),
        strict=True,
    )


def _insert_positions_sqlite(session: Session, part: dict[str, np.ndarray]) -> int:
    return _insert_rows_sqlite(session, _position_rows(part, _utc_text(part["time"], " ")))


def _copy_positions_postgresql(session: Session, part: dict[str, np.ndarray]) -> int:
    times = [t + "+00" for t in _utc_text(part["time"], " ")]
    return _copy_rows_postgresql(session, _position_rows(part, times))


def _insert_rows_sqlite(session: Session, rows: Iterable[tuple[Any, ...]]) -> int:
    cursor = session.connection().connection.driver_connection.cursor()
    before = cursor.execute("SELECT total_changes()").fetchone()[0]
    cursor.executemany(
        f"INSERT OR IGNORE INTO positions ({_POSITION_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return cursor.execute("SELECT total_changes()").fetchone()[0] - before


def _copy_rows_postgresql(session: Session, rows: Iterable[tuple[Any, ...]]) -> int:
    cursor = session.connection().connection.driver_connection.cursor()
    cursor.execute(
        "CREATE TEMP TABLE IF NOT EXISTS positions_staging ON COMMIT DELETE ROWS AS "
        f"SELECT {_POSITION_COLUMNS} FROM positions WITH NO DATA"
    )
    cursor.execute("TRUNCATE positions_staging")
    with cursor.copy(f"COPY positions_staging ({_POSITION_COLUMNS}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    cursor.execute(
        f"INSERT INTO positions ({_POSITION_COLUMNS}) SELECT {_POSITION_COLUMNS} "
        "FROM positions_staging ON CONFLICT DO NOTHING"
    )
    return cursor.rowcount


class AlertRepository:
    """Collateral alerts: the monitor's alerts stored by their key, and people's decisions.

    At most one open (or acknowledged) alert per vehicle and type, enforced by the database:
    storing a second one is a :class:`ConflictError`.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def save(self, alert: MonitorAlert) -> Alert:
        """Insert the monitor's alert, or update the stored one with the same key (status,
        end, evidence, repeats, exposure).

        Decisions stored since stand: a stored alert that is closed (resolved, false
        positive) is left as it is, and one someone acknowledged is not set back to open.
        The returned row then tells the caller the status its alert should take.
        """
        row = self.session.scalar(select(Alert).where(Alert.key == alert.id))
        if row is None:
            row = Alert(key=alert.id, type=str(alert.type), **self._references(alert))
            row.started_at = utc(alert.start)
            row.raised_at = utc(alert.raised_at)
            row.lat, row.lon, row.province_code = alert.lat, alert.lon, alert.province
        elif row.status not in _OPEN_ALERT_STATUSES:
            return row
        row.severity = alert.severity
        if not (row.status == "acknowledged" and alert.status == AlertStatus.OPEN):
            row.status = str(alert.status)
            row.ended_at = None if alert.end is None else utc(alert.end)
            row.status_by = alert.status_by
            row.status_at = None if alert.status_at is None else utc(alert.status_at)
        row.evidence = dict(alert.evidence)
        row.exposure = alert.exposure
        row.repeats = alert.repeats
        row.updated_at = utc(alert.updated_at)
        try:
            with savepoint(self.session):  # added inside: a refused insert undoes only itself
                self.session.add(row)
                self.session.flush()
        except IntegrityError:
            raise ConflictError(
                f"vehicle {alert.vehicle_id} already has an open {alert.type} alert"
            ) from None
        return row

    def _references(self, alert: MonitorAlert) -> dict[str, int | None]:
        vehicle_id = self.session.scalar(select(Vehicle.id).where(Vehicle.vin == alert.vehicle_id))
        if vehicle_id is None:
            raise NotFoundError(f"vehicle {alert.vehicle_id!r} does not exist")
        device_id = loan_id = None
        if alert.device_id is not None:
            device_id = self.session.scalar(
                select(Device.id).where(Device.ident == alert.device_id)
            )
        if alert.loan_id is not None:
            loan_id = self.session.scalar(select(Loan.id).where(Loan.ref == alert.loan_id))
        return {"vehicle_id": vehicle_id, "device_id": device_id, "loan_id": loan_id}

    def get(self, alert_id: int) -> Alert:
        row = self.session.get(Alert, alert_id)
        if row is None:
            raise NotFoundError(f"alert {alert_id} does not exist")
        return row

    def open_alerts(self, vehicle_id: int | None = None) -> list[Alert]:
        """Open and acknowledged alerts, largest exposure first."""
        query = select(Alert).where(Alert.status.in_(_OPEN_ALERT_STATUSES))
        if vehicle_id is not None:
            query = query.where(Alert.vehicle_id == vehicle_id)
        return list(self.session.scalars(query.order_by(Alert.exposure.desc(), Alert.id)))

    def acknowledge(self, alert_id: int, *, by: str, at: datetime) -> Alert:
        """Someone took the alert on; it stays open."""
        return self._decide(alert_id, "acknowledged", by, at)

    def resolve(self, alert_id: int, *, by: str, at: datetime) -> Alert:
        return self._decide(alert_id, "resolved", by, at)

    def mark_false_positive(self, alert_id: int, *, by: str, at: datetime) -> Alert:
        return self._decide(alert_id, "false_positive", by, at)

    def _decide(self, alert_id: int, status: str, by: str, at: datetime) -> Alert:
        if not by:
            raise ValueError("by: who decided must be named")
        row = self.get(alert_id)
        if row.status not in _OPEN_ALERT_STATUSES:
            raise ConflictError(f"alert {alert_id} is already {row.status}")
        row.status, row.status_by, row.status_at, row.updated_at = status, by, at, at
        if status != "acknowledged" and row.ended_at is None:
            row.ended_at = at
        self.session.flush()
        return row


_OPEN_ALERT_STATUSES = ("open", "acknowledged")


#: One fix as :func:`store_position_rows` takes it, in this column order; times aware UTC.
PositionRow = tuple[int, datetime, datetime, float, float, float, int, bool, str, bool]


def store_position_rows(session: Session, rows: Sequence[PositionRow]) -> int:
    """Bulk-store fixes given as rows of (device_id, fix_time, received_at, lat, lon,
    speed_kmh, course, valid, alarms, archived), dropping duplicates of (device, fix time);
    return how many were new.

    The path of :func:`load_positions` (``executemany`` on SQLite, ``COPY`` on PostgreSQL)
    for rows that arrive one by one, such as the gateway's.
    """
    if not rows:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        return _copy_rows_postgresql(session, rows)
    return _insert_rows_sqlite(
        session, ((r[0], _sqlite_time(r[1]), _sqlite_time(r[2]), *r[3:]) for r in rows)
    )


def _sqlite_time(moment: datetime) -> str:
    """An aware time as SQLAlchemy's SQLite UTC text (``YYYY-MM-DD hh:mm:ss.ffffff``)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class UserRepository:
    """The people who work in lienwatch: agents with their skill, team, regions and daily
    capacity (what assignment reads), supervisors, analysts, auditors, administrators."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(
        self, *, username: str, role: Role | str, team: str | None, display_name: str = "",
        skill: Skill | str = Skill.PHONE, regions: Sequence[str] = (), daily_capacity: int = 60,
    ) -> User:  # fmt: skip
        """A new user; refused (naming the option) for a taken name, an unknown role or
        skill, an agent without a team, a capacity out of 1–1000."""
        if not USERNAME.fullmatch(username):
            raise LienwatchError(f"username: {username!r} must be 1-80 letters, digits, . _ -")
        role, skill = parse_enum(Role, role, "--role"), parse_enum(Skill, skill, "--skill")
        if role is Role.AGENT and not team:
            raise LienwatchError("--team: an agent works in a team")
        if team:
            TeamRepository(self.session).get(team)
        if not 1 <= daily_capacity <= 1000:
            raise LienwatchError(f"--capacity: {daily_capacity} is not within 1-1000 tasks a day")
        if self.session.scalar(select(User.id).where(User.username == username)) is not None:
            raise ConflictError(f"username: {username!r} is taken")
        skills: dict[str, Any] = {"mode": skill.value}
        if regions:
            skills["regions"] = sorted(regions)
        user = User(username=username, display_name=display_name or username, role=role.value,
                    team=team or None, skills=skills, daily_capacity=daily_capacity)  # fmt: skip
        self.session.add(user)
        self.session.flush()
        return user

    def get(self, username: str) -> User:
        user = self.session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFoundError(f"username: no user {username!r}")
        return user

    def all(self) -> list[User]:
        return list(self.session.scalars(select(User).order_by(User.team, User.username)))

    def set_active(self, username: str, active: bool) -> User:
        """Enable or disable a user; a disabled agent's queue is reassigned at the next tick."""
        user = self.get(username)
        user.active = active
        return user


USERNAME = re.compile(r"[A-Za-z0-9._-]{1,80}")


class TeamRepository:
    """The teams users belong to and strategies route agent steps to, by name."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, *, name: str, display_name: str = "") -> Team:
        """A new team; refused (naming the option) for a taken or malformed name."""
        if not USERNAME.fullmatch(name):
            raise LienwatchError(f"name: {name!r} must be 1-80 letters, digits, . _ -")
        if self.session.scalar(select(Team.id).where(Team.name == name)) is not None:
            raise ConflictError(f"name: team {name!r} exists")
        team = Team(name=name, display_name=display_name or name)
        self.session.add(team)
        self.session.flush()
        return team

    def ensure(self, *names: str) -> None:
        """Add the teams of ``names`` not there yet (the demo staffing its desks)."""
        there = set(self.session.scalars(select(Team.name).where(Team.name.in_(names))))
        self.session.add_all(Team(name=n, display_name=n) for n in dict.fromkeys(names)
                             if n not in there)  # fmt: skip
        self.session.flush()

    def get(self, name: str) -> Team:
        team = self.session.scalar(select(Team).where(Team.name == name))
        if team is None:
            raise NotFoundError(
                f"--team: no team {name!r} (`lienwatch team add {name}` creates it)"
            )
        return team

    def all(self) -> list[tuple[Team, list[User]]]:
        """Every team by name, with its users (by username)."""
        members: dict[str, list[User]] = {}
        for user in self.session.scalars(select(User).order_by(User.username)):
            if user.team is not None:
                members.setdefault(user.team, []).append(user)
        teams = self.session.scalars(select(Team).order_by(Team.name))
        return [(team, members.get(team.name, [])) for team in teams]
