"""Masking of personal data as the roles that must not read it see it.

A phone keeps its first three and last four digits (``138****5678``), an ID number its first
four and last four characters (``3301**********1234``), a bank account its first six and last
four digits as on a card slip (``621234*********5678``), a person's name its first character
(the surname: ``张**``); anything too short to keep those is masked whole, so a masked value
never gives away more than those characters. Who paid a payment is personal data too: an
alert's evidence naming payments shows it masked (:func:`mask_evidence`).
"""

from __future__ import annotations

from typing import Any


def mask_phone(phone: str) -> str:
    """``13812345678`` -> ``138****5678``; shorter than 8 characters: all stars."""
    return _mask(phone, keep_head=3, keep_tail=4)


def mask_id_number(id_number: str) -> str:
    """``330102199001011234`` -> ``3301**********1234``; shorter than 9: all stars."""
    return _mask(id_number, keep_head=4, keep_tail=4)


def mask_account(account: str) -> str:
    """``6212345678901235678`` -> ``621234*********5678``; shorter than 11: all stars."""
    return _mask(account, keep_head=6, keep_tail=4)


def mask_name(name: str) -> str:
    """``张三丰`` -> ``张**``; a single character: ``*``."""
    return _mask(name, keep_head=1, keep_tail=0)


def mask_payer(payer_account: str | None, payer_name: str | None) -> tuple[str | None, str | None]:
    """Who paid (a bank account and a name, often a third party's), masked; absent stays
    absent."""
    return (None if payer_account is None else mask_account(payer_account),
            None if payer_name is None else mask_name(payer_name))  # fmt: skip


def mask_evidence(evidence: dict[str, Any]) -> dict[str, Any]:
    """An alert's evidence with who paid masked in each payment it names (a
    ``payment_anomaly``'s); other evidence holds no personal data and is returned as is."""
    payments = evidence.get("payments")
    if not payments:
        return evidence
    return {**evidence, "payments": [_masked_payment(p) for p in payments]}


def _masked_payment(payment: dict[str, Any]) -> dict[str, Any]:
    if "payer_account" not in payment and "payer_name" not in payment:
        return payment
    account, name = mask_payer(payment.get("payer_account"), payment.get("payer_name"))
    return {**payment, "payer_account": account, "payer_name": name}


def _mask(value: str, *, keep_head: int, keep_tail: int) -> str:
    text = value.strip()
    if len(text) <= keep_head + keep_tail:
        return "*" * len(text)
    hidden = len(text) - keep_head - keep_tail
    return text[:keep_head] + "*" * hidden + text[len(text) - keep_tail:]
