"""``lienwatch risk``: the application scorecard and the decision on applications
(docs/risk.md). The files are read here; the rules are in :mod:`lienwatch.risk`."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from lienwatch import clock
from lienwatch.commands.common import emit, figure_lines, store_session
from lienwatch.commands.options import AsOf, Json
from lienwatch.domain.calendar import ended_business_day
from lienwatch.errors import LienwatchError
from lienwatch.risk.applications import (
    REQUIRED,
    blacklist_of,
    decide_batch,
    parse_application,
    ring_report,
)
from lienwatch.risk.backtest import cross_validate, summary
from lienwatch.risk.datasets import (
    GERMAN_CREDIT,
    columns_of,
)
from lienwatch.risk.policy import Policy, parse_policy, shipped_policy
from lienwatch.risk.scorecard import (
    Scorecard,
    fit_scorecard,
    scorecard_from_document,
)
from lienwatch.services.applications import german_credit
from lienwatch.tabular import InputFileError, csv_rows, require_file


class DatasetName(StrEnum):
    GERMAN_CREDIT = "german-credit"


def register(app: typer.Typer) -> None:
    """Add the ``risk`` sub-app to the root ``app``."""
    risk = typer.Typer(help="Application scorecard, pre-loan checks and decisions.",
                       no_args_is_help=True)  # fmt: skip
    risk.command("backtest")(backtest_command)
    risk.command("fit")(fit_command)
    risk.command("score")(score_command)
    risk.command("rings")(rings_command)
    risk.command("behaviour")(behaviour_command)
    risk.command("stability")(stability_command)
    risk.command("payments")(payments_command)
    app.add_typer(risk, name="risk")


DatasetOption = Annotated[
    DatasetName, typer.Option("--dataset", help="The shipped training data set.")
]


@dataclass(frozen=True, slots=True)
class Protocol:
    """``--cv FOLDSxREPEATS``."""

    folds: int
    repeats: int


def _parse_cv(text: str) -> Protocol:
    folds, x, repeats = text.strip().lower().partition("x")
    if not (x and folds.isdigit() and repeats.isdigit()) or not (
        2 <= int(folds) <= 20 and 1 <= int(repeats) <= 20
    ):
        raise typer.BadParameter(
            f"{text!r} is not FOLDSxREPEATS with 2-20 folds and 1-20 repeats, e.g. 10x5"
        )
    return Protocol(int(folds), int(repeats))


DataOption = Annotated[
    Path | None,
    typer.Option("--data", help="Training CSV in the data set's layout, with its target "
                 "column [default: the shipped data set]."),
]  # fmt: skip


def backtest_command(
    cv: Annotated[
        Protocol,
        typer.Option("--cv", parser=_parse_cv, metavar="FOLDSxREPEATS",
                     help="Repeated stratified cross-validation, e.g. 10x5 (the protocol is "
                     "part of the figure, so it is always given)."),
    ],
    dataset: DatasetOption = DatasetName.GERMAN_CREDIT,
    data: DataOption = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1,
                                      help="Seed of the fold split.")] = 0,
    as_json: Json = False,
) -> None:
    """Fit and judge the scorecard fold by fold (binning, selection and fit on each fold's
    training rows only); print mean AUC and KS and the median fit time."""
    if data is not None:
        require_file(data, "--data")
    folds, repeats = cv.folds, cv.repeats
    result = summary(cross_validate(german_credit(data), GERMAN_CREDIT, folds=folds,
                                    repeats=repeats, seed=seed))  # fmt: skip
    result = {"dataset": dataset.value, "cv": f"{folds}x{repeats}", "seed": seed, **result}
    emit(result, as_json, figure_lines({k: v for k, v in result.items() if k != "folds"}))


def fit_command(
    dataset: DatasetOption = DatasetName.GERMAN_CREDIT,
    data: DataOption = None,
    save: Annotated[bool, typer.Option("--save", help="Then publish it (an analyst, --by): "
                                       "it scores every application from now; audited.")
                    ] = False,
    by: Annotated[str | None, typer.Option("--by", metavar="USER",
                                           help="The analyst publishing it (--save).")] = None,
    as_json: Json = False,
) -> None:  # fmt: skip
    """Fit the scorecard on every row of the data set and print it: a points table to read,
    or with --json the scorecard file `risk score --model` takes (points, WOE and counts per
    attribute, what was dropped and why): `lienwatch risk fit --json > scorecard.json`. With
    --save --by USER, publish it for the book's applications (POST /api/v1/models/scorecard)."""
    from lienwatch.services.applications import publish_scorecard, scorecard_file

    if data is not None:
        require_file(data, "--data")
    training = german_credit(data)
    source = dataset.value if data is None else str(data)
    if save:
        if by is None:
            raise LienwatchError("--by: --save publishes the scorecard: name the analyst")
        with store_session() as (_settings, session):
            card_id, document = publish_scorecard(session, training=training, source=source,
                                                  by=by, at=clock.now(), client="cli")  # fmt: skip
        document = {"scorecard": card_id, **document}
    else:
        document = scorecard_file(fit_scorecard(training.columns, training.bad, GERMAN_CREDIT),
                                  training, source)  # fmt: skip
    lines = _table(document)
    if save:
        lines.append(f"published scorecard {document['scorecard']}: it scores every "
                     "application from now")
    emit(document, as_json, lines)


def _table(document: dict[str, Any]) -> list[str]:
    """The scorecard as a credit committee reads it: points per attribute."""
    scaling = document["scaling"]
    lines = [f"scorecard on {document['dataset']} ({document['rows']} rows, {document['bad']} "
             f"bad): {scaling['base_score']:g} points at {scaling['base_odds']:g}:1, "
             f"{scaling['pdo']:g} points to double the odds"]  # fmt: skip
    for c in document["characteristic"]:
        lines.append(f"{c['name']} (IV {c['iv']:.3f}, max {c['max_points']} points)")
        width = max(len(a["label"]) for a in c["attribute"])
        lines += [f"  {a['label']:<{width}}  {a['points']:>4}" for a in c["attribute"]]
    lines += [f"dropped {name}: {why}" for name, why in document["dropped"].items()]
    return lines


def _read_json(path: Path, option: str) -> Any:
    require_file(path, option)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputFileError(f"{option}: {path}: cannot read: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputFileError(f"{option}: {path}: not a scorecard (JSON) file") from None


def _model(path: Path) -> Scorecard:
    document = _read_json(path, "--model")
    if not isinstance(document, dict):
        raise InputFileError(f"--model: {path}: not a scorecard (JSON) file")
    try:
        return scorecard_from_document(document)
    except ValueError as exc:
        raise InputFileError(f"--model: {path}: {exc}") from None


def _policy(path: Path | None) -> Policy:
    if path is None:
        return shipped_policy()
    require_file(path, "--policy")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputFileError(f"--policy: {path}: not a TOML file ({exc})") from None
    return parse_policy(document, f"--policy: {path}")


def score_command(
    applications: Annotated[Path, typer.Argument(help="Applications CSV (docs/risk.md).")],
    model: Annotated[
        Path, typer.Option("--model", help="Scorecard from `risk fit --json`.")
    ],
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Decision policy TOML [default: shipped].")
    ] = None,
    blacklist: Annotated[
        Path | None, typer.Option("--blacklist", help="Blacklist CSV: kind,value.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Check, score and decide each application: score, grade, decision, amount, APR, term
    and the reasons (hard findings first, then the four costliest characteristics)."""
    for path, option in ((applications, "APPLICATIONS"), (model, "--model"),
                         (policy, "--policy"), (blacklist, "--blacklist")):  # fmt: skip
        if path is not None:
            require_file(path, option)
    card, rules = _model(model), _policy(policy)
    listed: dict[str, set[str]] = {}
    if blacklist is not None:
        _, rows = csv_rows(blacklist, required=("kind", "value"))
        listed = blacklist_of((f"{blacklist}:{line}", row) for line, row in rows)
    _, rows = csv_rows(applications, required=(*REQUIRED, *card.names))
    rows = list(rows)
    apps = [parse_application(f"{applications}:{line}", row) for line, row in rows]
    columns = columns_of(rows, card.inputs, str(applications)).columns
    decisions = decide_batch(apps, columns, card, rules, blacklist=listed) if apps else []
    emit([d.as_json() for d in decisions], as_json,
         [_line(d.as_json()) for d in decisions] or ["no applications"])  # fmt: skip


def _line(row: dict[str, Any]) -> str:
    """``A001 score 562 grade A approve 85000.00 at 6.9% for 36 months; reasons: ...``."""
    terms = (f" {row['amount']} at APR {row['apr']} for {row['term_months']} months"
             if row["decision"] != "decline" else "")  # fmt: skip
    reasons = ", ".join(r["code"] for r in row["reasons"])
    return (f"{row['application_id']} score {row['score']} grade {row['grade']} "
            f"{row['decision']}{terms}; reasons: {reasons or 'none'}")


def rings_command(
    applications: Annotated[Path, typer.Argument(help="Applications CSV (docs/risk.md).")],
    max_share: Annotated[
        int | None,
        typer.Option("--max-share", min=2, max=1_000_000,
                     help="Drop identifiers held by more applications [default: the "
                     "policy's ring_max_share]."),
    ] = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Decision policy TOML [default: shipped].")
    ] = None,
    as_json: Json = False,
) -> None:
    """Candidate fraud rings among applications linked by shared identity numbers, VINs,
    phones, devices, bank accounts, addresses, employer phones and emergency contacts:
    members, score and the shared identifiers as evidence, highest score first."""
    for path, option in ((applications, "APPLICATIONS"), (policy, "--policy")):
        if path is not None:
            require_file(path, option)
    share = max_share if max_share is not None else _policy(policy).ring_max_share
    _, rows = csv_rows(applications, required=REQUIRED)
    apps = [parse_application(f"{applications}:{line}", row) for line, row in rows]
    found = ring_report(apps, share)
    lines = [f"ring {r['ring']}: score {r['score']:.2f}, {', '.join(r['members'])}; shared "
             + ", ".join(f"{e['kind']} {e['value']} ({e['holders']})" for e in r["evidence"])
             for r in found]  # fmt: skip
    emit(found, as_json, lines or [f"no ring (identifiers held by more than {share} dropped)"])


def behaviour_command(
    as_of: AsOf = None,
    test_months: Annotated[int, typer.Option("--test-months", min=1, max=24,
                                             help="The last months to judge on.")] = 1,
    capacity: Annotated[float, typer.Option("--capacity", min=0.01, max=1.0,
                                            help="Share of the loans the team reaches.")] = 0.2,
    save: Annotated[bool, typer.Option("--save", help="Then fit on every month and store the "
                                       "fit unpublished: it scores cases once an analyst "
                                       "publishes it (POST /api/v1/models/behaviour).")] = False,
    as_json: Json = False,
) -> None:  # fmt: skip
    """The behaviour score on the book: fitted on the earlier month ends, judged on the last
    (AUC, KS, calibration), and the follow-up priorities compared on the judged months:
    champion by exposure, challenger by expected loss (score x exposure). With --save, the
    score fitted on every month with a known outcome is stored, unpublished, for an analyst
    to publish to the follow-up engine."""
    from lienwatch.services.behaviour import behaviour_backtest, fit_behaviour_score

    with store_session() as (settings, session):
        through = as_of or ended_business_day(clock.now(), settings.time_zone)
        result = behaviour_backtest(session, through=through, test_months=test_months,
                                    capacity=capacity)  # fmt: skip
        if save:
            fit = fit_behaviour_score(session, through=through, at=clock.now(),
                                      test_months=test_months, capacity=capacity)  # fmt: skip
            result["saved"] = {"fit": fit.id, "fitted_through": through.isoformat(),
                               "months": fit.figures["months"]}  # fmt: skip
    lines = _behaviour_lines(result)
    if save:
        lines.append(f"saved fit {result['saved']['fit']} on {', '.join(result['saved']['months'])}"
                     " unpublished: once an analyst publishes it (POST /api/v1/models/behaviour"
                     f" {{\"fit\": {result['saved']['fit']}}}), cases opened after {through} are "
                     "scored with it")  # fmt: skip
    emit(result, as_json, lines)


def stability_command(as_of: AsOf = None, as_json: Json = False) -> None:
    """The scorecard's stability (the daily report's): the PSI of the score and of each
    characteristic of the applications decided in the 90 days up to --as-of (default: the
    last business day) against the rows the scorecard was fitted on."""
    from lienwatch.services.origination import RECENT_DAYS, THROUGH_THE_DOOR, scorecard_stability

    with store_session() as (settings, session):
        day = as_of or ended_business_day(clock.now(), settings.time_zone)
        found = scorecard_stability(session, day=day)
    if found is None:
        raise LienwatchError(f"no scored application is stored on or before {day}: decide "
                             "them through the API or import the loans with their "
                             "characteristics (docs/risk.md)")  # fmt: skip
    watched = ("applications decided (through the door)" if found["population"] == THROUGH_THE_DOOR
               else "booked loans scored")  # fmt: skip
    lines = [f"scorecard {found['scorecard']}: {found['applications']} {watched} in the "
             f"{RECENT_DAYS} days to {day} against {found['reference_rows']} fitted rows",
             f"score: PSI {found['score']['psi']}"]  # fmt: skip
    lines += [f"{c['name']}: PSI {c['psi']}" for c in found["characteristics"]]
    emit({"as_of": day.isoformat(), **found}, as_json, lines)


def payments_command(
    as_of: AsOf = None,
    days: Annotated[int, typer.Option("--days", min=1, max=3650,
                                      help="Payments paid in this many days up to --as-of.")] = 90,
    top: Annotated[int, typer.Option("--top", min=1, help="How many to list.")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="The isolation forest's seed.")] = 0,
    as_json: Json = False,
) -> None:  # fmt: skip
    """The unsupervised payment score for review: the --top payments the isolation forest
    finds strangest among those paid in the --days up to --as-of (default: the last business
    day), with the features it read. For review and data quality, never for credit
    decisions (docs/risk.md)."""
    from lienwatch.services.payment_anomalies import payment_review

    with store_session() as (settings, session):
        day = as_of or ended_business_day(clock.now(), settings.time_zone)
        found = payment_review(session, as_of=day, days=days, top=top, seed=seed)
    lines = [f"{found['payments']} payments paid in the {days} days to {day}; the "
             f"{len(found['top'])} strangest by isolation forest (seed {seed}), for review only:"]
    lines += [f"{row['score']:.4f} {row['payment']} loan {row['loan']} {row['paid_on']} "
              f"{row['amount_fen'] / 100:.2f} {row['channel']}"
              f"{' (alerted)' if row['alerted'] else ''}; "
              + ", ".join(f"{k} {v:g}" for k, v in row["features"].items())
              for row in found["top"]]  # fmt: skip
    emit(found, as_json, lines)


def _behaviour_lines(result: dict[str, Any]) -> list[str]:
    duel = result["champion_challenger"]
    reached = {arm: f"{duel[arm]['hits']}/{duel[arm]['total']} ({duel[arm]['rate']})"
               for arm in ("champion", "challenger")}  # fmt: skip
    return [
        f"behaviour score through {result['through']}: fitted on "
        f"{', '.join(result['fit_months'])} ({result['fit_rows']} rows), judged on "
        f"{', '.join(result['test_months'])} ({result['rows']} rows, {result['rolled']} rolled "
        f"to M2+ within {result['horizon_days']} days)",
        f"AUC {result['auc']}, KS {result['ks']}",
        "calibration (band: loans, predicted, observed): " + "; ".join(
            f"{b['band']}: {b['loans']}, {b['predicted']}, {b['observed']}"
            for b in result["calibration"]),
        f"rolls reached working {result['capacity']:.0%} of the loans: champion (exposure) "
        f"{reached['champion']}, challenger (score x exposure) {reached['challenger']}, "
        f"difference {duel['difference']} (95% CI {duel['ci'][0]} to {duel['ci'][1]})",
    ]  # fmt: skip
