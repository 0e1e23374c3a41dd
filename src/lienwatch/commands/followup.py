"""``lienwatch followup``: the scheduler tick, coverage, KPIs, agent queues and outcomes, and
the compliance guard's answer for one contact (conduct and the supervisor's desk in their own
modules)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from sqlalchemy.orm import Session

from lienwatch import clock
from lienwatch.commands import conduct, desk, workforce
from lienwatch.commands.common import emit, figure_lines, followup_service, options_named
from lienwatch.commands.options import (
    AsOf,
    At,
    Json,
    Since,
    day_option,
    parse_at,
    time_option,
    yuan_option,
)
from lienwatch.config import Settings, load_settings
from lienwatch.domain.money import format_yuan
from lienwatch.followup.compliance import ComplianceGuard, ContactRequest, PastContact
from lienwatch.followup.model import Channel, FollowupError, Outcome, TrackerCommand
from lienwatch.jobs import FOLLOWUP_TICK, followup_tick, tick_and_drain
from lienwatch.scheduling import Every, Job, JobStatus, running_scheduler
from lienwatch.services.followup import FollowupService
from lienwatch.services.followup.coverage import business_as_of, coverage, kpis
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import transaction
from lienwatch.store.migrate import open_store
from lienwatch.tabular import require_file

#: The outcomes an agent records (``delivered`` is an automatic message's).
AgentOutcome = StrEnum(  # type: ignore[misc]
    "AgentOutcome", {o.name: o.value for o in Outcome if o is not Outcome.DELIVERED}
)


class ContactChannel(StrEnum):
    SMS = "sms"
    CALL = "call"
    VISIT = "visit"


def register(app: typer.Typer) -> None:
    """Add the ``followup`` sub-app to the root ``app``."""
    followup = typer.Typer(help="The follow-up engine (回访).", no_args_is_help=True)
    followup.command("tick")(tick_command)
    followup.command("adopt")(adopt_command)
    followup.command("run")(run_command)
    followup.command("coverage")(coverage_command)
    followup.command("kpis")(kpis_command)
    followup.command("queue")(queue_command)
    followup.command("record")(record_command)
    followup.command("tracker-command")(tracker_command_command)
    followup.command("check-contact")(check_contact_command)
    conduct.add_commands(followup)
    desk.add_commands(followup)
    workforce.add_commands(followup)
    app.add_typer(followup, name="followup")


def tick_command(at: At = None, as_json: Json = False) -> None:
    """Run one scheduler tick: ingest triggers, execute automatic steps, queue and assign
    agent steps, escalate and record breaches; then execute the due steps left, in batches of
    [followup] step_batch (one transaction each)."""
    now = at or clock.now()
    settings = load_settings()
    catalogue = ProductCatalogue.from_tables(settings.products)
    with open_store(settings.database_url) as database:
        report = tick_and_drain(database.factory, settings, catalogue=catalogue, at=now)
    emit(report, as_json, figure_lines(report))


def adopt_command(
    at: At = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what it would raise.")] = False,
    as_json: Json = False,
) -> None:
    """Adopt the book's backlog (go-live, or a book imported later): a follow-up for every
    loan past due in the latest nightly snapshot, every open collateral alert and every
    bucket change not yet followed, their SLAs counted from --at. The first tick on a new
    book does it by itself; repeating it raises nothing twice."""
    now = at or clock.now()
    settings = load_settings()
    catalogue = ProductCatalogue.from_tables(settings.products)
    with open_store(settings.database_url) as database, transaction(database.factory) as session:
        service = FollowupService.from_settings(
            session, settings.followup, time_zone=settings.time_zone, catalogue=catalogue
        )
        report = service.adopt_backlog(at=now).as_dict()
        if dry_run:  # the same work, undone: exactly what a real run would raise
            session.rollback()
    adopted = {"dry_run": dry_run, "adopted": report["adopted"], "raised": report["raised"],
               "cases_opened": report["cases_opened"]}  # fmt: skip
    verb = "would adopt" if dry_run else "adopted"
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(report["raised"].items())) or "nothing"
    emit(adopted, as_json, [f"{verb} {report['adopted']} follow-ups: {kinds}"])


def run_command(
    every: Annotated[float, typer.Option(min=1, help="Seconds between ticks.")] = 60.0,
    ticks: Annotated[int | None, typer.Option(min=1, help="Stop after this many.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per tick (JSON lines).")
    ] = False,
) -> None:
    """Run the scheduler: one tick every EVERY seconds, each in its own transaction, until
    interrupted; one line per tick (one JSON object with --json). Several workers may run it
    on one PostgreSQL database: one ticks at a time, the others skip the tick, all execute
    batches of due steps, and no step is executed twice. (``lienwatch worker`` runs the same
    tick with the nightly servicing run.)"""
    settings = load_settings()
    asyncio.run(_run_ticks(settings, every, ticks, as_json))


async def _run_ticks(settings: Settings, every: float, ticks: int | None, as_json: bool) -> None:
    """The follow-up tick job alone on the scheduler, printing one line per tick."""
    from lienwatch.runtime import stop_on_signals

    stop = stop_on_signals()

    def report(status: JobStatus) -> None:
        if status.last_result is None:
            line = {"tick": status.runs, "error": status.last_error}
        else:
            busy = {k: v for k, v in status.last_result.items() if v and k != "raised"}
            line = {"tick": status.runs, **busy, "raised": status.last_result["raised"]}
        text = ", ".join(f"{key} {value}" for key, value in line.items() if key != "tick")
        typer.echo(json.dumps(line) if as_json else f"tick {status.runs}: {text}")
        if ticks is not None and status.runs >= ticks:
            stop.set()

    with open_store(settings.database_url) as database:
        job = Job(FOLLOWUP_TICK, Every(every), followup_tick(database.factory, settings))
        async with running_scheduler([job], on_run=report) as scheduler:
            await stop.wait()
    typer.echo(f"scheduler stopped after {scheduler.statuses[FOLLOWUP_TICK].runs} ticks", err=True)


def coverage_command(
    at: At = None,
    as_of: AsOf = None,
    since: Since = None,
    as_json: Json = False,
) -> None:
    """The coverage invariant: what the book owes (triggers, repossession steps, past-due loans
    and open alerts) followed up within SLA, naming the loans of breaches, the loans left
    without a follow-up and the tasks nobody present can take. Measured at --at, or at the
    end of the business day --as-of; by default now, or the day after the last nightly run
    when the book is older."""
    with followup_service(write=False) as (session, service):
        moment = _report_time(session, service, at, as_of)
        report = {"as_of": moment.isoformat(timespec="seconds"),
                  **coverage(session, as_of=moment, since=since, strategy=service.strategy,
                             time_zone=service.zone.key).as_dict()}  # fmt: skip
    lines = [
        f"coverage {report['coverage']:.2%} as of {report['as_of']}: {report['covered']} "
        f"of {report['obligations']} within SLA ({report['triggers']} triggers, "
        f"{report['repossession_steps']} repossession steps, {len(report['uncovered'])} "
        f"uncovered); open: {report['open_triggers']} triggers, "
        f"{report['open_repossession_steps']} repossession steps",
        *(f"breach: loan {b['loan']} {b['kind']} deadline {b['deadline_at']} team {b['team']}"
          for b in report["breaches"]),
        *(f"uncovered: loan {u['loan']} {u['detail']}: no follow-up" for u in report["uncovered"]),
        *(f"at risk: loan {a['loan']} task {a['task_id']} {a['skill']} of team {a['team']} "
          f"by {a['deadline_at']}: no active agent can take it" for a in report["at_risk"]),
    ]  # fmt: skip
    emit(report, as_json, lines)


def kpis_command(
    since: Annotated[datetime, time_option("--since", "Period start")],
    at: At = None,
    as_of: AsOf = None,
    as_json: Json = False,
) -> None:
    """KPIs: coverage, SLA breaches, contact/RPC/promise rates, cures, roll rates. The period
    ends as in ``coverage``."""
    with followup_service(write=False) as (session, service):
        figures = kpis(
            session,
            since=since,
            as_of=_report_time(session, service, at, as_of),
            strategy=service.strategy,
            catalogue=service.catalogue,
            time_zone=service.zone.key,
        )
    emit(figures, as_json, figure_lines(figures))


def _report_time(
    session: Session, service: FollowupService, at: datetime | None, as_of: date | None
) -> datetime:
    """--at, else the end of the business day --as-of, else the book's business time (see
    ``business_as_of``)."""
    if at is not None and as_of is not None:
        raise FollowupError("give --at or --as-of, not both")
    if at is not None:
        return at
    if as_of is not None:
        end = datetime.combine(as_of + timedelta(days=1), time(), tzinfo=service.zone)
        return end.astimezone(UTC)
    return business_as_of(session, clock.now(), service.zone.key)


def queue_command(
    agent: Annotated[
        str, typer.Option("--by", "--agent", metavar="USER", help="The agent's username.")
    ],
    as_json: Json = False,
) -> None:
    """The agent's queue, most urgent first."""
    with options_named(agent="--by"), followup_service(write=False) as (_session, service):
        tasks = [
            {"task": t.id, "loan": service.loan_ref(t.loan_id), "case": t.case_id,
             "channel": t.channel, "due_at": t.due_at.isoformat(timespec="seconds"),
             "deadline_at": t.deadline_at.isoformat(timespec="seconds"), "priority": t.priority}
            for t in service.queue(agent=agent)
        ]  # fmt: skip
    lines = [
        f"#{t['task']} loan {t['loan']} {t['channel']} due {t['due_at']} by {t['deadline_at']}"
        for t in tasks
    ] or [f"the queue of {agent} is empty"]
    emit(tasks, as_json, lines)


def record_command(
    task: Annotated[int, typer.Option("--task", help="The task id from the queue.")],
    agent: Annotated[
        str, typer.Option("--by", "--agent", metavar="USER",
                          help="Who made the contact (the task's assignee or a supervisor).")
    ],
    outcome: Annotated[AgentOutcome, typer.Option("--outcome", help="What happened.")],
    at: At = None,
    promise_date: Annotated[date | None, day_option("--promise-date", "Promised date")] = None,
    promise_amount: Annotated[
        int | None, yuan_option("--promise-amount", "Promised yuan")
    ] = None,
    recording: Annotated[str | None, typer.Option(help="Recording reference (visits).")] = None,
    consented: Annotated[bool, typer.Option(help="The debtor agreed to this contact.")] = False,
    note: Annotated[str, typer.Option(help="Free text for the case timeline.")] = "",
    as_json: Json = False,
) -> None:
    """Record the outcome of a queued task (calls and visits pass the compliance guard)."""
    with options_named(task_id="--task", agent="--by", by="--by", promised_on="--promise-date",
                       amount="--promise-amount", recording_ref="--recording", at="--at"), \
            followup_service() as (_session, service):  # fmt: skip
        action = service.record_outcome(
            task_id=task, by=agent, at=at or clock.now(), outcome=Outcome(outcome.value),
            promised_on=promise_date, amount=promise_amount, recording_ref=recording,
            consented=consented, note=note,
        )  # fmt: skip
        promise = None if promise_amount is None else {
            "amount": format_yuan(promise_amount), "date": str(promise_date)}  # fmt: skip
        result = {"task": task, "case": action.case_id, "action": action.id,
                  "kind": action.kind, "outcome": action.outcome, "promise": promise}  # fmt: skip
    summary = f"recorded {action.kind} {action.outcome} on case {action.case_id}"
    if promise_amount is not None:
        summary += f" (promise of {format_yuan(promise_amount)} on {promise_date})"
    emit(result, as_json, summary)


def tracker_command_command(
    loan: Annotated[str, typer.Option("--loan", help="The loan's reference.")],
    command: Annotated[TrackerCommand, typer.Option("--command", help="What the tracker does.")],
    by: Annotated[
        str | None, typer.Option("--by", metavar="USER", help="The approving supervisor.")
    ] = None,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Send a remote command to a loan's tracker: only on a loan past due, approved by a
    supervisor. A refusal is kept on the case timeline with its rule and exits non-zero."""
    with options_named(loan="--loan", by="--by", command="--command"), \
            followup_service() as (_session, service):  # fmt: skip
        action = service.command_tracker(
            loan_ref=loan, command=command, by=by, at=at or clock.now()
        )
        sent = {"loan": loan, "command": command.value, "case": action.case_id,
                "action": action.id, "outcome": action.outcome}  # fmt: skip
    emit(sent, as_json, [f"sent {command.value} to the tracker of loan {loan} "
                          f"(case {sent['case']})"])  # fmt: skip


def check_contact_command(
    profile: Annotated[str, typer.Option("--profile", help="cn or us.")],
    channel: Annotated[ContactChannel, typer.Option("--channel")],
    tz: Annotated[str, typer.Option("--tz", help="The borrower's IANA time zone.")],
    at: At = None,
    history: Annotated[
        Path | None, typer.Option("--history", help='JSON list of {"at", "channel", ...}.')
    ] = None,
    as_json: Json = False,
) -> None:
    """Would the compliance guard allow this contact? Prints allowed, reason, next time."""
    _zone_check(tz)
    guard = ComplianceGuard(profile)
    request = ContactRequest("check", Channel(channel.value), at or clock.now(), tz)
    decision = guard.check(request, _read_history(history) if history else [])
    result = decision.as_dict()
    emit(result, as_json, figure_lines(result))


def _zone_check(tz: str) -> None:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise FollowupError(f"--tz: unknown IANA time zone {tz!r}") from None


def _read_history(path: Path) -> list[PastContact]:
    """``[{"at", "channel", "connected", "conversation", "consented"?}]``; errors name the
    entry and the field."""
    require_file(path, "--history")
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise FollowupError(f"--history: {path}: {exc}") from None
    if not isinstance(entries, list):
        raise FollowupError(f"--history: {path}: expected a JSON list")
    contacts = []
    for i, entry in enumerate(entries):
        where = f"--history: {path} entry {i}"
        if not isinstance(entry, dict) or "at" not in entry or "channel" not in entry:
            raise FollowupError(f"{where}: needs 'at' and 'channel'")
        try:
            channel = Channel(entry["channel"])
        except ValueError:
            raise FollowupError(f"{where}, field channel: unknown {entry['channel']!r}") from None
        contacts.append(
            PastContact(
                _entry_time(str(entry["at"]), f"{where}, field at"),
                channel,
                bool(entry.get("connected", False)),
                bool(entry.get("conversation", False)),
                bool(entry.get("consented", False)),
            )
        )
    return contacts


def _entry_time(text: str, where: str) -> datetime:
    try:
        return parse_at(text)
    except typer.BadParameter as exc:
        raise FollowupError(f"{where}: {exc.message}") from None
