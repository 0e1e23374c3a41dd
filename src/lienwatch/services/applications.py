"""Decisions on loan applications (贷前调查, 贷款审批) for callers that hold them as rows of
text: the API's ``POST /api/v1/applications``. The checks, scorecard and policy are the
pure rules of :mod:`lienwatch.risk`, the same as ``lienwatch risk score`` (docs/risk.md)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.access.policy import Publication
from lienwatch.data import german_credit_path
from lienwatch.risk.applications import REQUIRED, ApplicationError, decide_batch, parse_application
from lienwatch.risk.datasets import (
    GERMAN_CREDIT,
    GERMAN_CREDIT_BAD,
    GERMAN_CREDIT_TARGET,
    Dataset,
    columns_of,
)
from lienwatch.risk.policy import Decision, Policy, shipped_policy
from lienwatch.risk.scorecard import (
    Scorecard,
    fit_scorecard,
    scorecard_document,
    scorecard_from_document,
)
from lienwatch.services.auth import AuditAction
from lienwatch.services.origination import (
    Scored,
    application_of,
    fit_reference,
    link_loan,
    record_scored,
    scorecard_id,
)
from lienwatch.services.published import publisher
from lienwatch.servicing.book_import import Row, RowError
from lienwatch.store.db import among
from lienwatch.store.repositories import AuditRepository
from lienwatch.store.tables import ApplicationRecord, Loan, ScorecardRecord
from lienwatch.tabular import InputFileError, csv_rows


def german_credit(path: Path | None = None) -> Dataset:
    """The German credit rows with their outcome: the shipped file, or one of the same
    layout; a file without both good and bad rows is an :class:`InputFileError`."""
    path = path or german_credit_path()
    needed = (GERMAN_CREDIT_TARGET, *(c.name for c in GERMAN_CREDIT.characteristics))
    _, rows = csv_rows(path, required=needed)
    data = columns_of(rows, GERMAN_CREDIT.characteristics, str(path),
                      target=GERMAN_CREDIT_TARGET, bad_value=GERMAN_CREDIT_BAD)  # fmt: skip
    if data.bad.all() or not data.bad.any():
        raise InputFileError(f"{path}: column {GERMAN_CREDIT_TARGET} needs both good and bad rows")
    return data


@cache
def shipped_scorecard() -> Scorecard:
    """The scorecard fitted on every row of the shipped German credit data (once a process;
    the same table ``lienwatch risk fit`` prints)."""
    data = german_credit()
    return fit_scorecard(data.columns, data.bad, GERMAN_CREDIT)


@cache
def shipped_reference() -> dict[str, Any]:
    """The shipped scorecard's reference: its training scores by band."""
    return fit_reference(shipped_scorecard(), german_credit().columns)


def published_scorecard(session: Session) -> ScorecardRecord | None:
    """The scorecard stored last with the book (published, or the one ``lienwatch demo``'s
    origination fitted); None while none is."""
    return session.scalars(select(ScorecardRecord).order_by(ScorecardRecord.id.desc())
                           .limit(1)).first()  # fmt: skip


@dataclass(frozen=True, slots=True)
class InForce:
    """A scorecard that scores applications, with its fit's reference and, once it is
    stored with the book, its row id."""

    card: Scorecard
    reference: Mapping[str, Any]
    stored_id: int | None = None

    def id(self, session: Session, *, at: datetime) -> int:
        """Its stored id, storing it first when it is not yet (:func:`scorecard_id`)."""
        if self.stored_id is not None:
            return self.stored_id
        return scorecard_id(session, self.card, self.reference, at=at)


def scorecard_in_force(session: Session) -> InForce:
    """The scorecard that scores every application arriving now, whatever its path
    (``POST /api/v1/applications``, a book imported with its characteristics), with its fit's
    reference: the one stored last (:func:`published_scorecard`), else the shipped one
    (stored when it first scores one). Resolve it once per request or import and pass it on."""
    record = published_scorecard(session)
    if record is None:
        return InForce(shipped_scorecard(), shipped_reference())
    return InForce(scorecard_from_document(record.document), record.reference, record.id)


def scorecard_file(card: Scorecard, training: Dataset, source: str) -> dict[str, Any]:
    """``card`` fitted on ``training`` (read from ``source``) as ``lienwatch risk fit --json``
    writes it: the file ``risk score --model`` takes."""
    return {"dataset": source, "rows": int(training.bad.size), "bad": int(training.bad.sum()),
            **scorecard_document(card)}  # fmt: skip


def publish_scorecard(
    session: Session, *, training: Dataset, source: str, by: str, at: datetime,
    client: str = "",
) -> tuple[int, dict[str, Any]]:  # fmt: skip
    """Fit the application scorecard on every row of ``training`` (``lienwatch risk fit``'s
    fit, read from ``source``) and publish it, ``by`` an analyst: stored with its fit's
    reference distribution, it scores every application from now
    (:func:`scorecard_in_force`); in the audit log (``model_published``). Returns the stored
    scorecard's id and its document as ``lienwatch risk fit --json`` prints it."""
    publisher(session, by, Publication.MODEL)
    card = fit_scorecard(training.columns, training.bad, GERMAN_CREDIT)
    card_id = scorecard_id(session, card, fit_reference(card, training.columns), at=at)
    document = scorecard_file(card, training, source)
    AuditRepository(session).add(at=at, actor=by, action=AuditAction.MODEL_PUBLISHED.value,
                                 subject=f"scorecard:{card_id}", client=client,
                                 details={"dataset": source, "rows": document["rows"]})
    return card_id, document


def decide_applications(
    rows: Sequence[Mapping[str, str]], *, card: Scorecard | None = None,
    policy: Policy | None = None, blacklist: Mapping[str, Collection[str]] | None = None,
) -> list[Decision]:  # fmt: skip
    """Check, score and decide each application (a row of the columns of docs/risk.md, as
    text), the batch linked for fraud rings; a bad row is an :class:`ApplicationError`
    naming ``applications[k]`` and the column."""
    return _decided(rows, card or shipped_scorecard(), policy, blacklist)[0]


def _decided(
    rows: Sequence[Mapping[str, str]], card: Scorecard, policy: Policy | None,
    blacklist: Mapping[str, Collection[str]] | None,
) -> tuple[list[Decision], dict[str, np.ndarray]]:  # fmt: skip
    for k, row in enumerate(rows):
        missing = [c for c in (*REQUIRED, *card.names) if c not in row]
        if missing:
            raise ApplicationError(f"applications[{k}], column {missing[0]}: missing")
    apps = [parse_application(f"applications[{k}]", row) for k, row in enumerate(rows)]
    columns = columns_of(enumerate(rows), card.inputs, "applications").columns
    return decide_batch(apps, columns, card, policy or shipped_policy(),
                        blacklist=blacklist or {}), columns  # fmt: skip


def decide_and_record(
    session: Session, rows: Sequence[Mapping[str, str]], *, at: datetime
) -> list[Decision]:
    """:func:`decide_applications` with the scorecard in force (:func:`scorecard_in_force`),
    each decision kept with the attributes of the application (``POST
    /api/v1/applications``): an application decided again under the same id is replaced
    until a loan is booked on it."""
    in_force = scorecard_in_force(session)
    decisions, columns = _decided(rows, in_force.card, None, None)
    store_decisions(session, in_force, decisions, columns, at=at)
    return decisions


def store_decisions(
    session: Session, scorecard: InForce, decisions: Sequence[Decision],
    columns: Mapping[str, np.ndarray], *, at: datetime,
    loans: Mapping[str, int] | None = None, decided_on: Mapping[str, Any] | None = None,
) -> int:  # fmt: skip
    """Keep ``decisions`` (row for row with ``columns``) and the attributes the scorecard
    binned, each linked to its loan id in ``loans`` (by application id) and dated by
    ``decided_on`` (default: ``at``'s day)."""
    loans, decided_on = loans or {}, decided_on or {}
    scored = (
        Scored(d.application_id, at, decided_on.get(d.application_id, at.date()), d.score,
               d.grade, d.decision, attributes, loans.get(d.application_id))
        for d, attributes in zip(decisions, scorecard.card.attributes(columns), strict=True)
    )  # fmt: skip
    return record_scored(session, scorecard.id(session, at=at), scored)


# -- a book imported with its applications (``lienwatch import``, docs/store.md) ------------

APPLICATION_ID = "application_id"


def carries_applications(header: Sequence[str]) -> bool:
    """Whether a loans file's ``header`` has application columns (``application_id`` or a
    characteristic a scorecard may keep): then the import resolves the scorecard in force,
    once, for :func:`application_columns` and what follows."""
    return APPLICATION_ID in header or any(c.name in header for c in GERMAN_CREDIT.characteristics)


def application_columns(
    scorecard: InForce, header: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The loans file's application columns: those of ``header`` it recognises
    (``application_id`` and the characteristics of the scorecard in force) and the
    characteristics missing when some but not all are given."""
    if not any(c.name in header for c in GERMAN_CREDIT.characteristics):
        return [c for c in header if c == APPLICATION_ID], []  # no scorecard to fit
    names = scorecard.card.names
    given = [c for c in header if c == APPLICATION_ID or c in names]
    return given, [c for c in names if c not in header]


def imported_application_errors(session: Session, scorecard: InForce,
                                loans: Sequence[Row]) -> list[RowError]:  # fmt: skip
    """Loans rows whose application columns are unusable: an ``application_id`` never
    decided here without the characteristics to score it, a characteristic that is not a
    number where the scorecard in force bins numbers."""
    if not any(_carries_application(row) for row in loans):
        return []
    card = scorecard.card
    numeric = [c.name for c in card.inputs if c.kind == "numeric"]
    ids = {_text(row, APPLICATION_ID) for row in loans} - {""}
    stored = select(ApplicationRecord.ref).where(ApplicationRecord.ref.in_(ids))
    known = set(session.scalars(stored)) if ids else set()
    errors = []
    for row in loans:
        bad = next((name for name in numeric if not _number(_text(row, name))), None)
        if bad is not None:
            errors.append(RowError(row.file, row.line, bad,
                                   f"not a number {_text(row, bad)!r}", row.raw))  # fmt: skip
            continue
        ref = _text(row, APPLICATION_ID)
        if ref and ref not in known and not _scored(row, card):
            errors.append(RowError(row.file, row.line, APPLICATION_ID,
                                   f"{ref!r}: no application was decided under that id and the "
                                   "row carries no characteristics to score", row.raw))  # fmt: skip
    return errors


def record_imported_applications(session: Session, scorecard: InForce, loans: Sequence[Row], *,
                                 at: datetime) -> int:  # fmt: skip
    """The applications the loans rows carry: a row with the scorecard's characteristics is
    scored by the scorecard in force (:func:`scorecard_in_force`; graded by the shipped
    policy, dated by its disbursement day, no decision recorded: a booked loan, not an
    application at the door), a row naming a decided application is linked to it; either
    way the loan takes the score and grade. Returns how many loans were linked."""
    loans = [row for row in loans if _carries_application(row)]
    if not loans:
        return 0
    card = scorecard.card
    refs = {row.key for row in loans}
    ids = {ref: id_ for condition in among(session, Loan.ref, refs)
           for ref, id_ in session.execute(select(Loan.ref, Loan.id).where(condition))}
    scored = [row for row in loans if _scored(row, card)]
    done = {(row.file, row.line) for row in scored}
    linked = 0
    if scored:
        columns = columns_of(((row.line, row.raw) for row in scored), card.inputs,
                             "loans").columns  # fmt: skip
        policy = shipped_policy()
        rows = [
            Scored(_text(row, APPLICATION_ID) or row.key, at, row.values["disbursed_on"],
                   int(score), policy.grade(score), None, attributes, ids[row.key])
            for row, score, attributes in zip(scored, card.score(columns),
                                              card.attributes(columns), strict=True)
        ]  # fmt: skip
        record_scored(session, scorecard.id(session, at=at), rows)
        linked += len(rows)
    for row in loans:
        ref = _text(row, APPLICATION_ID)
        if (row.file, row.line) in done or not ref:
            continue
        application = application_of(session, ref)
        loan = session.get(Loan, ids[row.key])
        if application is not None and loan is not None and application.loan_id in (None, loan.id):
            link_loan(session, application, loan)
            linked += 1
    records = (record for condition in among(session, ApplicationRecord.loan_id, ids.values())
               for record in session.scalars(select(ApplicationRecord).where(condition)))
    for record in records:
        loan = session.get(Loan, record.loan_id)
        if loan is not None:
            loan.score, loan.grade = record.score, record.grade
    return linked


def _carries_application(row: Row) -> bool:
    return APPLICATION_ID in row.raw or any(c.name in row.raw
                                            for c in GERMAN_CREDIT.characteristics)


def _text(row: Row, column: str) -> str:
    return str(row.raw.get(column) or "").strip()


def _number(text: str) -> bool:
    if not text:
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def _scored(row: Row, card: Scorecard) -> bool:
    """The row carries the characteristics of ``card``: the file has every column and the row
    fills at least one (an empty cell is a missing value, a bin of its own; a row with all of
    them empty has none)."""
    return all(name in row.raw for name in card.names) and any(
        _text(row, name) for name in card.names)
