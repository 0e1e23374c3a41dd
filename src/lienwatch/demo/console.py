"""The demo's console accounts: the users the follow-up demo staffed (``collector1``…,
``supervisor1``) and an administrator, an analyst and an auditor, all with one password, so
that the console can be opened on the demo's database right away (docs/console.md)."""

from __future__ import annotations

import os
import secrets
from datetime import datetime

from lienwatch.services.auth import AuthService
from lienwatch.services.users import list_users
from lienwatch.store.db import make_engine, session_factory, transaction
from lienwatch.store.repositories import UserRepository

#: Set it to choose the demo accounts' password; otherwise a random one is printed once.
PASSWORD_VARIABLE = "LIENWATCH_DEMO_PASSWORD"
#: The accounts the demo adds beside its staff: (username, role).
OFFICE = (("admin", "admin"), ("analyst1", "analyst"), ("auditor1", "auditor"))


def demo_password() -> str:
    """``LIENWATCH_DEMO_PASSWORD``, or a new random password."""
    return os.environ.get(PASSWORD_VARIABLE) or secrets.token_urlsafe(12)


def open_console_accounts(database_url: str, password: str, *, at: datetime) -> list[str]:
    """Add the office's accounts to the demo's database and give ``password`` to them and to
    the staff the demo hired (``collector…``, ``supervisor1``, who own the open cases: see
    ``demo/followup.py``); the accounts' usernames, sorted."""
    engine = make_engine(database_url)
    try:
        with transaction(session_factory(engine)) as session:
            users = UserRepository(session)
            present = {u["username"] for u in list_users(session)}
            for username, role in OFFICE:
                if username not in present:
                    users.add(username=username, role=role, team=None)
            names = sorted(u["username"] for u in list_users(session)
                           if u["username"].startswith(("collector", "supervisor"))
                           or u["username"] in dict(OFFICE))  # fmt: skip
            auth = AuthService(session)
            for username in names:
                auth.set_password(username=username, password=password, by="demo", at=at)

    finally:
        engine.dispose()
    return names
