"""`lienwatch demo`: the main job on the embedded default."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lienwatch import clock
from lienwatch.access.credentials import check_password_strength
from lienwatch.commands.options import Json
from lienwatch.config import load_settings
from lienwatch.domain.money import to_yuan
from lienwatch.errors import LienwatchError


def demo(
    loans: Annotated[
        int | None, typer.Option(min=1, max=1_000_000, help="Loans to simulate [default: 2000].")
    ] = None,
    days: Annotated[
        int | None, typer.Option(min=14, max=3650, help="Days of history [default: 120].")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed [default: 7].")] = None,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Output folder [default: ./lienwatch-demo].", file_okay=False),
    ] = None,
    phone_agents: Annotated[
        int | None,
        typer.Option(
            min=0, help="Simulated phone agents [default: what the go-live forecast needs]."
        ),
    ] = None,
    field_agents: Annotated[
        int | None,
        typer.Option(
            min=0, help="Simulated field agents [default: what the go-live forecast needs]."
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Simulate a portfolio, load it into a fresh SQLite database, run every capability,
    write report.html and print a summary, then the console's accounts on that database
    (admin, supervisor1, collector1…, analyst1, auditor1) with the password in
    LIENWATCH_DEMO_PASSWORD, or a random one printed once, and how to open the console."""
    from lienwatch.demo.console import PASSWORD_VARIABLE, demo_password, open_console_accounts
    from lienwatch.demo.followup import Team  # heavy imports only when used
    from lienwatch.demo.run import DemoOptions, run_demo

    password = demo_password()
    try:
        check_password_strength(password)
    except LienwatchError as exc:  # said before the demo spends minutes
        raise LienwatchError(f"{PASSWORD_VARIABLE}: {str(exc).partition(': ')[2]}") from None
    settings = load_settings()
    defaults = settings.demo
    options = DemoOptions(
        loans=loans if loans is not None else defaults.loans,
        days=days if days is not None else defaults.days,
        seed=seed if seed is not None else defaults.seed,
        directory=directory if directory is not None else defaults.dir,
    )
    options = replace(options, team=Team(phone_agents=phone_agents, field_agents=field_agents))
    options.sim_config()  # validate before any progress bar is drawn
    stderr = Console(stderr=True)
    with Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=as_json,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        summary = run_demo(
            options,
            products=settings.products,
            followup_settings=settings.followup,
            repossession_settings=settings.repossession,
            progress=progress,
            time_zone=settings.time_zone,
            report_lang=settings.report.lang,
            report_out=settings.report.out,
        )
    database = Path(summary["database"])
    users = open_console_accounts(f"sqlite:///{database}", password, at=clock.now())
    console = {
        "users": users,
        # the demo's ledger key, else serve signs its heads with a new one and the ledger
        # no longer verifies
        "open": f"LIENWATCH_DATABASE_URL=sqlite:///{_shown(database)} "
                f"LIENWATCH_LEDGER__KEY_FILE={_shown(Path(summary['ledger']['key_file']))} "
                "lienwatch serve",
        "url": f"http://127.0.0.1:{settings.gateway.http_port}/console/",
    }  # the password is not in summary.json, which stays on disk
    if as_json:
        typer.echo(json.dumps({**summary, "console": console, "demo_password": password},
                              default=str, ensure_ascii=False))  # fmt: skip
    else:
        _print_summary(Console(), summary)
        _print_console(console, password, given=PASSWORD_VARIABLE in os.environ)


def _print_team(table: Table, followup: dict[str, Any]) -> None:
    """The team, the staffing the go-live forecast asked for, and how right it was."""
    team, needed = followup["team"], followup["team"]["needed"]
    short = [f"{needed[skill] - team[f'{skill}_agents']} {skill}" for skill in ("phone", "field")
             if team[f"{skill}_agents"] < needed[skill]]  # fmt: skip
    table.add_row(
        "  team",
        f"{team['phone_agents']} phone · {team['field_agents']} field; the go-live forecast "
        f"needs {needed['phone']} phone · {needed['field']} field to meet every SLA"
        + (f" (short {', '.join(short)})" if short else ""),
    )
    for pool in followup["forecast"]["pools"]:
        tasks = " · ".join(f"{n:,.0f} {channel}" for channel, n in pool["tasks"].items())
        table.add_row(f"  forecast {pool['pool']}", f"{tasks} → {pool['needed']} agents")
    capped = followup["forecast"]["guard_bound"]
    if capped:
        table.add_row(
            "  forecast guard-bound",
            f"{len(capped)} call(s) past the daily call cap to one borrower, late whatever "
            f"the staffing unless substituted: {', '.join(sorted(set(capped))[:5])}",
        )
    for row in followup["forecast"]["accuracy"]:
        error = "n/a" if row["error"] is None else f"{100 * row['error']:+.1f} %"
        table.add_row(
            f"  accuracy {row['pool']} {row['channel']}",
            f"forecast {row['forecast']:,.0f} · queued {row['actual']:,} ({error})",
        )


def _yuan(fen: int | None) -> str:
    return "—" if fen is None else f"¥{to_yuan(fen):,.2f}"


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it is inside it (as typed), else whole."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def _print_console(console: dict[str, Any], password: str, *, given: bool) -> None:
    users = console["users"]
    collectors = [u for u in users if u.startswith("collector")]
    others = [u for u in users if not u.startswith("collector")]
    named = ", ".join([*others, f"{collectors[0]}…{collectors[-1]}" if collectors else ""])
    typer.echo(f"console: {console['open']}")
    typer.echo(f"  then open {console['url']} and log in as {named.rstrip(', ')}")
    if given:
        typer.echo("  password: the one in LIENWATCH_DEMO_PASSWORD")
    else:
        typer.echo(f"  password (shown once; set LIENWATCH_DEMO_PASSWORD to choose it): {password}")


def _print_summary(console: Console, s: dict[str, Any]) -> None:
    book = s["portfolio"]
    table = Table(title=f"lienwatch demo — as of {s['as_of']}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("loans", f"{sum(book['loans'].values()):,}")
    table.add_row("principal disbursed", f"¥{to_yuan(book['principal_disbursed']):,.2f}")
    table.add_row(
        "payments received", f"{book['payments']:,} · ¥{to_yuan(book['payments_amount']):,.2f}"
    )
    delinquency = book["delinquency"]
    if delinquency:
        table.add_row(
            "outstanding principal", f"¥{to_yuan(delinquency['outstanding_principal']):,.2f}"
        )
        table.add_row("unsecured exposure", f"¥{to_yuan(delinquency['unsecured']):,.2f}")
        buckets = " · ".join(f"{b} {row['loans']:,}" for b, row in delinquency["buckets"].items())
        table.add_row("DPD buckets", buckets)
    table.add_row("trackers", " · ".join(f"{k} {v:,}" for k, v in book["devices"].items()))
    table.add_row("GPS fixes stored", f"{book['positions']:,}")
    gateway = s["gateway"]
    table.add_row(
        "  through the gateway",
        f"{gateway['stored']:,} of {gateway['sent']:,} sent ({gateway['acked']:,} acked)",
    )
    table.add_row("trackers silent > 72 h", f"{book['devices_silent_72h']:,}")
    monitoring = s["monitoring"]
    table.add_row("collateral alerts", f"{monitoring['alerts']:,}")
    rings = s["fraud_rings"]
    table.add_row(
        "fraud rings",
        f"{rings['candidate_rings']:,} candidates for {rings['planted_rings']:,} planted · "
        f"precision {_ratio(rings['precision'])} · recall {_ratio(rings['recall'])}",
    )
    paid = s.get("payment_rules")
    if paid:
        table.add_row(
            "abnormal payments",
            f"{paid['flagged']:,} of {paid['payments']:,} payments flagged, "
            f"{paid['labelled']:,} labelled ({', '.join(paid['by_kind'])}) · "
            f"precision {_ratio(paid['precision'])} · recall {_ratio(paid['recall'])}",
        )
        forest = paid["unsupervised"]
        table.add_row(
            "  unsupervised score",
            f"isolation forest's top {forest['top_k']:,} (review only) · precision "
            f"{_ratio(forest['precision'])} · recall {_ratio(forest['recall'])} · random "
            f"ranking precision {_ratio(forest['random_precision'])}",
        )
    table.add_row("  payment alerts in the book",
                  f"{s['servicing'].get('payment_anomalies', 0):,} raised by the nightly scans")
    origination = s["origination"]
    table.add_row(
        "applications decided",
        f"{origination['applications']:,}: "
        + " · ".join(f"{k} {v:,}" for k, v in origination["decisions"].items()),
    )
    table.add_row(
        "  grade mix · default rate",
        " · ".join(f"{g} {m['loans']:,} ({_percent(m['default_rate'])})"
                   for g, m in origination["by_grade"].items()) or "no graded loan",
    )  # fmt: skip
    followup = s["followup"]
    table.add_row(
        "follow-up coverage",
        f"{100 * followup['coverage']:.1f} % of {followup['triggers']:,} triggers, "
        f"{followup['repossession_steps']:,} repossession steps and "
        f"{len(followup['uncovered']):,} uncovered ({len(followup['breaches']):,} SLA breaches)",
    )
    _print_team(table, followup)
    table.add_row("  SLA adherence", _percent(followup["sla_adherence"]))
    kpis = followup["kpis"]
    cures = kpis["cure_rate_by_bucket"]
    table.add_row(
        "  cure rate by bucket",
        " · ".join(f"{b} {_percent(m['rate'] if m else None)}" for b, m in cures.items()),
    )
    challenger = kpis.get("challenger") or {}
    table.add_row("  champion / challenger", _challenger_setup(challenger, s))
    for what, key in (("cure", "champion_challenger"), ("roll", "champion_challenger_roll")):
        if kpis.get(key):
            table.add_row(f"    {what} rate", _duel(kpis[key]))
    responses = followup.get("borrower_responses")
    if responses:
        table.add_row("  borrowers reached", (
            f"{responses['cases_reached']:,} cases reached by an agent · "
            f"{responses['responded']:,} borrowers paid because of it "
            f"({responses['response_payments']:,} by the business date; champion "
            f"{responses['responded_by_arm']['champion']:,} · challenger "
            f"{responses['responded_by_arm']['challenger']:,})"))  # fmt: skip
    ledger = s["ledger"]
    table.add_row(
        "ledger",
        f"{ledger['entries']:,} acts under {ledger['heads']} signed head(s), "
        + ("verified" if ledger["ok"] else f"NOT VERIFIED: {'; '.join(ledger['problems'][:3])}")
        + f" (key {ledger['key_id']})",
    )
    recovery = followup["repossession"]
    if recovery and recovery["ordered"]:
        table.add_row(
            "repossessions",
            f"{recovery['ordered']:,} ordered · "
            + " · ".join(f"{k} {v:,}" for k, v in recovery["by_status"].items()),
        )
        table.add_row(
            "  sale proceeds",
            f"¥{to_yuan(recovery['proceeds']):,.2f} (¥{to_yuan(recovery['to_loan']):,.2f} to "
            f"loans, recovery rate {_percent(recovery['recovery_rate'])})",
        )
    for profile, count in s["ground_truth"]["profiles"].items():
        table.add_row(f"truth: {profile}", f"{count:,}")
    table.add_row("total time", f"{sum(s['timings_s'].values()):.1f} s "
                  f"(CPU {sum(s['cpu_s'].values()):.1f} s)")  # fmt: skip
    table.add_row("  by stage (CPU)", " · ".join(
        f"{name} {seconds:.1f} s ({s['cpu_s'][name]:.1f})"
        for name, seconds in s["timings_s"].items()))  # fmt: skip
    load = s["machine"]["load_average_at_end"]
    if load is not None:
        table.add_row("  load average at the end", f"{load[0]:.2f} on {s['machine']['cpus']} CPUs")
    console.print(table)
    console.print(_detector_table(monitoring))
    breaches = s["followup"]["breaches"]
    if breaches:
        shown = ", ".join(f"{b['loan']} ({b['kind']}, unsecured {_yuan(b.get('exposure'))})"
                          for b in breaches[:BREACHES_SHOWN])  # fmt: skip
        more = len(breaches) - BREACHES_SHOWN
        tail = f" and {more:,} more (all in summary.json)" if more > 0 else ""
        median = _yuan(s["followup"].get("median_exposure"))
        console.print(f"follow-up SLA breaches: {shown}{tail}; the median unsecured exposure "
                      f"of an exposed loan is {median}", soft_wrap=True)  # fmt: skip
    console.print(f"report: {s['report']}" + (f" (the console's Reports: {s['report_archived']})"
                                              if s["report_archived"] else ""))  # fmt: skip


BREACHES_SHOWN = 12


def _challenger_setup(challenger: dict[str, Any], summary: dict[str, Any]) -> str:
    """What the challenger tries, and for a behaviour-score order, what it was scored with."""
    if not challenger:
        return "no challenger in the strategy"
    tries = " and ".join([*(f"its own {name} ladder" for name in challenger["ladders"]),
                          *(["queue by behaviour score x unsecured exposure"]
                            if challenger["priority"] == "behaviour" else [])])  # fmt: skip
    text = f"{challenger['name']} ({challenger['split']:.0%} of new cases): {tries}"
    if challenger["priority"] == "behaviour":
        fit = summary.get("behaviour_fit") or {}
        scored = challenger.get("scored_cases", {}).get("challenger", {"cases": 0, "scored": 0})
        text += (f"; fit on the book through {fit['fitted_through']} "
                 f"({fit.get('observations', 0):,} observations), "
                 f"{scored['scored']:,} of {scored['cases']:,} challenger cases scored"
                 if fit.get("fitted_through") else f"; no fit ({fit.get('unfitted', '?')})")
    return text


def _duel(duel: dict[str, Any]) -> str:
    """Champion and challenger rates with their 95 % intervals and the difference's."""
    def arm(m: dict[str, Any] | None) -> str:
        if not m or m.get("rate") is None:
            return "n/a"
        return (f"{_percent(m['rate'])} [{_percent(m['ci'][0])}, {_percent(m['ci'][1])}] "
                f"({m['hits']:,}/{m['total']:,})")  # fmt: skip

    text = f"champion {arm(duel['champion'])} · challenger {arm(duel['challenger'])}"
    if duel.get("difference") is not None:
        text += (f" · difference {100 * duel['difference']:+.1f} pp "
                 f"[{100 * duel['ci'][0]:+.1f}, {100 * duel['ci'][1]:+.1f}]"
                 + (" significant" if duel["significant"] else " not significant"))
    return text


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _detector_table(monitoring: dict[str, Any]) -> Table:
    """Every detector as a lender reads it, quiet ones too: its own story (precision, recall),
    then who its flags fall on (docs/monitor.md, "Scoring and speed")."""
    on_time = monitoring["on_time_loans"]
    table = Table(title="collateral detectors against the simulated truth")
    table.add_column("detector")
    for name in ("loans flagged", "precision", "recall", "on risky loans"):
        table.add_column(name, justify="right")
    table.add_column(f"on-time loans (of {on_time:,})", justify="right")
    for alert_type, score in monitoring["by_type"].items():
        table.add_row(alert_type, *_detector_cells(score))
    return table


def _detector_cells(score: dict[str, Any]) -> tuple[str, ...]:
    return (
        f"{score['flagged']:,}",
        _ratio(score["precision"]),
        _ratio(score["recall"]),
        _percent(score["risky_share"]),
        f"{score['on_time_flagged']:,} ({_percent(score['on_time_share'])})",
    )


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
