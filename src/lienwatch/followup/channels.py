"""Outbound channels. Every send takes a :class:`~lienwatch.followup.compliance.Permit` and
redeems it at the guard first, so nothing reaches a borrower without the guard's leave.

Providers deliver one message and return the provider's message id, or raise
:class:`DeliveryError`; :class:`Dispatcher` retries with exponential backoff and returns every
attempt, so a failure stays visible. No I/O here: the providers that talk to the world are
in :mod:`lienwatch.adapters.senders`, built from the configuration (and plugins) by
:mod:`lienwatch.adapters.providers`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from lienwatch.followup.compliance import ComplianceGuard, Permit
from lienwatch.followup.model import Channel, FollowupError


class DeliveryError(Exception):
    """A provider could not deliver a message (the dispatcher retries it)."""


class RejectedError(DeliveryError):
    """The receiver refused the message for good (e.g. HTTP 4xx): retrying cannot help."""


@dataclass(frozen=True, slots=True)
class Message:
    to: str  # phone number or e-mail address
    body: str
    idempotency_key: str  # the same key is delivered at most once by a provider
    subject: str = ""


class Provider(Protocol):
    def deliver(self, message: Message) -> str:
        """Deliver ``message``; return the provider's message id or raise DeliveryError."""
        ...


# Receivers may retry-able refuse with these besides 5xx: a timeout or "too many requests".


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    ok: bool
    detail: str  # the provider's message id, or the error


@dataclass(frozen=True, slots=True)
class Delivery:
    channel: Channel
    message: Message
    attempts: tuple[Attempt, ...]

    @property
    def delivered(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].ok

    @property
    def provider_id(self) -> str | None:
        return self.attempts[-1].detail if self.delivered else None


class Dispatcher:
    """Sends automatic messages through the provider of each channel, under the guard."""

    def __init__(
        self,
        guard: ComplianceGuard,
        providers: dict[Channel, Provider],
        *,
        retries: int = 3,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.guard = guard
        self.providers = providers
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep

    def send(self, permit: Permit, channel: Channel, message: Message) -> Delivery:
        """Redeem ``permit`` and deliver; retry failures ``retries`` times with doubling waits
        (a :class:`RejectedError` is final at once)."""
        self.guard.redeem(permit, channel)
        provider = self.providers.get(channel)
        if provider is None:
            raise FollowupError(f"channel: no provider configured for {channel.value}")
        attempts: list[Attempt] = []
        for number in range(1, self.retries + 2):
            try:
                attempts.append(Attempt(number, True, provider.deliver(message)))
                break
            except RejectedError as exc:
                attempts.append(Attempt(number, False, str(exc)))
                break
            except DeliveryError as exc:
                attempts.append(Attempt(number, False, str(exc)))
                if number <= self.retries:
                    self.sleep(self.backoff_s * 2 ** (number - 1))
        return Delivery(channel, message, tuple(attempts))
