"""``lienwatch followup request-command | approve-command | decline-command | reassign |
escalate`` as a supervisor runs them, on the API tests' book (ann's L1 in team east, bob's L2
in team west, sam supervising east)."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienwatch.store.db import make_engine
from lienwatch.store.tables import Case, Loan
from tests.api.support import sqlite_book
from tests.test_cli import run


def test_a_request_is_approved_once_and_a_case_escalated_by_the_teams_supervisor(tmp_path):
    url = sqlite_book(tmp_path)
    engine = make_engine(url)
    with Session(engine) as session:
        case = session.scalar(select(Case.id).join(Loan, Loan.id == Case.loan_id)
                              .where(Loan.ref == "L1"))  # fmt: skip
    engine.dispose()
    env = {"LIENWATCH_DATABASE_URL": url}

    def lienwatch(*args: str) -> tuple[int, str, str]:
        result = run("followup", *args, cwd=tmp_path, env=env)
        return result.returncode, result.stdout, result.stderr.strip()

    code, out, err = lienwatch("request-command", "--loan", "L1", "--command", "immobilise",
                               "--by", "ann", "--why", "car at a pawn yard", "--json")
    assert code == 0, err
    request = json.loads(out)
    assert (request["case"], request["outcome"]) == (case, "requested")
    code, out, err = lienwatch("approve-command", str(request["request"]), "--by", "sam",
                               "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["outcome"] == "sent", err
    code, _, err = lienwatch("decline-command", str(request["request"]), "--by", "sam",
                             "--why", "late")  # fmt: skip
    assert (code, err) == (1, f"lienwatch: error: request_id: request {request['request']} "
                              "was answered already")  # fmt: skip
    code, _, err = lienwatch("reassign", str(case), "--to", "bob", "--by", "sam")
    assert (code, err) == (1, "lienwatch: error: to: bob is not in team east of sam")
    code, out, err = lienwatch("escalate", str(case), "--to", "legal", "--by", "sam",
                               "--why", "no contact for ten days")  # fmt: skip
    assert (code, out.strip()) == (0, f"case {case} is legal"), err
    code, _, err = lienwatch("escalate", str(case), "--to", "repossession", "--by", "sam",
                             "--why", "x")  # fmt: skip
    assert (code, err) == (1, "lienwatch: error: to: escalate to one of escalated, legal")
