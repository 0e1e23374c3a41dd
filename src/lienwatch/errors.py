"""The one exception type the CLI and API turn into a one-line message."""

from __future__ import annotations

from datetime import datetime


class LienwatchError(Exception):
    """An error a user can fix: bad input, bad configuration, an unreachable database.

    The message names what is wrong (the field, the key, the file and line) in one line.
    """


class Refused(LienwatchError):
    """An act a rule refused (a contact outside the compliance rules, an unapproved tracker
    command). The refusal is a record the lender must keep: the service has written it to
    the session, and nothing else of the act, before raising, and
    :func:`lienwatch.store.db.transaction` commits it before the error goes on up.

    ``rule`` names the rule that refused and ``next_allowed_at`` (ISO 8601) when the act
    would be allowed, when the rule says (the API's 409 carries both)."""

    def __init__(
        self, message: str, *, rule: str | None = None, next_allowed_at: str | None = None
    ) -> None:
        super().__init__(message)
        self.rule = rule
        self.next_allowed_at = next_allowed_at

    @property
    def extra(self) -> dict[str, str | None]:
        return {"rule": self.rule, "next_allowed_at": self.next_allowed_at}


class NotFoundError(LienwatchError):
    """A reference to something that does not exist (a loan, a task, a user); the API
    answers 404."""


class ConflictError(LienwatchError):
    """A write that contradicts what is stored (a reused idempotency key, a taken slot); the
    API answers 409."""


class DatabaseBusy(LienwatchError):
    """The database stayed locked by another connection's write for longer than the busy
    timeout: nothing was changed, the act can be tried again; the API answers 503."""


class NotAuthenticated(LienwatchError):
    """No valid credentials: a missing, unknown, expired or revoked token, a wrong password,
    a locked or disabled account; the API answers 401."""


class Forbidden(LienwatchError):
    """A signed-in user asking for what their role or their rows do not reach; the API
    answers 403."""


class LoginRefused(Refused, NotAuthenticated):
    """A failed login: the failure (counted towards the lockout, and in the audit log) is
    committed by ``transaction()`` before the error goes up; the API answers 401.

    ``reason`` says why as a code, for the console's words in the user's language:
    ``wrong_password`` (or an unknown user), ``locked`` (until ``until``), ``disabled``."""

    def __init__(self, message: str, *, reason: str, until: datetime | None = None) -> None:
        super().__init__(message)
        self.reason, self.until = reason, until
