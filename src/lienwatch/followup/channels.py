"""Outbound channels. Every send takes a :class:`~lienwatch.followup.compliance.Permit` and
redeems it at the guard first, so nothing reaches a borrower without the guard's leave.

Providers deliver one message and return the provider's message id, or raise
:class:`DeliveryError`; :class:`Dispatcher` retries with exponential backoff and returns every
attempt, so a failure stays visible. Built-in providers: ``log`` (a Python logger; the
automated dialer's stand-in), ``smtp`` (real SMTP) and :class:`LocalSmsGateway`, the local
stand-in for a paid SMS cloud.
"""

from __future__ import annotations

import logging
import re
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

from lienwatch.followup.compliance import ComplianceGuard, Permit
from lienwatch.followup.model import Channel, FollowupError

_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]")


class DeliveryError(Exception):
    """A provider could not deliver a message (the dispatcher retries it)."""


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


class LogProvider:
    """Writes the message to a logger: the stand-in for the automated voice dialer."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("lienwatch.followup.outbound")

    def deliver(self, message: Message) -> str:
        self.logger.info("to %s: %s", message.to, message.body)
        return f"log:{message.idempotency_key}"


@dataclass
class LocalSmsGateway:
    """The local stand-in for a paid SMS cloud: keeps what it was sent, once per key.

    ``fail_first`` makes the first deliveries fail, as a flaky gateway would.
    """

    fail_first: int = 0
    sent: dict[str, Message] = field(default_factory=dict)
    calls: int = 0

    def deliver(self, message: Message) -> str:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise DeliveryError("gateway unavailable")
        self.sent.setdefault(message.idempotency_key, message)
        return f"sms:{message.idempotency_key}"


@dataclass(frozen=True, slots=True)
class SmtpProvider:
    """E-mail over SMTP; the Message-ID is derived from the idempotency key, which also
    travels as ``X-Idempotency-Key``."""

    host: str
    port: int
    sender: str
    timeout_s: float = 10.0

    def deliver(self, message: Message) -> str:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.to
        email["Subject"] = message.subject
        # A Message-ID derived from the key lets the receiving side drop a retried duplicate.
        email["Message-ID"] = f"<{_MSGID_UNSAFE.sub('.', message.idempotency_key)}@lienwatch>"
        email["X-Idempotency-Key"] = message.idempotency_key
        email.set_content(message.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                smtp.send_message(email)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"smtp {self.host}:{self.port}: {exc}") from exc
        return str(email["Message-ID"])


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
        """Redeem ``permit`` and deliver; retry failures ``retries`` times with doubling waits."""
        self.guard.redeem(permit, channel)
        provider = self.providers.get(channel)
        if provider is None:
            raise FollowupError(f"channel: no provider configured for {channel.value}")
        attempts: list[Attempt] = []
        for number in range(1, self.retries + 2):
            try:
                attempts.append(Attempt(number, True, provider.deliver(message)))
                break
            except DeliveryError as exc:
                attempts.append(Attempt(number, False, str(exc)))
                if number <= self.retries:
                    self.sleep(self.backoff_s * 2 ** (number - 1))
        return Delivery(channel, message, tuple(attempts))
