import json
import re

import pytest
import typer
from typer.testing import CliRunner

from lienwatch.commands.servicing import register
from lienwatch.tabular import InputFileError

TERMS = [
    "--principal",
    "100000.00",
    "--annual-rate",
    "0.0899",
    "--term",
    "36",
    "--method",
    "annuity",
    "--start",
    "2026-01-15",
]


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """Test root."""

    register(root)
    return root


def run(app, args):
    return CliRunner().invoke(app, args)


def test_schedule_json(app):
    result = run(app, ["schedule", *TERMS, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert json.loads(run(app, ["schedule", *TERMS, "--format", "json"]).output) == data
    rows = data["installments"]
    assert len(rows) == 36
    assert rows[0] == {
        "n": 1,
        "due_date": "2026-02-15",
        "principal": "2430.34",
        "interest": "749.17",
        "payment": "3179.51",
        "balance_after": "97569.66",
    }
    assert rows[-1]["balance_after"] == "0.00"
    total_principal = sum(int(r["principal"].replace(".", "")) for r in rows)
    assert total_principal == 10_000_000
    assert data["total_payment"] == f"{100000 + float(data['total_interest']):.2f}"


def test_schedule_table_and_day_count(app):
    for table in ([], ["--format", "table"]):  # a table unless --json
        result = run(app, ["schedule", *TERMS, "--day-count", "act/365", *table])
        assert result.exit_code == 0, result.output
        assert "2026-02-15" in result.output and "100000.00" in result.output


def test_loan_state_from_a_payments_file(app, tmp_path):
    payments = tmp_path / "payments.csv"
    payments.write_text(
        "id,date,amount\nA1,2026-02-15,3179.51\nA1,2026-02-15,3179.51\nA2,2026-03-15,3179.51\n"
    )
    result = run(
        app,
        [
            "loan",
            "state",
            *TERMS,
            "--payments",
            str(payments),
            "--as-of",
            "2026-04-20",
            "--late-fee",
            "50.00",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    state = json.loads(result.output)
    assert state["dpd"] == 5 and state["bucket"] == "M1" and state["status"] == "delinquent"
    assert state["fees_due"] == "50.00" and state["next_due_date"] == "2026-05-15"
    assert set(state) == {
        "dpd",
        "bucket",
        "status",
        "outstanding_principal",
        "overdue_principal",
        "overdue_interest",
        "penalty_accrued",
        "fees_due",
        "next_due_date",
        "payoff_amount",
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id,date,amount\nA1,2026-02-31,10.00\n", r":2: column date:"),
        ("id,date,amount\nA1,2026-02-15,10.001\n", r":2: column amount: .*two decimals"),
        ("id,date,amount\nA1,2026-02-15,ten\n", r":2: column amount:"),
        ("id,date,amount\nA1,2026-02-15,10.00\n,2026-02-16,1.00\n", r":3: column id: empty"),
        ("id,date,amount\nA1,2026-02-15,-3.00\n", r":2: column amount: .*positive"),
        ("id,date,amount,currency\nA1,2026-02-15,3.00,USD\n", r":2: column currency:"),
        ("id,date,amount\nA1,2026-02-15,3.00\nA1,2026-02-15,4.00\n", r":3: column id:"),
        ("id,when,amount\n", r":1: missing column\(s\) date"),
    ],
)
def test_bad_payment_rows_name_file_line_and_column(app, tmp_path, content, message):
    payments = tmp_path / "payments.csv"
    payments.write_text(content)
    result = run(
        app, ["loan", "state", *TERMS, "--payments", str(payments), "--as-of", "2026-04-20"]
    )
    assert isinstance(result.exception, InputFileError)
    assert str(result.exception).startswith(str(payments))
    assert re.search(message, str(result.exception))


def test_bad_terms_name_the_option(app):
    result = run(app, ["schedule", *TERMS[:2], "--annual-rate", "1.2", *TERMS[4:]])
    assert isinstance(result.exception, ValueError)
    assert str(result.exception).startswith("annual_rate:")
    result = run(app, ["schedule", *TERMS[:8], "--start", "2026-13-01"])
    assert result.exit_code == 2 and "'2026-13-01' is not a date YYYY-MM-DD" in result.output
