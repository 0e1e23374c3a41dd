"""`lienwatch risk backtest|fit|score|rings` end to end on the shipped data (in this process)."""

from __future__ import annotations

import csv
import json

from lienwatch.data import german_credit_path
from lienwatch.domain.identifiers import resident_id_check, vin_check
from tests.test_cli_mistakes import _run


def _vin(serial: int) -> str:
    body = f"LSVAU2A30N21{serial:05d}"
    return body[:8] + vin_check(body) + body[9:]


def _id(born: str) -> str:
    first = f"110105{born}123"
    return first + resident_id_check(first)


def test_backtest_prints_the_figures_and_every_fold(tmp_path):
    status, out, err = _run(["risk", "backtest", "--cv", "2x1", "--seed", "3", "--json"],
                            tmp_path)  # fmt: skip
    assert status == 0, err
    result = json.loads(out)
    assert {"auc_mean", "auc_std", "ks_mean", "fit_seconds_median", "folds"} <= set(result)
    assert len(result["folds"]) == 2 and 0.7 < result["auc_mean"] < 0.9
    assert (result["cv"], result["seed"]) == ("2x1", 3)


def _applications(path, rows):
    with german_credit_path().open(encoding="utf-8") as handle:
        german = list(csv.DictReader(handle))
    common = {"applied_on": "2026-06-01", "monthly_income": "20000.00",
              "monthly_debt": "2000.00", "amount": "150000.00", "term_months": "36",
              "vehicle_year": "2025", "price": "200000.00",
              "appraisal": "200000.00", "vehicle_class": "new-ice"}  # fmt: skip
    written = [{**german[k], **common, "vin": _vin(k), **row} for k, row in enumerate(rows)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list({k: 0 for r in written for k in r}))
        writer.writeheader()
        writer.writerows(written)


def test_fit_then_score_gives_grade_decision_terms_and_reasons(tmp_path):
    status, out, err = _run(["risk", "fit", "--json"], tmp_path)
    assert status == 0, err
    (tmp_path / "scorecard.json").write_text(out, encoding="utf-8")
    assert json.loads(out)["scaling"]["base_score"] == 600
    status, table, _ = _run(["risk", "fit"], tmp_path)
    assert status == 0 and "status_of_existing_checking_account (IV" in table
    _applications(tmp_path / "apps.csv", [
        {"application_id": "A1", "id_number": _id("19900101"), "phone": "1"},
        {"application_id": "A2", "id_number": _id("19850505"), "phone": "2",
         "vin": "LSVAU2A30N2183294"},
        {"application_id": "A3", "id_number": _id("19880808"), "phone": "3",
         "device": "DEV9"},
        {"application_id": "A4", "id_number": _id("19700707"), "phone": "4",
         "device": "DEV9"},
    ])  # fmt: skip
    (tmp_path / "blacklist.csv").write_text("kind,value\nphone,2\n", encoding="utf-8")
    status, out, err = _run(["risk", "score", "--model", "scorecard.json", "apps.csv",
                             "--blacklist", "blacklist.csv", "--json"], tmp_path)  # fmt: skip
    assert status == 0, err
    rows = {row["application_id"]: row for row in json.loads(out)}
    codes = {k: [r["code"] for r in row["reasons"]] for k, row in rows.items()}
    assert rows["A2"]["decision"] == "decline" and rows["A2"]["amount"] == "0.00"
    assert codes["A2"][:2] == ["BLACKLIST", "VIN_CHECK_DIGIT"]
    assert "LINKED_APPLICATIONS" in codes["A3"] and "LINKED_APPLICATIONS" in codes["A4"]
    assert "AGE_AT_MATURITY" not in codes["A4"]  # 59 at maturity
    for row in rows.values():
        assert row["grade"] in "ABCDE" and row["decision"] in {"approve", "refer", "decline"}
        assert isinstance(row["score"], int) and row["apr"].startswith("0.")
        scorecard_reasons = [r for r in row["reasons"] if "points_lost" in r]
        assert 1 <= len(scorecard_reasons) <= 4
    status, text, _ = _run(["risk", "score", "--model", "scorecard.json", "apps.csv"], tmp_path)
    assert status == 0 and text.splitlines()[0].startswith("A1 score ")
    status, out, _ = _run(["risk", "rings", "apps.csv", "--json"], tmp_path)
    assert status == 0 and json.loads(out) == [{
        "ring": 1, "score": 0.3161, "size": 2, "members": ["A3", "A4"],
        "evidence": [{"kind": "device", "value": "DEV9", "holders": 2}],
    }]  # fmt: skip


def test_a_bad_row_names_its_line_and_column(tmp_path):
    status, out, _ = _run(["risk", "fit", "--json"], tmp_path)
    (tmp_path / "scorecard.json").write_text(out, encoding="utf-8")
    _applications(tmp_path / "apps.csv", [{"application_id": "A1", "id_number": _id("19900101"),
                                           "amount": "lots"}])  # fmt: skip
    status, _, err = _run(["risk", "score", "--model", "scorecard.json", "apps.csv"], tmp_path)
    assert (status, err) == (1, "lienwatch: error: apps.csv:2, column amount: bad value 'lots'\n")
