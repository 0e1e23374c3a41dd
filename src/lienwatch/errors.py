"""The one exception type the CLI and API turn into a one-line message."""


class LienwatchError(Exception):
    """An error a user can fix: bad input, bad configuration, an unreachable database.

    The message names what is wrong (the field, the key, the file and line) in one line.
    """


class Refused(LienwatchError):
    """An act a rule refused (a contact outside the compliance rules, an unapproved tracker
    command). The refusal is a record the lender must keep: the service has written it to
    the session, and nothing else of the act, before raising, and
    :func:`lienwatch.store.db.transaction` commits it before the error goes on up."""


class NotFoundError(LienwatchError):
    """A reference to something that does not exist (a loan, a task, a user); the API
    answers 404."""


class ConflictError(LienwatchError):
    """A write that contradicts what is stored (a reused idempotency key, a taken slot); the
    API answers 409."""
