"""``lienwatch followup complain | complaints | resolve-complaint | hold`` as a supervisor
runs them on a database of their own."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy.orm import Session

from lienwatch.services.servicing import run_nightly
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store import migrate
from lienwatch.store.db import make_engine
from lienwatch.store.tables import User
from tests import factories
from tests.test_cli import run

AT = "2026-02-18T10:00:00+08:00"


def test_a_complaint_from_receipt_to_resolution_and_the_hold_it_asked_for(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with Session(engine) as session, session.begin():
        factories.loan(session)
        for name, role in (("ann", "agent"), ("sam", "supervisor")):
            session.add(User(username=name, display_name=name, role=role, team="east"))
        run_nightly(session, ProductCatalogue(), as_of=date(2026, 2, 16))
    engine.dispose()
    env = {"LIENWATCH_DATABASE_URL": url}

    def cli(*args: str):
        return run(*args, cwd=tmp_path, env=env)

    assert cli("followup", "tick", "--at", "2026-02-17T08:30:00+08:00").returncode == 0
    complained = cli("followup", "complain", "--loan", "L1", "--category", "wrong_amount",
                     "--channel", "phone", "--summary", "says the February installment was paid",
                     "--hold", "dispute", "--by", "ann", "--at", AT)  # fmt: skip
    assert complained.returncode == 0, complained.stderr
    assert complained.stdout.strip().endswith("on loan L1 recorded; case on hold (dispute)")
    listed = json.loads(cli("followup", "complaints", "--open", "--json").stdout)
    assert [(c["loan"], c["category"], c["resolved_at"]) for c in listed] == [
        ("L1", "wrong_amount", None)]
    number = str(listed[0]["id"])
    refused = cli("followup", "resolve-complaint", number, "--resolution", "x", "--upheld",
                  "--by", "ann")  # fmt: skip
    assert refused.returncode == 1
    assert "only a supervisor may resolve a complaint" in refused.stderr
    assert cli("followup", "resolve-complaint", number, "--resolution",
               "payment found on a suspense account and applied", "--upheld", "--by", "sam",
               "--at", AT).returncode == 0  # fmt: skip
    lifted = cli("followup", "hold", "--loan", "L1", "--set", "none", "--why",
                 "dispute settled", "--by", "sam", "--at", AT)  # fmt: skip
    assert lifted.stdout.strip().endswith("not on hold"), lifted.stderr
    assert json.loads(cli("followup", "complaints", "--open", "--json").stdout) == []
