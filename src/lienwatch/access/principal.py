"""Who is calling: the signed-in user a token stands for."""

from __future__ import annotations

from dataclasses import dataclass

from lienwatch.access.policy import Scope
from lienwatch.followup.model import Role


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user as the policy and the read verbs see them."""

    username: str
    user_id: int
    role: Role
    team: str | None
    scopes: frozenset[str]
    token_kind: str  # login | session | api


@dataclass(frozen=True, slots=True)
class Viewer:
    """A principal through one route: the rows the route's rule gives their role."""

    principal: Principal
    scope: Scope

    @property
    def username(self) -> str:
        return self.principal.username

    @property
    def role(self) -> Role:
        return self.principal.role
