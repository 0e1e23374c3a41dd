"""What every route of the API shares: the database, the settings, the policy's dependency,
one transaction per request, the pagination of lists."""

# No `from __future__ import annotations`: FastAPI reads the signatures at run time.
import base64
import binascii
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query
from sqlalchemy.orm import Session, sessionmaker

from lienwatch.api.auth import Caller, TokenCache, authorizer
from lienwatch.api.errors import ErrorBody
from lienwatch.config import Settings
from lienwatch.errors import LienwatchError
from lienwatch.services.followup import FollowupService
from lienwatch.servicing.catalogue import ProductCatalogue
from lienwatch.store.db import transaction

T = TypeVar("T")

#: Longest page of a list.
MAX_LIMIT = 500


@dataclass(frozen=True)
class ApiContext:
    """The database and settings of the API's routes."""

    factory: sessionmaker[Session]
    settings: Settings

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokens", TokenCache())
        object.__setattr__(self, "authorize", authorizer(self.factory, self.tokens))

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """One transaction for the request (a Refused is committed with its record);
        ``write=False`` for a request that only reads (:func:`transaction`)."""
        with transaction(self.factory, write=write) as session:
            yield session

    def followup(self, session: Session) -> FollowupService:
        """The follow-up service as configured, on ``session``."""
        return FollowupService.from_settings(
            session, self.settings.followup, time_zone=self.settings.time_zone,
            catalogue=self.catalogue,
        )  # fmt: skip

    @cached_property
    def catalogue(self) -> ProductCatalogue:
        return ProductCatalogue.from_tables(self.settings.products)

    @property
    def caller(self) -> Any:
        """The dependency a route takes its :class:`Caller` from."""
        return Annotated[Caller, Depends(self.authorize)]


def encode_cursor(key: list[Any]) -> str:
    """An opaque cursor for the row after which the next page starts."""
    return base64.urlsafe_b64encode(json.dumps(key, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    """The key a cursor carries (None without one); a forged or foreign cursor is a 422."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        key = None
    if not isinstance(key, list) or len(key) != arity or not all(
        isinstance(part, int | str) and not isinstance(part, bool) for part in key
    ):
        raise LienwatchError("cursor: not a cursor this list handed out")
    return key


def next_cursor(rows: Sequence[T], limit: int, key: Callable[[T], list[Any]]) -> str | None:
    """The cursor of the page after ``rows``: the ``key`` of its last row when the page is
    full (``limit`` rows), None after the last page. Every paged list answers with it."""
    return encode_cursor(key(rows[-1])) if rows and len(rows) == limit else None


def time_key(at: datetime | date, row: int | str) -> list[Any]:
    """The key of a row of a list ordered by (time or day, row id), for :func:`next_cursor`
    (:func:`decode_time_cursor` reads it back)."""
    return [at.isoformat(), row]


def decode_time_cursor(
    cursor: str | None, *, day: bool = False, row: type[int] | type[str] = int
) -> tuple[Any, Any] | None:
    """The (time, or ``day``, and row id) a :func:`time_key` cursor carries (None without one);
    a forged or foreign cursor is a 422."""
    key = decode_cursor(cursor, 2)
    if key is None:
        return None
    moment: datetime | date | None = None
    if isinstance(key[0], str) and isinstance(key[1], row):
        try:
            moment = date.fromisoformat(key[0]) if day else datetime.fromisoformat(key[0])
        except ValueError:
            moment = None
    if moment is None or (not day and moment.tzinfo is None):  # type: ignore[union-attr]
        raise LienwatchError("cursor: not a cursor this list handed out")
    return moment, key[1]


def day_cursor(cursor: str | None) -> date | None:
    """The day a page of a list by day (newest first) ends at, from the cursor that page
    handed out; a forged or foreign cursor is a 422."""
    key = decode_cursor(cursor, 1)
    if key is None:
        return None
    try:
        return date.fromisoformat(str(key[0]))
    except ValueError:
        raise LienwatchError("cursor: not a cursor this list handed out") from None


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page.")]
Cursor = Annotated[
    str | None, Query(max_length=400, description="`next_cursor` of the previous page.")
]

#: The error answers a user route documents (each in the one error body).
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422)
}
#: Path parameters: a row's id, a loan's (or borrower's) reference.
Id = Annotated[int, Path(ge=1, le=2**62)]
Ref = Annotated[str, Path(min_length=1, max_length=40)]
