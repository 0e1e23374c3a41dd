"""What a due step does, as rules on values: the next step of a ladder, the channel and
address a message goes to, its text and its idempotency key. No database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lienwatch.followup.model import Channel, TriggerKind
from lienwatch.followup.strategy import LadderSpec, StepSpec


@dataclass(frozen=True, slots=True)
class NextStep:
    """Where a trigger goes once its current step is done: step ``index`` falls due at
    ``due`` (before the borrower's contact hours are applied)."""

    index: int
    step: StepSpec
    due: datetime


def next_step(
    ladder: LadderSpec, *, done: int, anchor_at: datetime, at: datetime, repeats: bool
) -> NextStep | None:
    """After step ``done`` of ``ladder`` was done at ``at``: the next step at its offset from
    the anchor (never before ``at``), or the last step again ``repeat_every`` later on a
    ladder that repeats; None when the ladder is finished (the trigger is resolved)."""
    if done + 1 < len(ladder.steps):
        step = ladder.steps[done + 1]
        return NextStep(done + 1, step, max(anchor_at + step.offset, at))
    if repeats:
        return NextStep(done, ladder.steps[done], at + ladder.repeat_every)
    return None


def delivery_route(
    channel: Channel, *, phone: str, email: str | None, address: str
) -> tuple[Channel, str]:
    """The channel and address a step's message goes to: e-mail falls back to a text when
    no address is on file, a letter goes to the postal address, the rest to the phone."""
    if channel is Channel.EMAIL:
        return (Channel.EMAIL, email) if email else (Channel.SMS, phone)
    if channel is Channel.LETTER:
        return channel, address
    return channel, phone


def message_text(kind: TriggerKind | str, loan_ref: str) -> str:
    """The message body: the loan reference and a call-back request, never an amount (the
    phone on file may not be the debtor's)."""
    if kind == TriggerKind.PRE_DUE:
        return f"Reminder: an installment of loan {loan_ref} falls due soon."
    return f"Please contact us about loan {loan_ref}."


def step_key(trigger_id: int, step: int, due_at: datetime) -> str:
    """The idempotency key of an automatic step: a step is sent once, whoever runs it."""
    return f"step:{trigger_id}:{step}:{due_at:%Y%m%dT%H%M}"
