"""Masking of personal data as the roles that must not read it see it.

A phone keeps its first three and last four digits (``138****5678``), an ID number its first
four and last four characters (``3301**********1234``), a bank account its first six and last
four digits as on a card slip (``621234*********5678``), a person's name its first character
(the surname: ``张**``); anything too short to keep those is masked whole, so a masked value
never gives away more than those characters.
"""

from __future__ import annotations


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


def _mask(value: str, *, keep_head: int, keep_tail: int) -> str:
    text = value.strip()
    if len(text) <= keep_head + keep_tail:
        return "*" * len(text)
    hidden = len(text) - keep_head - keep_tail
    return text[:keep_head] + "*" * hidden + text[len(text) - keep_tail:]
