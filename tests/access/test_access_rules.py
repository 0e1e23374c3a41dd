"""The access rules without a database: masking, passwords, tokens, CSRF, lockout, policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lienwatch.access.credentials import (
    check_csrf,
    check_password_strength,
    csrf_token,
    hash_password,
    locked_until,
    new_token,
    token_digest,
    verify_password,
)
from lienwatch.access.masking import mask_account, mask_id_number, mask_name, mask_phone
from lienwatch.access.policy import POLICY, Access, Scope, decide, may_see_personal_data
from lienwatch.errors import LienwatchError
from lienwatch.followup.model import Role

AT = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
BOTH = frozenset({"read", "write"})


def test_phones_and_id_numbers_are_masked_as_the_issue_shows():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_id_number("330102199001011234") == "3301**********1234"
    assert mask_phone("1234567") == "*******"  # too short to keep 3 + 4: nothing kept
    assert mask_id_number(" 91330100MA27XXXX1X ") == "9133**********XX1X"


def test_payer_accounts_and_names_keep_a_card_slips_digits_and_the_surname():
    assert mask_account("6212345678901235678") == "621234*********5678"
    assert mask_account("6212345678") == "**********"  # too short to keep 6 + 4
    assert (mask_name("张三丰"), mask_name("王"), mask_name("车贷服务部001")) == (
        "张**", "*", "车*******")


def test_passwords_are_argon2id_and_verified_in_constant_shape():
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "correct horse batterY")
    assert not verify_password(None, "anything at all")  # no user: a dummy hash is verified
    assert not verify_password("not a hash", "anything at all")
    with pytest.raises(LienwatchError, match="password: must be 10-1024 characters"):
        check_password_strength("short")
    with pytest.raises(LienwatchError, match="not only spaces"):
        check_password_strength(" " * 12)


def test_tokens_are_random_and_stored_as_their_digest():
    one, two = new_token(), new_token()
    assert one != two and one.startswith("lw_") and len(one) > 40
    assert token_digest(one) != one and len(token_digest(one)) == 64


def test_the_csrf_token_belongs_to_its_session():
    session, other = new_token(), new_token()
    assert check_csrf(session, csrf_token(session))
    assert not check_csrf(session, csrf_token(other))
    assert not check_csrf(session, None) and not check_csrf(session, "")


def test_an_account_locks_after_the_failures_allowed_for_the_lockout():
    rule = {"max_failures": 5, "lockout": timedelta(minutes=15)}
    assert locked_until(4, AT, **rule) is None
    assert locked_until(5, AT, **rule) == AT + timedelta(minutes=15)


def test_the_policy_gives_each_role_its_rows():
    case = "/api/v1/cases/{case_id}"
    assert decide("GET", case, Role.AGENT, BOTH).scope is Scope.OWN
    assert decide("GET", case, Role.SUPERVISOR, BOTH).scope is Scope.TEAM
    assert decide("GET", case, Role.ANALYST, BOTH).scope is Scope.ALL
    refused = decide("GET", case, Role.ADMIN, BOTH)
    assert not refused.allowed and refused.reason.startswith("role: the admin role may not")
    outcome = "/api/v1/tasks/{task_id}/outcome"
    assert not decide("POST", outcome, Role.ANALYST, BOTH).allowed  # no contact actions
    read_only = decide("POST", outcome, Role.AGENT, frozenset({"read"}))
    assert read_only.reason == "token: this token has no write scope"
    assert not decide("GET", "/api/v1/nowhere", Role.ADMIN, BOTH).allowed


def test_every_rule_is_for_the_api_or_public_and_roles_are_real():
    for (method, path), rule in POLICY.items():
        assert method in {"GET", "POST", "PUT", "PATCH", "DELETE"} and path.startswith("/")
        if rule.access is Access.USER:
            assert rule.roles and set(rule.roles) <= set(Role)
    assert may_see_personal_data(Role.SUPERVISOR) and not may_see_personal_data(Role.AUDITOR)
