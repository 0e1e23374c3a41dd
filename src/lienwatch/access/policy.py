"""The route policy as data: for every route of the application (API and console), who may
call it and on which rows.

Roles are the stored names of :class:`~lienwatch.followup.model.Role`; the issue's names map
onto them: ``agent`` is the collector, ``analyst`` the risk analyst. A rule gives each role
allowed a :class:`Scope`: ``all`` rows, its ``own`` (an agent: the cases assigned to them and
their loans), or its ``team``'s (a supervisor: the cases assigned to the team's agents). A
role absent from a rule is forbidden (403). ``PUBLIC`` routes need no user (the login, the
health check, the API's documentation); ``PARTNER`` routes are called by integrations with
their own token (HTTP ingest). A route missing from :data:`POLICY` is refused to everybody
and fails the test that enumerates the application's routes.

Token scopes: a login or console session carries ``read`` and ``write``; an API token for an
integration carries those it was issued with. A ``GET`` needs ``read``, anything else
``write``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from lienwatch.followup.model import Role


class Scope(StrEnum):
    """Which rows a role reaches through a route."""

    ALL = "all"
    OWN = "own"  # an agent's: cases assigned to them, their loans, alerts and tasks
    TEAM = "team"  # a supervisor's: the cases of their team's agents


class Access(StrEnum):
    """Who calls a route: anyone, a partner integration, or a signed-in user."""

    PUBLIC = "public"
    PARTNER = "partner"
    USER = "user"


class TokenScope(StrEnum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may call a route (:class:`Access`) and, for users, each allowed role's scope."""

    access: Access = Access.USER
    roles: Mapping[Role, Scope] = field(default_factory=dict)

    def scope_of(self, role: Role | str) -> Scope | None:
        """The rows ``role`` reaches through the route; None: forbidden."""
        try:
            return self.roles.get(Role(role))
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer for one request: allowed with a scope, or why not."""

    scope: Scope | None
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.scope is not None


class Publication(StrEnum):
    """Rules published as data, versioned (``lienwatch.services.published``)."""

    STRATEGY = "strategy"
    ALERT_RULES = "alert_rules"
    INCENTIVE_SCHEME = "incentive_scheme"
    MODEL = "model"  # the application scorecard, the behaviour score


PUBLIC = Rule(Access.PUBLIC)
PARTNER = Rule(Access.PARTNER)

A, S, N, U, D = Role.AGENT, Role.SUPERVISOR, Role.ANALYST, Role.AUDITOR, Role.ADMIN
ALL, OWN, TEAM = Scope.ALL, Scope.OWN, Scope.TEAM


def users(roles: Mapping[Role, Scope]) -> Rule:
    return Rule(Access.USER, dict(roles))


#: Who publishes each kind of rules: analysts publish strategies, alert rules and models
#: (issue 14's role table); the incentive scheme is configuration too, so administrators
#: publish it as well.
PUBLISHERS: dict[Publication, frozenset[Role]] = {
    Publication.STRATEGY: frozenset({N}),
    Publication.ALERT_RULES: frozenset({N}),
    Publication.MODEL: frozenset({N}),
    Publication.INCENTIVE_SCHEME: frozenset({N, D}),
}


def may_publish(role: Role | str, what: Publication) -> bool:
    """Whether ``role`` may publish a new version of ``what`` (every caller's check: the
    route policy's publishing routes and the service verbs the CLI calls)."""
    return role in PUBLISHERS[what]


def publishing(what: Publication) -> Rule:
    """The rule of a route publishing ``what``: its publishers, on every row."""
    return users({role: ALL for role in PUBLISHERS[what]})


#: Every signed-in role, on its own rows.
ANY_USER = users({A: ALL, S: ALL, N: ALL, U: ALL, D: ALL})
#: Reading a case and what hangs on it: agents their own, supervisors their team's, analysts
#: and auditors everything (auditors masked), administrators nothing (no personal data).
CASE_READ = users({A: OWN, S: TEAM, N: ALL, U: ALL})
#: Acting on a case (an outcome, an alert decision): agents their own, supervisors their team's.
CASE_ACT = users({A: OWN, S: TEAM})
#: The book's figures: supervisors, analysts and auditors.
FIGURES = users({S: ALL, N: ALL, U: ALL})
#: The fleet and the book without a case: supervisors, analysts, auditors.
BOOK_READ = users({A: OWN, S: ALL, N: ALL, U: ALL})

V1 = "/api/v1"

#: (method, path template) -> rule, for every route of the application.
POLICY: dict[tuple[str, str], Rule] = {
    # the process and its documentation
    ("GET", f"{V1}/health"): PUBLIC,
    ("GET", f"{V1}/openapi.json"): PUBLIC,
    ("GET", f"{V1}/docs"): PUBLIC,
    ("GET", f"{V1}/docs/assets/{{name}}"): PUBLIC,
    # HTTP ingest: partners' tokens ([gateway] partners)
    ("GET", f"{V1}/ingest/osmand"): PARTNER,
    ("POST", f"{V1}/ingest/osmand"): PARTNER,
    ("POST", f"{V1}/ingest/positions"): PARTNER,
    # signing in
    ("POST", f"{V1}/auth/login"): PUBLIC,
    ("POST", f"{V1}/auth/logout"): ANY_USER,
    ("GET", f"{V1}/auth/me"): ANY_USER,
    # users and the audit log
    ("GET", f"{V1}/users"): users({S: TEAM, D: ALL}),
    ("POST", f"{V1}/users"): users({D: ALL}),
    ("POST", f"{V1}/users/{{username}}/role"): users({D: ALL}),
    ("POST", f"{V1}/users/{{username}}/disable"): users({D: ALL}),
    ("POST", f"{V1}/users/{{username}}/enable"): users({D: ALL}),
    ("GET", f"{V1}/configuration"): users({D: ALL}),
    ("GET", f"{V1}/audit"): users({U: ALL}),
    # integrations' API tokens: administrators all, everyone else their own
    ("GET", f"{V1}/tokens"): users({A: OWN, S: OWN, N: OWN, U: OWN, D: ALL}),
    ("POST", f"{V1}/tokens/{{token_id}}/revoke"): users({A: OWN, S: OWN, N: OWN, U: OWN, D: ALL}),
    # queues, cases, tasks
    ("GET", f"{V1}/queue"): users({A: OWN, S: OWN}),
    ("GET", f"{V1}/queue/team"): users({S: TEAM, N: ALL}),
    ("GET", f"{V1}/cases/{{case_id}}"): CASE_READ,
    ("GET", f"{V1}/cases/{{case_id}}/timeline"): CASE_READ,
    ("POST", f"{V1}/tasks/{{task_id}}/outcome"): CASE_ACT,
    ("POST", f"{V1}/cases/{{case_id}}/reassign"): users({S: TEAM}),
    ("POST", f"{V1}/cases/{{case_id}}/escalate"): users({S: TEAM}),
    # the book
    ("GET", f"{V1}/loans"): CASE_READ,
    ("GET", f"{V1}/loans/{{ref}}"): CASE_READ,
    ("GET", f"{V1}/loans/{{ref}}/schedule"): CASE_READ,
    ("GET", f"{V1}/loans/{{ref}}/state"): CASE_READ,
    ("GET", f"{V1}/loans/{{ref}}/payments"): CASE_READ,
    ("POST", f"{V1}/loans/{{ref}}/payments"): users({S: ALL}),
    ("POST", f"{V1}/payments/{{external_id}}/reverse"): users({S: ALL}),
    ("GET", f"{V1}/search/loans"): BOOK_READ,
    ("GET", f"{V1}/borrowers/{{ref}}"): CASE_READ,
    ("GET", f"{V1}/vehicles/{{vin}}"): CASE_READ,
    ("GET", f"{V1}/vehicles/{{vin}}/positions"): CASE_READ,
    ("GET", f"{V1}/devices"): users({S: ALL, N: ALL, U: ALL}),
    # collateral alerts
    ("GET", f"{V1}/alerts"): CASE_READ,
    ("POST", f"{V1}/alerts/{{alert_id}}/decision"): users({A: OWN, S: TEAM, N: ALL}),
    # the pre-loan decision on applications: credit (analysts) and supervisors
    ("POST", f"{V1}/applications"): users({S: ALL, N: ALL}),
    # tracker commands: an agent's request is refused and recorded; a supervisor's is approved
    ("POST", f"{V1}/loans/{{ref}}/tracker-commands"): users({A: OWN, S: TEAM}),
    # a request any agent may make on their own case, answered by a supervisor of the team
    ("POST", f"{V1}/loans/{{ref}}/tracker-command-requests"): users({A: OWN, S: TEAM}),
    ("GET", f"{V1}/tracker-command-requests"): users({S: TEAM, N: ALL, U: ALL}),
    ("POST", f"{V1}/tracker-command-requests/{{request_id}}/approve"): users({S: TEAM}),
    ("POST", f"{V1}/tracker-command-requests/{{request_id}}/decline"): users({S: TEAM}),
    # repossessions: ordered by a supervisor of the team, approved by another supervisor
    ("POST", f"{V1}/loans/{{ref}}/repossessions"): users({S: TEAM}),
    ("GET", f"{V1}/repossessions"): users({S: ALL, N: ALL, U: ALL}),
    ("GET", f"{V1}/repossessions/{{repossession_id}}"): users({S: ALL, N: ALL, U: ALL}),
    ("GET", f"{V1}/repossessions/{{repossession_id}}/steps"): users({S: ALL, N: ALL, U: ALL}),
    ("POST", f"{V1}/repossessions/{{repossession_id}}/approve"): users({S: ALL}),
    ("POST", f"{V1}/repossessions/{{repossession_id}}/recovery"): users({S: ALL}),
    # strategies, coverage, KPIs
    ("GET", f"{V1}/strategy"): FIGURES,
    ("POST", f"{V1}/strategy"): publishing(Publication.STRATEGY),
    # the monitor's alert rules: analysts publish a version; those who read figures and the
    # administrators (configuration) read them
    ("GET", f"{V1}/alert-rules"): users({S: ALL, N: ALL, U: ALL, D: ALL}),
    ("POST", f"{V1}/alert-rules"): publishing(Publication.ALERT_RULES),
    # models: the behaviour score's fits and the one in force, the scorecard in force;
    # analysts fit and publish
    ("GET", f"{V1}/models/behaviour"): FIGURES,
    ("POST", f"{V1}/models/behaviour"): publishing(Publication.MODEL),
    ("GET", f"{V1}/models/behaviour/fits"): FIGURES,
    ("POST", f"{V1}/models/behaviour/fits"): publishing(Publication.MODEL),
    ("GET", f"{V1}/models/scorecard"): FIGURES,
    ("POST", f"{V1}/models/scorecard"): publishing(Publication.MODEL),
    ("GET", f"{V1}/coverage"): FIGURES,
    ("GET", f"{V1}/kpis"): FIGURES,
    # the daily risk warning reports written ([report] out): no personal data in them
    ("GET", f"{V1}/reports"): FIGURES,
    ("GET", f"{V1}/reports/{{day}}"): FIGURES,
    ("GET", f"{V1}/reports/{{day}}/html"): FIGURES,
    # the tamper-evident ledger: auditors
    ("GET", f"{V1}/ledger/head"): users({U: ALL}),
    ("GET", f"{V1}/ledger/entries"): users({U: ALL}),
    ("GET", f"{V1}/ledger/proofs/{{leaf_index}}"): users({U: ALL}),
    # the web console (lienwatch.web): the same roles as the API's routes behind each page
    ("GET", "/"): PUBLIC,
    ("GET", "/console/login"): PUBLIC,
    ("POST", "/console/login"): PUBLIC,
    ("POST", "/console/language"): PUBLIC,
    ("GET", "/console/static/{name:path}"): PUBLIC,
    ("POST", "/console/logout"): ANY_USER,
    ("GET", "/console/"): ANY_USER,
    ("GET", "/console/queue"): users({A: OWN}),
    ("GET", "/console/cases/{case_id}"): CASE_READ,
    ("POST", "/console/cases/{case_id}/outcome"): CASE_ACT,
    ("POST", "/console/cases/{case_id}/reveal"): users({S: TEAM, N: ALL}),
    ("POST", "/console/cases/{case_id}/tracker-request"): users({A: OWN, S: TEAM}),
    ("POST", "/console/cases/{case_id}/reassign"): users({S: TEAM}),
    ("POST", "/console/cases/{case_id}/escalate"): users({S: TEAM}),
    ("GET", "/console/alerts"): CASE_READ,
    ("POST", "/console/alerts/{alert_id}/decision"): users({A: OWN, S: TEAM, N: ALL}),
    ("GET", "/console/team"): users({S: TEAM, N: ALL, U: ALL}),
    ("POST", "/console/tracker-requests/{request_id}/approve"): users({S: TEAM}),
    ("POST", "/console/tracker-requests/{request_id}/decline"): users({S: TEAM}),
    ("POST", "/console/repossessions/{repossession_id}/approve"): users({S: ALL}),
    ("GET", "/console/workforce"): users({S: TEAM, N: ALL}),
    ("GET", "/console/search"): BOOK_READ,
    ("GET", "/console/reports"): FIGURES,
    ("GET", "/console/reports/{day}"): FIGURES,
    ("GET", "/console/alert-rules"): users({S: ALL, N: ALL, U: ALL, D: ALL}),
    ("GET", "/console/users"): users({S: TEAM, D: ALL}),
    ("POST", "/console/users"): users({D: ALL}),
    ("POST", "/console/users/{username}/active"): users({D: ALL}),
    ("POST", "/console/users/{username}/role"): users({D: ALL}),
    ("GET", "/console/configuration"): users({D: ALL}),
}


def decide(
    method: str, path: str, role: Role | str, token_scopes: frozenset[str] | set[str]
) -> Decision:
    """Whether a user of ``role`` holding a token with ``token_scopes`` may call ``method
    path`` (a route's template), and on which rows."""
    rule = POLICY.get((method.upper(), path))
    if rule is None:
        return Decision(None, f"{method} {path} has no rule in the route policy")
    if rule.access is not Access.USER:
        return Decision(Scope.ALL)
    needed = TokenScope.READ if method.upper() in {"GET", "HEAD"} else TokenScope.WRITE
    if needed.value not in token_scopes:
        return Decision(None, f"token: this token has no {needed.value} scope")
    scope = rule.scope_of(role)
    if scope is None:
        return Decision(None, f"role: the {Role(role).value} role may not {method} {path}")
    return Decision(scope)


def may_see_personal_data(role: Role | str) -> bool:
    """Whether ``role`` may ask for unmasked phone and ID numbers (each view audited):
    supervisors and analysts; agents call through the system, auditors and administrators
    see masked or nothing."""
    return role in (Role.SUPERVISOR, Role.ANALYST)
