"""The demo pipeline: simulate, load, run every capability, report. Each stage is timed."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from lienwatch.adapters.ledger_key import load_or_create_key
from lienwatch.config import FollowupSettings, MonitorSettings, RepossessionSettings
from lienwatch.demo.followup import NightlyRuns, Team, simulate_followup
from lienwatch.demo.gateway_feed import feed_sample_through_gateway, sample_fixes
from lienwatch.demo.load import StagedFixes, load_book
from lienwatch.demo.origination import grade_outcomes, originate, record_grades
from lienwatch.demo.payments import score_payment_rules
from lienwatch.demo.repossession import DeskSize
from lienwatch.demo.response import BorrowerResponses
from lienwatch.demo.rings import score_rings
from lienwatch.demo.scoring import monitor_portfolio, scoring_summary
from lienwatch.followup.strategy import configured_strategy, strategy_document
from lienwatch.ledger.heads import key_id
from lienwatch.reports.daily import day_folder, figures_for, ledger_public_key, write
from lienwatch.reports.i18n import Lang
from lienwatch.risk.behaviour import BehaviourError
from lienwatch.services.alert_rules import monitor_settings_in_force
from lienwatch.services.behaviour import fit_behaviour_score, publish_behaviour_fit
from lienwatch.services.ledger import LedgerService
from lienwatch.services.reads.overview import build_overview
from lienwatch.services.strategies import publish_strategy, strategy_in_force
from lienwatch.services.users import list_users
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.sim import SimConfig, generate, write_portfolio
from lienwatch.store import migrate
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.repositories import AlertRepository, UserRepository
from lienwatch.store.servicing import unsecured_exposures

Progress = Callable[[str, int, int], None]
DATABASE_FILE = "lienwatch.sqlite3"
OPERATED_DAYS = 13  # follow-up runs over the days before the business date; servicing
# replays the history weekly before them


@dataclass(frozen=True, slots=True)
class DemoOptions:
    loans: int = 2000
    days: int = 120
    seed: int = 7
    directory: Path = Path("lienwatch-demo")
    team: Team = field(default_factory=Team)  # sizes left None: from the go-live forecast

    def sim_config(self) -> SimConfig:
        """The simulator's configuration; raises a one-line error for a bad option."""
        return SimConfig(loans=self.loans, days=self.days, seed=self.seed)


def run_demo(
    options: DemoOptions,
    *,
    products: Mapping[str, Mapping[str, Any]] | None = None,
    followup_settings: FollowupSettings | None = None,
    repossession_settings: RepossessionSettings | None = None,
    progress: Progress | None = None,
    time_zone: str = "Asia/Shanghai",
    report_lang: Lang = "zh",
    report_out: Path | None = None,
) -> dict[str, Any]:
    """Run the demo into ``options.directory``; return the summary (also in summary.json).

    ``products`` are the servicing rules per product code (the ``[products]`` configuration),
    ``followup_settings`` the ``[followup]`` configuration (strategy, watchdog, e-mail relay),
    ``repossession_settings`` the ``[repossession]`` rules the recovery desk works under,
    ``time_zone`` the business day's zone and ``report_lang`` the language of report.html (the
    daily risk warning report of the business day, as ``lienwatch report`` writes it), written
    beside the database and, with ``report_out`` (``[report] out``), in its day's folder there
    too, where the console's and the API's report archive find it.
    """
    report = progress or (lambda _stage, _done, _total: None)
    directory = options.directory
    directory.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    machine = {"cpus": os.cpu_count(), "load_average_at_start": _load_average()}

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        started, spent = time.perf_counter(), _cpu_seconds()
        yield
        timings[name] = round(time.perf_counter() - started, 2)
        cpu[name] = round(_cpu_seconds() - spent, 2)

    config = options.sim_config()
    with stage("simulate"):
        portfolio = generate(config, progress=report)
    with stage("write ground truth"):
        files = write_portfolio(portfolio, directory, positions=False)

    database = _fresh_database(directory / DATABASE_FILE)
    engine = make_engine(f"sqlite:///{database}")
    factory = session_factory(engine)
    # A sample of the trackers reaches the store through the real gateway over loopback TCP
    # (both protocols), the rest through the bulk loader.
    through_gateway = sample_fixes(portfolio.positions, portfolio.devices)
    go_live = portfolio.as_of - timedelta(days=OPERATED_DAYS)
    with stage("load"):
        migrate.upgrade(engine)
        eve = datetime.combine(go_live - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        with transaction(factory) as session:  # the book is brought in on the eve of go-live
            loaded = load_book(session, files, at=eve)
        with transaction(factory) as session:  # a worker stores the fixes meanwhile
            staged = StagedFixes(session, portfolio.positions, directory, skip=through_gateway)

    with stage("origination"):  # the applications through the pre-loan decision
        origination = originate(portfolio, seed=options.seed)
        with transaction(factory) as session:
            record_grades(session, origination, at=eve)

    catalogue = ProductCatalogue.from_tables(products or {})
    # The engine goes live two weeks back on the existing book; servicing replays the history
    # up to the eve of go-live, and from then on each day's nightly run is made in its turn.
    with stage("servicing"):
        history = _nightly_runs(factory, catalogue, portfolio.start, go_live, report)

    with stage("behaviour fit"):  # the behaviour score from the book before go-live
        behaviour = _fit_behaviour(factory, through=go_live - timedelta(days=1), at=eve)
        if behaviour["fitted_through"]:  # an analyst launches it as the challenger
            behaviour["published"] = _publish_behaviour_challenger(
                factory, followup_settings or FollowupSettings(), at=eve)

    # The monitor, the rings and the payment rules read the simulated book, not the stored
    # fixes: they run while the worker is still staging them, on the core it leaves free.
    with stage("monitor"):
        with transaction(factory) as session:  # the exposure known at go-live, the rules
            exposures = unsecured_exposures(session, as_of=go_live - timedelta(days=1))
            rules = monitor_settings_in_force(session, MonitorSettings(), at=eve)
        report("monitor", 0, 1)
        monitored = monitor_portfolio(portfolio, exposures=exposures, settings=rules)
        with transaction(factory) as session:
            AlertRepository(session).save_many(monitored.alerts)
        monitoring = scoring_summary(portfolio, monitored)
        report("monitor", 1, 1)

    with stage("fraud rings"):
        rings = score_rings(portfolio.borrowers, portfolio.truth.rings)

    with stage("payment rules"):  # the abnormal-payment rules on the planted truth
        payment_rules = score_payment_rules(portfolio, seed=options.seed)

    with stage("positions"):  # the worker's fixes, then the gateway's after them
        report("load positions", 0, 1)
        loaded["positions"] = staged.adopt(engine)
        report("load positions", 1, 1)

    with stage("gateway"):
        fed = feed_sample_through_gateway(
            portfolio.positions, portfolio.devices, f"sqlite:///{database}"
        )

    with stage("follow-up"):
        followup = simulate_followup(
            factory,
            start=go_live,
            end=portfolio.as_of - timedelta(days=1),
            catalogue=catalogue,
            settings=followup_settings,
            team=options.team,
            recovery=repossession_settings or RepossessionSettings(),
            desk=DeskSize.for_book(options.loans),
            nightly=True,
            responses=BorrowerResponses(portfolio.truth.profiles, seed=options.seed),
            seed=options.seed,
            progress=report,
        )
        business_day = NightlyRuns(factory, catalogue)
        business_day.run(portfolio.as_of)
    servicing = {
        key: history[key] + followup["nightly"][key] + business_day.counts()[key] for key in history
    }

    with stage("ledger"):
        ledger = _seal_and_verify(factory, directory / "ledger.key", portfolio.as_of)

    with stage("overview"), transaction(factory) as session:
        overview = build_overview(session, as_of=portfolio.as_of)
        grades = grade_outcomes(session, origination, through=portfolio.as_of)
    with stage("report"):  # at the end of the last day the follow-up team worked
        worked_until = datetime.fromisoformat(followup["period"]["as_of"])
        with transaction(factory) as session:
            figures = figures_for(
                session, as_of=portfolio.as_of, now=worked_until, time_zone=time_zone,
                strategy=strategy_in_force(session, configured_strategy(
                    (followup_settings or FollowupSettings()).strategy)),
                catalogue=catalogue, ledger_key=ledger_public_key(directory / "ledger.key"),
            )
        written = write(figures, directory, lang=report_lang)
        archived = (write(figures, day_folder(report_out, portfolio.as_of), lang=report_lang)
                    if report_out is not None else None)  # fmt: skip
    engine.dispose()

    summary: dict[str, Any] = {
        "seed": options.seed,
        "loans": options.loans,
        "days": options.days,
        "as_of": portfolio.as_of.isoformat(),
        "directory": str(directory),
        "database": str(database),
        "loaded": loaded,
        "servicing": servicing,
        "monitoring": monitoring,
        "fraud_rings": rings,
        "payment_rules": payment_rules,
        "origination": grades,
        "gateway": asdict(fed),
        "followup": followup,
        "behaviour_fit": behaviour,
        "ledger": ledger,
        "portfolio": overview.as_dict(),
        "ground_truth": {
            "profiles": dict(sorted(Counter(portfolio.truth.profiles.values()).items())),
            "events": dict(sorted(Counter(e.label for e in portfolio.truth.events).items())),
            "fraud_rings": len(portfolio.truth.rings),
            "risk_zones": len(portfolio.truth.risk_zones.get("features", [])),
        },
        "files": sorted(str(path.name) for path in files.values()),
        "report": str(written.html),
        "report_archived": str(archived.html) if archived else None,
        "timings_s": timings,
        "cpu_s": cpu,  # user + system, this process and the monitor's worker processes
        "machine": machine | {"load_average_at_end": _load_average()},
    }
    (directory / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def _seal_and_verify(factory: sessionmaker[Session], key_file: Path, as_of: date) -> dict[str, Any]:
    """Seal every act of the operated days under a signed tree head and verify the ledger."""
    key = load_or_create_key(key_file)
    at = datetime.combine(as_of, datetime.min.time(), tzinfo=UTC)  # after the last act
    with transaction(factory) as session:
        LedgerService(session, key=key).seal(at=at)
    with transaction(factory) as session:
        verified = LedgerService(session, public_key=key.public_key()).verify()
    return {**verified.as_dict(), "key_id": key_id(key.public_key()), "key_file": str(key_file)}


def _nightly_runs(
    factory: sessionmaker[Session],
    catalogue: ProductCatalogue,
    start: date,
    go_live: date,
    report: Progress,
) -> dict[str, int]:
    """Replay the servicing history before go-live: the nightly run weekly from ``start``
    and on the eve of go-live, in one pass over the book (the follow-up stage then runs
    every night, so the bucket history of its days carries the day each change was
    observed)."""
    eve = go_live - timedelta(days=1)
    days = [*(start + timedelta(days=d) for d in range(0, (eve - start).days, 7)), eve]
    runs = NightlyRuns(factory, catalogue)
    report("servicing", 0, len(days))
    runs.run_days(days)
    report("servicing", len(days), len(days))
    return runs.counts()


def _cpu_seconds() -> float:
    """User and system CPU time of this process and of its finished children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _load_average() -> list[float] | None:
    """The machine's load average over 1, 5 and 15 minutes (None where unknown): figures
    from a shared machine are read beside it."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _fit_behaviour(factory: sessionmaker[Session], *, through: date,
                   at: datetime) -> dict[str, Any]:  # fmt: skip
    """Fit the behaviour score on the book up to ``through`` (the eve of go-live) and have
    the demo's analyst publish it, so the follow-up challenger scores the cases it opens from
    then on: cases the fit never saw. A book too short to fit says why (its challenger keeps
    the champion's order)."""
    try:
        with transaction(factory) as session:
            fit = fit_behaviour_score(session, through=through, at=at)
            publish_behaviour_fit(session, fit_id=fit.id, by=ANALYST, at=at)
            return {"fitted_through": through.isoformat(), **fit.figures}
    except BehaviourError as exc:
        return {"fitted_through": None, "unfitted": str(exc)}


#: The challenger the demo's analyst publishes: the same ladders, the queue ordered by the
#: behaviour score (docs/risk.md, "The behaviour score in the follow-up engine").
BEHAVIOUR_CHALLENGER = {"name": "behaviour-priority", "split": 0.5, "seed": 6,
                        "priority": "behaviour"}  # fmt: skip
ANALYST = "analyst1"


def _publish_behaviour_challenger(factory: sessionmaker[Session], settings: FollowupSettings,
                                  *, at: datetime) -> str:  # fmt: skip
    """Publish the next version of the configured strategy with :data:`BEHAVIOUR_CHALLENGER`
    as its challenger, by the demo's analyst; its label."""
    configured = configured_strategy(settings.strategy)
    with transaction(factory) as session:
        current = strategy_in_force(session, configured)
        document = {**strategy_document(settings.strategy), "version": current.version + 1,
                    "challenger": BEHAVIOUR_CHALLENGER}  # fmt: skip
        users = UserRepository(session)
        if not any(u["username"] == ANALYST for u in list_users(session)):
            users.add(username=ANALYST, role="analyst", team=None)
        published = publish_strategy(session, document=document, configured=configured,
                                     by=ANALYST, at=at)  # fmt: skip
        return published.label


def _fresh_database(path: Path) -> Path:
    """Remove a previous demo database (and its WAL files) so every run starts clean."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path
