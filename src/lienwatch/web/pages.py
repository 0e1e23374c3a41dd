"""The console's pages, each on the service verbs (no page reads the ORM): the collector's
queue, a case, the alerts, the supervisor's dashboard, loan search and the users."""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations,
# and the signed-in dependency (``Signed``) is local to the function that adds them.
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session, sessionmaker

from lienwatch import clock
from lienwatch.access.policy import Scope
from lienwatch.config import Settings
from lienwatch.domain.money import parse_yuan
from lienwatch.errors import LienwatchError, NotFoundError
from lienwatch.followup.model import FollowupRefused, Outcome, Role
from lienwatch.reports.charts import province_track
from lienwatch.services.auth import AuditAction, AuthService
from lienwatch.services.followup import FollowupService
from lienwatch.services.followup.coverage import business_as_of, coverage, kpis
from lienwatch.services.lookup import case_queue, search_loans, vehicle_track
from lienwatch.services.reads.alerts import alerts as alert_rows
from lienwatch.services.reads.book import payments, schedule
from lienwatch.services.reads.cases import case_detail, case_timeline, visible_case
from lienwatch.services.reads.queues import team_queue
from lienwatch.services.repossession import RepossessionService
from lienwatch.services.users import list_users
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import transaction
from lienwatch.web.render import local, render
from lienwatch.web.session import PageRefused, Redirect, Viewer, form_of

#: The outcomes an agent records on a call (the others are the automation's or a review's).
CALL_OUTCOMES = (Outcome.PROMISE_TO_PAY, Outcome.RIGHT_PARTY_CONTACT, Outcome.NO_ANSWER,
                 Outcome.WRONG_NUMBER, Outcome.REFUSED, Outcome.DISPUTE, Outcome.UNREACHABLE,
                 Outcome.HARDSHIP)  # fmt: skip
HOME = {Role.AGENT: "/console/queue", Role.SUPERVISOR: "/console/team",
        Role.ANALYST: "/console/team", Role.AUDITOR: "/console/team",
        Role.ADMIN: "/console/users"}  # fmt: skip
KPI_DAYS = 30
QUEUE_ROWS = 200  # the most urgent cases (or tasks) a page lists
ALERT_ROWS = 500
LISTED = 25  # uncovered obligations and breaches listed on the dashboard, each


def add_pages(router: APIRouter, factory: sessionmaker[Session], settings: Settings,
              viewer: Callable[..., Viewer]) -> None:  # fmt: skip
    """Add the pages to ``router``; ``viewer`` is the signed-in dependency."""
    Signed = Annotated[Viewer, Depends(viewer)]
    catalogue = ProductCatalogue.from_tables(settings.products)

    @contextmanager
    def followup() -> Iterator[tuple[Session, FollowupService]]:
        with transaction(factory) as session:
            yield session, FollowupService.from_settings(
                session, settings.followup, time_zone=settings.time_zone, catalogue=catalogue
            )

    def page(template: str, who: Viewer, status: int = 200, **context: Any) -> HTMLResponse:
        """``template`` for ``who``; times in the business zone unless ``zone`` is given."""
        context = {"zone": settings.time_zone, **context}
        return HTMLResponse(render(template, who.language, viewer=who,
                                   home=HOME[Role(who.role)], **context), status_code=status)

    @router.get("/console/", response_class=RedirectResponse)
    def home(who: Signed) -> RedirectResponse:
        return RedirectResponse(HOME[Role(who.role)], status_code=303)

    @router.get("/console/queue", response_class=HTMLResponse)
    def queue(who: Signed) -> HTMLResponse:
        with followup() as (session, service):
            rows = case_queue(session, who.reader, limit=QUEUE_ROWS)
            checks = service.case_contact_checks(case_ids=[r["case"] for r in rows],
                                                 at=clock.now())  # fmt: skip
        return page("queue.html", who, rows=rows, checks=checks)

    def case_context(session: Session, service: FollowupService, who: Viewer,
                     case_id: int) -> dict[str, Any]:  # fmt: skip
        now = clock.now()
        try:
            detail = case_detail(session, who.reader, case_id, at=now, client=who.caller.client)
        except NotFoundError:
            raise PageRefused(404, f"case: no case {case_id}") from None
        ref, zone = detail["loan"]["ref"], detail["borrower"]["time_zone"]
        track = vehicle_track(session, who.reader, ref, at=now)
        stays = [{"lon": s.lon, "lat": s.lat,
                  "label": f"{local(s.start, zone).striptags()} → {local(s.end, zone).striptags()}"}
                 for s in track.stays]  # fmt: skip
        chinese = who.language == "zh"
        return {
            "case": detail, "zone": zone,
            "timeline": list(reversed(case_timeline(session, who.reader, case_id))),
            "schedule": schedule(session, who.reader, ref),
            "payments": payments(session, who.reader, ref),
            "checks": service.contact_checks(task_ids=[t["task"] for t in detail["tasks"]],
                                             at=now),
            "stays": len(track.stays), "outcomes": CALL_OUTCOMES,
            "may_act": who.role in (Role.AGENT, Role.SUPERVISOR),
            "track": province_track(
                track.points, stays, chinese=chinese,
                title="车辆近三日轨迹" if chinese else "The car's last three days",
                empty="无定位" if chinese else "no fixes"),
        }  # fmt: skip

    @router.get("/console/cases/{case_id}", response_class=HTMLResponse)
    def case(case_id: int, who: Signed, done: str | None = None) -> HTMLResponse:
        with followup() as (session, service):
            context = case_context(session, service, who, case_id)
        return page("case.html", who, done=done, error=None, refusal=None, **context)

    @router.post("/console/cases/{case_id}/outcome", response_class=HTMLResponse)
    async def outcome(case_id: int, request: Request, who: Signed) -> Response:
        fields = await form_of(request)
        now = clock.now()
        error: str | None = None
        refusal: dict[str, Any] | None = None
        try:
            task_id, promised_on, amount = _outcome_fields(fields)
            with followup() as (session, service):
                try:
                    visible_case(session, who.reader, case_id)
                except NotFoundError:
                    raise PageRefused(404, f"case: no case {case_id}") from None
                service.record_outcome(
                    task_id=task_id, by=who.username, at=now, outcome=fields.get("outcome", ""),
                    promised_on=promised_on, amount=amount, note=fields.get("note", "")[:2000],
                )  # fmt: skip
        except FollowupRefused as exc:  # the refusal is committed; say why and until when
            refusal = {"rule": exc.rule or str(exc), "next_allowed_at": exc.next_allowed_at}
        except LienwatchError as exc:
            error = str(exc)
        if error is None and refusal is None:
            raise Redirect(f"/console/cases/{case_id}?done=1")
        with followup() as (session, service):
            context = case_context(session, service, who, case_id)
        response = page("case.html", who, status=409 if refusal else 400, done=None,
                        error=error, refusal=refusal, **context)  # fmt: skip
        response.headers["HX-Replace-Url"] = f"/console/cases/{case_id}"  # not the POST's URL
        return response

    @router.get("/console/alerts", response_class=HTMLResponse)
    def alerts(who: Signed) -> HTMLResponse:
        with transaction(factory) as session:
            rows = [*alert_rows(session, who.reader, limit=ALERT_ROWS, status="open"),
                    *alert_rows(session, who.reader, limit=ALERT_ROWS, status="acknowledged")]
        rows.sort(key=lambda a: (-a["exposure_fen"], a["id"]))
        return page("alerts.html", who, alerts=rows)

    @router.get("/console/team", response_class=HTMLResponse)
    def team(who: Signed, error: str | None = None) -> HTMLResponse:
        now = clock.now()
        mine = who.principal.team if who.scope is Scope.TEAM else None
        with followup() as (session, service):
            as_of = business_as_of(session, now, settings.time_zone)
            cover = coverage(session, as_of=as_of, strategy=service.strategy,
                             time_zone=settings.time_zone)  # fmt: skip
            figures = kpis(session, since=as_of - timedelta(days=KPI_DAYS), as_of=as_of,
                           strategy=service.strategy, catalogue=catalogue,
                           time_zone=settings.time_zone)  # fmt: skip
            context = {
                "as_of": as_of, "cover": cover, "kpis": figures,
                "loads": service.agent_loads(team=mine, at=now),
                "queue": team_queue(session, who.reader, limit=QUEUE_ROWS),
                "commands": service.pending_tracker_commands(),
                "repossessions": service.pending_repossessions(),
            }  # fmt: skip
        return page("team.html", who, error=error, shown=LISTED, **context)

    @router.post("/console/tasks/{task_id}/reassign")
    async def reassign(task_id: int, request: Request, who: Signed) -> Response:
        fields = await form_of(request)
        try:
            with followup() as (_, service):
                service.reassign(task_id=task_id, to=fields.get("to", ""), by=who.username,
                                 at=clock.now())  # fmt: skip
        except LienwatchError as exc:
            return team(who, error=str(exc))
        raise Redirect("/console/team")

    @router.post("/console/cases/{case_id}/tracker-command")
    async def tracker_command(case_id: int, request: Request, who: Signed) -> Response:
        """A supervisor approves (sends) a tracker command an agent asked for."""
        fields = await form_of(request)
        try:
            with followup() as (session, service):
                visible_case(session, who.reader, case_id)
                service.command_tracker(loan_ref=fields.get("loan", ""),
                                        command=fields.get("command", ""), by=who.username,
                                        at=clock.now())  # fmt: skip
        except LienwatchError as exc:
            return team(who, error=str(exc))
        raise Redirect("/console/team")

    @router.post("/console/repossessions/{repossession_id}/approve")
    async def approve_repossession(repossession_id: int, request: Request,
                                   who: Signed) -> Response:  # fmt: skip
        fields = await form_of(request)
        try:
            with followup() as (session, service):
                RepossessionService.from_settings(
                    session, settings.repossession, followup=service
                ).approve(
                    repossession_id=repossession_id, by=who.username,
                    assignee=fields.get("assignee", ""), at=clock.now())  # fmt: skip
        except LienwatchError as exc:
            return team(who, error=str(exc))
        raise Redirect("/console/team")

    @router.get("/console/search", response_class=HTMLResponse)
    def search(who: Signed, q: str = "", by: str = "ref") -> HTMLResponse:
        rows: list[dict[str, Any]] | None = None
        error = None
        if q.strip():
            try:
                with transaction(factory) as session:
                    rows = search_loans(session, who.reader, q, by=by)
                    if by == "phone":  # looking a person up by phone is personal data
                        AuthService(session, settings.auth).audit(
                            actor=who.username, action=AuditAction.PERSONAL_DATA,
                            subject=f"phone search: {len(rows)} loans", at=clock.now(),
                            client=who.caller.client, details={"search": "phone"})
            except LienwatchError as exc:
                error = str(exc)
        return page("search.html", who, q=q, by=by, rows=rows, error=error)

    @router.get("/console/users", response_class=HTMLResponse)
    def users(who: Signed) -> HTMLResponse:
        with transaction(factory) as session:
            rows = list_users(session, team=who.principal.team,
                              only_team=who.scope is Scope.TEAM)  # fmt: skip
        return page("users.html", who, users=rows)


def _outcome_fields(fields: dict[str, str]) -> tuple[int, date | None, int | None]:
    """The task, and for a promise its date and amount (yuan), from the outcome form."""
    try:
        task_id = int(fields.get("task", ""))
    except ValueError:
        raise LienwatchError("task: choose the task the outcome is for") from None
    promised_on = amount = None
    if fields.get("promised_on", "").strip():
        try:
            promised_on = date.fromisoformat(fields["promised_on"].strip())
        except ValueError:
            raise LienwatchError(f"promised_on: {fields['promised_on']!r} is not a date "
                                 "YYYY-MM-DD") from None  # fmt: skip
    if fields.get("amount", "").strip():
        amount = parse_yuan(fields["amount"], field="amount")
    return task_id, promised_on, amount
