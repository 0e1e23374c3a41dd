"""The pre-loan decision kept with the book: each scored application's score, grade and the
attribute it fell in on every characteristic, and the scorecard that scored it with its fit's
reference distribution; and the scorecard's stability read back (PSI of the score and of
each characteristic against the fit), the daily report's and ``lienwatch risk stability``'s
read verb (docs/risk.md)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.risk.scorecard import Scorecard, scorecard_document
from lienwatch.risk.stability import band_counts, band_labels, distribution_psi, score_edges
from lienwatch.store.db import among
from lienwatch.store.tables import ApplicationRecord, Loan, ScorecardRecord

#: Applications decided this many days up to the report's day are the population watched.
RECENT_DAYS = 90
#: The populations the scorecard's stability is watched on (:func:`scorecard_stability`).
THROUGH_THE_DOOR, BOOKED = "through_the_door", "booked"


@dataclass(frozen=True, slots=True)
class Scored:
    """One scored application as the book keeps it."""

    ref: str
    decided_at: datetime
    decided_on: date  # the business day of the decision (a loan's: its disbursement day)
    score: int
    grade: str
    decision: str | None
    attributes: dict[str, str]
    loan_id: int | None = None


def fit_reference(card: Scorecard, training: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The score bands of ``card``'s training rows: their decile edges and counts."""
    scores = [float(s) for s in card.score(training)]
    edges = score_edges(scores)
    return {"edges": edges, "counts": band_counts(scores, edges)}


def scorecard_id(session: Session, card: Scorecard, reference: Mapping[str, Any],
                 *, at: datetime) -> int:  # fmt: skip
    """The stored scorecard's id, storing it first if it is new (one row per document)."""
    document = scorecard_document(card)
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    found = session.scalar(select(ScorecardRecord.id).where(ScorecardRecord.digest == digest))
    if found is not None:
        return found
    record = ScorecardRecord(digest=digest, document=document, reference=dict(reference),
                             created_at=at)  # fmt: skip
    session.add(record)
    session.flush()
    return record.id


def record_scored(session: Session, card_id: int, scored: Iterable[Scored]) -> int:
    """Store each scored application; one decided again (same ref) is replaced while it has
    not become a loan, left alone once it has. Returns how many were stored."""
    rows = list(scored)
    stored = {r.ref: r for condition in among(session, ApplicationRecord.ref, [s.ref for s in rows])
              for r in session.scalars(select(ApplicationRecord).where(condition))}
    count = 0
    for s in rows:
        values = {"scorecard_id": card_id, "decided_on": s.decided_on, "decided_at": s.decided_at,
                  "score": s.score, "grade": s.grade, "decision": s.decision,
                  "attributes": s.attributes, "loan_id": s.loan_id}  # fmt: skip
        existing = stored.get(s.ref)
        if existing is None:
            session.add(ApplicationRecord(ref=s.ref, **values))
        elif existing.loan_id is None or existing.loan_id == s.loan_id:
            for key, value in values.items():
                setattr(existing, key, value)
        else:
            continue
        count += 1
    session.flush()
    return count


def application_of(session: Session, ref: str) -> ApplicationRecord | None:
    """The stored application ``ref`` (None: never scored here)."""
    return session.scalar(select(ApplicationRecord).where(ApplicationRecord.ref == ref))


def link_loan(session: Session, application: ApplicationRecord, loan: Loan) -> None:
    """The application became ``loan``: linked, and the loan takes its score and grade."""
    application.loan_id = loan.id
    loan.score, loan.grade = application.score, application.grade


def scorecard_stability(session: Session, *, day: date,
                        days: int = RECENT_DAYS) -> dict[str, Any] | None:  # fmt: skip
    """The stability of the scorecard in force on ``day`` (the one of the latest application
    decided by then): the score's and each characteristic's PSI of its applications decided
    in the ``days`` days up to ``day`` against the fit's reference distribution. The
    population is the scorecard's through-the-door applications, every one it decided
    (approved, referred or declined: the API's, a demo's); a scorecard that decided none
    (a book imported with its characteristics: booked loans scored after the fact) is watched
    on its booked loans instead, and ``population`` says which. None when no application is
    stored."""
    latest = session.execute(
        select(ApplicationRecord.scorecard_id).where(ApplicationRecord.decided_on <= day)
        .order_by(ApplicationRecord.decided_on.desc(), ApplicationRecord.id.desc()).limit(1)
    ).scalar()  # fmt: skip
    if latest is None:
        return None
    card = session.get(ScorecardRecord, latest)
    assert card is not None
    decided = ApplicationRecord.decision.is_not(None)
    door = session.scalar(select(ApplicationRecord.id).where(
        ApplicationRecord.scorecard_id == latest, decided).limit(1)) is not None  # fmt: skip
    since = day - timedelta(days=days)
    rows = session.execute(
        select(ApplicationRecord.score, ApplicationRecord.attributes)
        .where(ApplicationRecord.scorecard_id == latest, ApplicationRecord.decided_on > since,
               ApplicationRecord.decided_on <= day, decided if door else ~decided)
    ).all()  # fmt: skip
    edges = card.reference["edges"]
    labels = band_labels(edges)
    scores = band_counts([score for score, _ in rows], edges)
    characteristics = []
    for c in card.document["characteristic"]:
        names = [a["label"] for a in c["attribute"]]
        reference = [int(a["goods"]) + int(a["bads"]) for a in c["attribute"]]
        actual = Counter(attributes.get(c["name"]) for _, attributes in rows)
        characteristics.append({"name": c["name"], "iv": c["iv"],
                                **distribution_psi(names, reference, actual)})  # fmt: skip
    characteristics.sort(key=lambda c: (-(c["psi"] or 0), c["name"]))
    return {
        "scorecard": card.digest[:12],
        "population": THROUGH_THE_DOOR if door else BOOKED,
        "since": since.isoformat(),
        "applications": len(rows),
        "reference_rows": sum(card.reference["counts"]),
        "score": distribution_psi(labels, card.reference["counts"], dict(zip(labels, scores,
                                                                             strict=True))),
        "characteristics": characteristics,
    }
