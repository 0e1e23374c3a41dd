"""The console's pages, each on the service verbs (no page reads the ORM): the collector's
queue, a case, the alerts, the supervisor's dashboard, the workforce plan and league, loan
search and the users."""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations,
# and the signed-in dependency (``Signed``) is local to the function that adds them.
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session, sessionmaker

from lienwatch import clock
from lienwatch.access.policy import POLICY, Scope, may_see_personal_data
from lienwatch.api.auth import client_address
from lienwatch.api.context import Id, day_cursor, decode_cursor, next_cursor
from lienwatch.config import Settings
from lienwatch.domain.money import MoneyError, parse_yuan
from lienwatch.errors import ConflictError, LienwatchError, NotFoundError
from lienwatch.followup.model import (
    TRANSITIONS,
    CaseStatus,
    FollowupRefused,
    Outcome,
    Role,
    TrackerCommand,
)
from lienwatch.monitor.model import AlertStatus
from lienwatch.reports.archive import list_reports, report_html
from lienwatch.reports.charts import province_track
from lienwatch.services.alert_rules import alert_rule_versions
from lienwatch.services.alerts import decide_alert
from lienwatch.services.configuration import configuration_rows
from lienwatch.services.followup import FollowupService
from lienwatch.services.followup.coverage import business_as_of, coverage, kpis
from lienwatch.services.followup.desk import ESCALATIONS
from lienwatch.services.lookup import case_queue, find_loans, vehicle_track
from lienwatch.services.reads.alerts import alerts as alert_rows
from lienwatch.services.reads.alerts import visible_alert
from lienwatch.services.reads.book import payments, schedule
from lienwatch.services.reads.cases import case_detail, case_timeline, visible_case
from lienwatch.services.reads.queues import team_queue
from lienwatch.services.repossession import RepossessionService
from lienwatch.services.users import (
    change_user_role,
    create_user,
    list_users,
    set_user_active,
    team_names,
)
from lienwatch.services.workforce.capacity import service_forecast
from lienwatch.services.workforce.incentives import month_league
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import transaction
from lienwatch.store.tables import Case
from lienwatch.web.render import local, render
from lienwatch.web.session import PageRefused, Redirect, Viewer, form_of
from lienwatch.workforce.incentives import incentive_scheme
from lienwatch.workforce.rules import capacity_rules

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
PAGE_ROWS = 50  # rows of a paged list (users, reports): the next page by its cursor
LISTED = 25  # uncovered obligations and breaches listed on the dashboard, each
ALERT_DECISIONS = (AlertStatus.ACKNOWLEDGED.value, AlertStatus.RESOLVED.value,
                   AlertStatus.FALSE_POSITIVE.value)  # fmt: skip


def may(who: Viewer, method: str, route: str) -> bool:
    """Whether the route policy lets ``who`` call ``route`` (a page shows only the forms its
    viewer may post)."""
    rule = POLICY.get((method, route))
    return rule is not None and rule.scope_of(who.role) is not None


def add_pages(router: APIRouter, factory: sessionmaker[Session], settings: Settings,
              viewer: Callable[..., Viewer]) -> None:  # fmt: skip
    """Add the pages to ``router``; ``viewer`` is the signed-in dependency."""
    Signed = Annotated[Viewer, Depends(viewer)]
    catalogue = ProductCatalogue.from_tables(settings.products)

    @contextmanager
    def followup(*, write: bool = True) -> Iterator[tuple[Session, FollowupService]]:
        """The follow-up service in one transaction (``write=False`` for a page that only
        reads: :func:`~lienwatch.store.db.transaction`)."""
        with transaction(factory, write=write) as session:
            yield session, FollowupService.from_settings(
                session, settings.followup, time_zone=settings.time_zone, catalogue=catalogue
            )

    def page(template: str, who: Viewer, status: int = 200, **context: Any) -> HTMLResponse:
        """``template`` for ``who``; times in the business zone unless ``zone`` is given.
        Never stored by the browser: a signed-in page holds personal data, which Back must
        not show again once the user has logged out (the server is asked again)."""
        context = {"zone": settings.time_zone, **context}
        return HTMLResponse(render(template, who.language, viewer=who,
                                   home=HOME[Role(who.role)], **context), status_code=status,
                            headers={"Cache-Control": "no-store"})  # fmt: skip

    def visible(session: Session, who: Viewer, case_id: int) -> Case:
        """The case if ``who`` reaches it, else the 404 page."""
        try:
            return visible_case(session, who.reader, case_id)
        except NotFoundError:
            raise PageRefused(404, f"case: no case {case_id}") from None

    @router.get("/console/", response_class=RedirectResponse)
    def home(who: Signed) -> RedirectResponse:
        return RedirectResponse(HOME[Role(who.role)], status_code=303)

    @router.get("/console/queue", response_class=HTMLResponse)
    def queue(who: Signed) -> HTMLResponse:
        with followup(write=False) as (session, service):
            rows = case_queue(session, who.reader, limit=QUEUE_ROWS)
            checks = service.case_contact_checks(case_ids=[r["case"] for r in rows],
                                                 at=clock.now())  # fmt: skip
        return page("queue.html", who, rows=rows, checks=checks)

    def case_context(session: Session, service: FollowupService, who: Viewer,
                     case_id: int, reveal: bool = False) -> dict[str, Any]:  # fmt: skip
        """What the case page shows; with ``reveal``, the borrower's numbers in clear (the
        read verb refuses the roles that may not and audits the view)."""
        now = clock.now()
        try:
            detail = case_detail(session, who.reader, case_id, at=now, reveal=reveal,
                                 client=who.caller.client)  # fmt: skip
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
            "payments": payments(session, who.reader, ref, at=now, reveal=reveal,
                                 client=who.caller.client, why=f"case {case_id}"),
            "checks": service.contact_checks(task_ids=[t["task"] for t in detail["tasks"]],
                                             at=now),
            "stays": len(track.stays), "outcomes": CALL_OUTCOMES,
            "may_act": who.role in (Role.AGENT, Role.SUPERVISOR),
            "may_reveal": may_see_personal_data(who.role), "commands": list(TrackerCommand),
            "escalations": [e for e in ESCALATIONS  # where the case may go from here
                            if e in TRANSITIONS[CaseStatus(detail["status"])]]
            if who.role == Role.SUPERVISOR else [],
            "agents": [a.username for a in service.agent_loads(team=who.principal.team, at=now)
                       if a.active] if who.role == Role.SUPERVISOR else [],
            "track": province_track(
                track.points, stays, chinese=chinese,
                title="车辆近三日轨迹" if chinese else "The car's last three days",
                empty="无定位" if chinese else "no fixes"),
        }  # fmt: skip

    @router.get("/console/cases/{case_id}", response_class=HTMLResponse)
    def case(case_id: Id, who: Signed, done: str | None = None) -> HTMLResponse:
        with followup(write=False) as (session, service):
            context = case_context(session, service, who, case_id)
        return page("case.html", who, done=done, error=None, refusal=None, **context)

    def case_page_with(who: Viewer, case_id: int, status: int, *, error: str | None = None,
                       refusal: dict[str, Any] | None = None) -> HTMLResponse:  # fmt: skip
        """The case page again after a refused or bad form, at the case's own URL."""
        with followup(write=False) as (session, service):
            context = case_context(session, service, who, case_id)
        response = page("case.html", who, status=status, done=None, error=error,
                        refusal=refusal, **context)  # fmt: skip
        response.headers["HX-Replace-Url"] = f"/console/cases/{case_id}"  # not the POST's URL
        return response

    @router.post("/console/cases/{case_id}/reveal", response_class=HTMLResponse)
    async def reveal(case_id: Id, who: Signed) -> HTMLResponse:
        """The case with the borrower's phone and ID numbers in clear, for the roles that
        may see them; the view is written to the audit log. A POST: a view of personal data
        is an act (audited, CSRF-checked), never a link a browser may prefetch."""
        with followup() as (session, service):
            context = case_context(session, service, who, case_id, reveal=True)
        response = page("case.html", who, done=None, error=None, refusal=None, **context)
        response.headers["HX-Replace-Url"] = f"/console/cases/{case_id}"
        return response

    def on_case(who: Viewer, case_id: int, done: str,
                act: Callable[[FollowupService, Case], object]) -> Response:  # fmt: skip
        """Do ``act`` on the case (if ``who`` reaches it) in one transaction and show the
        case saying ``done``; else the case again with why not: a refusal with its rule and
        next allowed time (its record committed by ``transaction()``), or the error."""
        try:
            with followup() as (session, service):
                act(service, visible(session, who, case_id))
        except FollowupRefused as exc:
            refusal = {"rule": exc.rule or str(exc), "next_allowed_at": exc.next_allowed_at}
            return case_page_with(who, case_id, 409, refusal=refusal)
        except LienwatchError as exc:
            return case_page_with(who, case_id, 400, error=str(exc))
        raise Redirect(f"/console/cases/{case_id}?done={done}")

    @router.post("/console/cases/{case_id}/escalate", response_class=HTMLResponse)
    async def escalate(case_id: Id, request: Request, who: Signed) -> Response:
        """A supervisor escalates a case of the team (to ``escalated`` or ``legal``), saying
        why."""
        fields = await form_of(request)
        return on_case(who, case_id, "escalated", lambda service, _: service.escalate_case(
            case_id=case_id, to=fields.get("to", ""), by=who.username,
            why=fields.get("why", "")[:500], at=clock.now()))  # fmt: skip

    @router.post("/console/cases/{case_id}/tracker-request", response_class=HTMLResponse)
    async def tracker_request(case_id: Id, request: Request, who: Signed) -> Response:
        """A collector (or supervisor) asks a supervisor to send a tracker command; on a
        loan not past due it is refused with its rule (and the refusal kept)."""
        fields = await form_of(request)
        return on_case(who, case_id, "requested", lambda service, case: (
            service.request_tracker_command(
                loan_ref=service.loan_ref(case.loan_id), command=fields.get("command", ""),
                by=who.username, at=clock.now(), why=fields.get("why", "")[:500])))  # fmt: skip

    @router.post("/console/cases/{case_id}/outcome", response_class=HTMLResponse)
    async def outcome(case_id: Id, request: Request, who: Signed) -> Response:
        """Record the outcome of a task of the case; a refused contact is answered with the
        rule and the next allowed time."""
        fields = await form_of(request)

        def act(service: FollowupService, case: Case) -> None:
            task_id, promised_on, amount = _outcome_fields(fields)
            service.record_outcome(
                task_id=task_id, by=who.username, at=clock.now(),
                outcome=fields.get("outcome", ""), promised_on=promised_on, amount=amount,
                note=fields.get("note", "")[:2000], case_id=case.id)  # fmt: skip

        return on_case(who, case_id, "outcome", act)

    @router.get("/console/alerts", response_class=HTMLResponse)
    def alerts(who: Signed,
               decided: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> HTMLResponse:
        return alert_page(who, decided)

    def alert_page(who: Viewer, decided: int | None = None, error: str | None = None,
                   status: int = 200) -> HTMLResponse:  # fmt: skip
        """The open and acknowledged alerts, largest exposure first; after a decision, the
        alert decided with who decided it and when; ``error`` after a refused decision."""
        with transaction(factory, write=False) as session:
            rows = [*alert_rows(session, who.reader, limit=ALERT_ROWS, status="open"),
                    *alert_rows(session, who.reader, limit=ALERT_ROWS, status="acknowledged")]
            last = None
            if decided is not None:
                try:
                    alert = visible_alert(session, who.reader, decided)
                except NotFoundError:
                    raise PageRefused(404, f"alert: no alert {decided}") from None
                last = {"id": alert.id, "type": alert.type, "status": alert.status,
                        "by": alert.status_by, "at": alert.status_at}  # fmt: skip
        rows.sort(key=lambda a: (-a["exposure_fen"], a["id"]))
        return page("alerts.html", who, status=status, alerts=rows, decided=last, error=error,
                    may_decide=may(who, "POST", "/console/alerts/{alert_id}/decision"),
                    decisions=ALERT_DECISIONS)  # fmt: skip

    @router.post("/console/alerts/{alert_id}/decision")
    async def alert_decision(alert_id: Id, request: Request, who: Signed) -> Response:
        """Acknowledge, resolve or mark an alert a false positive (who and when are kept on
        the alert and in the ledger)."""
        fields = await form_of(request)
        try:
            with transaction(factory) as session:
                try:
                    visible_alert(session, who.reader, alert_id)
                except NotFoundError:
                    raise PageRefused(404, f"alert: no alert {alert_id}") from None
                decision = fields.get("decision", "")
                if decision not in ALERT_DECISIONS:
                    raise LienwatchError(f"decision: choose one of {', '.join(ALERT_DECISIONS)}")
                decide_alert(session, alert_id=alert_id, decision=decision, by=who.username,
                             at=clock.now(), why=fields.get("why", "")[:500])  # fmt: skip
        except ConflictError as exc:  # decided already
            return alert_page(who, error=str(exc), status=409)
        except LienwatchError as exc:
            return alert_page(who, error=str(exc), status=400)
        raise Redirect(f"/console/alerts?decided={alert_id}")

    @router.get("/console/team", response_class=HTMLResponse)
    def team(who: Signed) -> HTMLResponse:
        return dashboard(who)

    def dashboard(who: Viewer, error: str | None = None, status: int = 200) -> HTMLResponse:
        """The supervisor's dashboard (a supervisor sees their team's), with ``error`` after
        a refused form."""
        now = clock.now()
        mine = who.principal.team if who.scope is Scope.TEAM else None
        with followup(write=False) as (session, service):
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
                "commands": service.pending_tracker_commands(viewer=who.reader, limit=LISTED),
                "repossessions": service.pending_repossessions(limit=LISTED),
            }  # fmt: skip
        return page("team.html", who, status=status, error=error, shown=LISTED, **context)

    def on_dashboard(who: Viewer, act: Callable[[Session, FollowupService], object]) -> Response:
        """Do ``act`` in one transaction and go back to the dashboard, or show it with why
        not (a refusal's record is committed by ``transaction()``)."""
        try:
            with followup() as (session, service):
                act(session, service)
        except FollowupRefused as exc:
            return dashboard(who, error=str(exc), status=409)
        except LienwatchError as exc:
            return dashboard(who, error=str(exc), status=400)
        raise Redirect("/console/team")

    @router.post("/console/cases/{case_id}/reassign")
    async def reassign(case_id: Id, request: Request, who: Signed) -> Response:
        """A supervisor gives a case of the team (and its queued tasks) to another agent,
        from the dashboard's queue (back to the dashboard) or from the case (back to it)."""
        fields = await form_of(request)
        to = fields.get("to", "")
        if fields.get("back") == "case":
            return on_case(who, case_id, "reassigned", lambda service, _: service.reassign_case(
                case_id=case_id, to=to, by=who.username, at=clock.now()))  # fmt: skip

        def act(session: Session, service: FollowupService) -> None:
            visible(session, who, case_id)
            service.reassign_case(case_id=case_id, to=to, by=who.username, at=clock.now())

        return on_dashboard(who, act)

    @router.post("/console/tracker-requests/{request_id}/approve")
    async def approve_tracker_request(request_id: Id, who: Signed) -> Response:
        """A supervisor approves a tracker command asked for by the team: it is sent."""
        return on_dashboard(who, lambda _, service: service.approve_tracker_command(
            request_id=request_id, by=who.username, at=clock.now()))

    @router.post("/console/tracker-requests/{request_id}/decline")
    async def decline_tracker_request(request_id: Id, request: Request,
                                      who: Signed) -> Response:  # fmt: skip
        """A supervisor declines a tracker command asked for by the team, saying why."""
        why = (await form_of(request)).get("why", "")[:500]
        return on_dashboard(who, lambda _, service: service.decline_tracker_command(
            request_id=request_id, by=who.username, at=clock.now(), why=why))

    @router.post("/console/repossessions/{repossession_id}/approve")
    async def approve_repossession(repossession_id: Id, request: Request,
                                   who: Signed) -> Response:  # fmt: skip
        """A supervisor (not the one who ordered it) approves a repossession order and
        assigns the recovery."""
        assignee = (await form_of(request)).get("assignee", "")

        def act(session: Session, service: FollowupService) -> None:
            repossessions = RepossessionService.from_settings(session, settings.repossession,
                                                              followup=service)  # fmt: skip
            repossessions.approve(repossession_id=repossession_id, by=who.username,
                                  assignee=assignee, at=clock.now())  # fmt: skip

        return on_dashboard(who, act)

    @router.get("/console/workforce", response_class=HTMLResponse)
    def workforce(who: Signed, days: int = 7) -> HTMLResponse:
        """The capacity forecast and plan (per pool, and per hour today) and the month's
        league to date: a supervisor sees their team's agents in the league."""
        now = clock.now()
        mine = who.principal.team if who.scope is Scope.TEAM else None
        try:
            with followup(write=False) as (session, service):
                plan = service_forecast(service, at=now, days=days, rules=capacity_rules(
                    settings.workforce.capacity_rules))  # fmt: skip
                league, end = month_league(
                    session, month=f"{now.astimezone(service.zone):%Y-%m}", at=now,
                    zone=service.zone, team=mine,
                    scheme=incentive_scheme(settings.workforce.incentives))  # fmt: skip
        except LienwatchError as exc:
            raise PageRefused(400, str(exc)) from None
        today = plan.horizon.start
        hours = sorted({h.starts for pool in plan.pools for h in pool.hours
                        if h.starts.date() == today})  # fmt: skip
        return page("workforce.html", who, plan=plan, league=league, league_to=end, days=days,
                    hours=hours, shown=LISTED,
                    by_hour={(pool.pool.label, h.starts): h for pool in plan.pools
                             for h in pool.hours})  # fmt: skip

    @router.get("/console/search", response_class=HTMLResponse)
    def search(who: Signed, q: str = "", by: str = "ref") -> HTMLResponse:
        rows: list[dict[str, Any]] | None = None
        error = None
        if q.strip():
            try:
                with transaction(factory) as session:  # a search by phone is audited
                    rows = find_loans(session, who.reader, q, by=by, at=clock.now(),
                                      client=who.caller.client)  # fmt: skip
            except LienwatchError as exc:
                error = str(exc)
        return page("search.html", who, q=q, by=by, rows=rows, error=error)

    @router.get("/console/reports", response_class=HTMLResponse)
    def reports(who: Signed, cursor: str | None = None) -> HTMLResponse:
        """The daily risk warning reports written below ``[report] out``, newest first, by
        pages as the API's list."""
        try:
            rows = list_reports(settings.report.out, before=day_cursor(cursor),
                                limit=PAGE_ROWS)  # fmt: skip
        except LienwatchError as exc:
            raise PageRefused(400, str(exc)) from None
        more = next_cursor(rows, PAGE_ROWS, lambda r: [r["day"].isoformat()])
        return page("reports.html", who, rows=rows, next_cursor=more)

    @router.get("/console/reports/{day}", response_class=HTMLResponse)
    def report(day: date, who: Signed) -> HTMLResponse:
        """A day's report.html as written: self-contained, printable."""
        try:
            return HTMLResponse(report_html(settings.report.out, day))
        except NotFoundError as exc:
            raise PageRefused(404, str(exc)) from None

    @router.get("/console/users", response_class=HTMLResponse)
    def users(who: Signed, cursor: str | None = None) -> HTMLResponse:
        return user_admin(who, cursor=cursor)

    def user_admin(who: Viewer, error: str | None = None, status: int = 200,
                   cursor: str | None = None) -> HTMLResponse:  # fmt: skip
        """The users (a supervisor: their team's) by username, by pages as the API's list;
        administrators add, disable and change the role of users here."""
        try:
            after = decode_cursor(cursor, 1)
        except LienwatchError as exc:
            raise PageRefused(400, str(exc)) from None
        with transaction(factory, write=False) as session:
            rows = list_users(session, team=who.principal.team,
                              only_team=who.scope is Scope.TEAM,
                              after=str(after[0]) if after else None, limit=PAGE_ROWS)  # fmt: skip
            teams = team_names(session)
        more = next_cursor(rows, PAGE_ROWS, lambda r: [r["username"]])
        return page("users.html", who, status=status, users=rows, teams=teams, roles=list(Role),
                    error=error, admin=may(who, "POST", "/console/users"),
                    next_cursor=more, first=cursor is None)  # fmt: skip

    @router.get("/console/alert-rules", response_class=HTMLResponse)
    def alert_rules(who: Signed) -> HTMLResponse:
        """The alert rules in force and every version published, with what each changed, and
        the ``[monitor]`` configuration's (as the API's ``GET /api/v1/alert-rules``)."""
        with transaction(factory, write=False) as session:
            rules = alert_rule_versions(session, settings.monitor, at=clock.now())
        configured = [(f"thresholds.{key}", value)
                      for key, value in rules["configured"]["thresholds"].items()]
        configured += [(f"products.{name}", value)
                       for name, value in rules["configured"]["products"].items()]
        return page("alert_rules.html", who, rules=rules, configured=configured)

    @router.get("/console/configuration", response_class=HTMLResponse)
    def configuration(who: Signed) -> HTMLResponse:
        """The effective configuration, secrets redacted (administrators)."""
        return page("configuration.html", who, rows=configuration_rows(settings))

    def on_users(who: Viewer, act: Callable[[Session], object]) -> Response:
        try:
            with transaction(factory) as session:
                act(session)
        except LienwatchError as exc:
            return user_admin(who, error=str(exc), status=400)
        raise Redirect("/console/users")

    @router.post("/console/users")
    async def add_user(request: Request, who: Signed) -> Response:
        """An administrator adds a user with a first password (the password rules of
        ``access.credentials``)."""
        fields = await form_of(request)

        def act(session: Session) -> None:
            create_user(
                session, settings.auth, username=fields.get("username", "").strip(),
                role=fields.get("role", ""), team=fields.get("team", "").strip() or None,
                display_name=fields.get("name", "").strip()[:200],
                password=fields.get("password", ""), by=who.username, at=clock.now(),
                client=client_address(request))  # fmt: skip

        return on_users(who, act)

    @router.post("/console/users/{username}/active")
    async def set_active(username: str, request: Request, who: Signed) -> Response:
        """An administrator disables a user (their sessions stop working) or enables one."""
        active = (await form_of(request)).get("active", "") == "yes"

        return on_users(who, lambda session: set_user_active(
            session, username=username, active=active, by=who.username, at=clock.now(),
            client=client_address(request)))

    @router.post("/console/users/{username}/role")
    async def set_role(username: str, request: Request, who: Signed) -> Response:
        """An administrator gives a user another role and team."""
        fields = await form_of(request)
        return on_users(who, lambda session: change_user_role(
            session, username=username, role=fields.get("role", ""),
            team=fields.get("team"), by=who.username, at=clock.now(),
            client=client_address(request)))

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
        try:
            amount = parse_yuan(fields["amount"], field="amount")
        except MoneyError as exc:  # the case page says so, as every error of the form
            raise LienwatchError(str(exc)) from None
    return task_id, promised_on, amount
