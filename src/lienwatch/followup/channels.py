"""Outbound channels. Every send takes a :class:`~lienwatch.followup.compliance.Permit` and
redeems it at the guard first, so nothing reaches a borrower without the guard's leave.

Providers deliver one message and return the provider's message id, or raise
:class:`DeliveryError`; :class:`Dispatcher` retries with exponential backoff and returns every
attempt, so a failure stays visible. Built-in providers: ``log`` (a Python logger; the
automated dialer's stand-in), ``smtp`` (real SMTP), ``webhook`` (an HMAC-signed JSON POST) and
:class:`LocalSmsGateway`, the local stand-in for a paid SMS cloud. Configured providers are
plugins: see :mod:`lienwatch.followup.providers`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

import httpx

from lienwatch import clock as process_clock
from lienwatch.followup.compliance import ComplianceGuard, Permit
from lienwatch.followup.model import Channel, FollowupError

_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]")


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


SIGNATURE_HEADER = "X-Lienwatch-Signature"
TIMESTAMP_HEADER = "X-Lienwatch-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# Receivers may retry-able refuse with these besides 5xx: a timeout or "too many requests".
_RETRYABLE_4XX = frozenset({408, 425, 429})


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with ``secret`` over ``timestamp``, ``"."`` and the raw
    body. Signing the timestamp too means a captured request cannot be replayed later with a
    fresh timestamp."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_webhook(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    now: float,
    tolerance_s: float = 300.0,
) -> bool:
    """True when ``signature`` is ours over ``timestamp`` and ``body`` and ``timestamp`` (Unix
    seconds) is within ``tolerance_s`` of ``now``: the receiver's check against forgery and
    replay (it drops repeated ``Idempotency-Key`` values itself)."""
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        return False
    expected = webhook_signature(secret, timestamp, body)
    return age <= tolerance_s and hmac.compare_digest(expected, signature)


class WebhookProvider:
    """Delivers a message as a signed JSON POST to ``url``.

    Headers: :data:`SIGNATURE_HEADER` (see :func:`webhook_signature`), :data:`TIMESTAMP_HEADER`
    (Unix seconds, fresh per attempt), :data:`IDEMPOTENCY_HEADER` (the message's key, the same
    on every retry so the receiver delivers it once). A 2xx answer is the delivery receipt: its
    JSON ``id`` is returned as the provider's message id. A 5xx, a timeout or a connection
    failure raises :class:`DeliveryError` (retried by the dispatcher); any other answer raises
    :class:`RejectedError` (not retried).
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = process_clock.timestamp,
    ) -> None:
        if not secret:
            raise ValueError("secret: a webhook needs a shared secret")
        self.url = url
        self._secret = secret
        self._clock = clock
        self._client = httpx.Client(timeout=timeout_s)  # one pool, reused across messages

    def deliver(self, message: Message) -> str:
        body = json.dumps(
            {"idempotency_key": message.idempotency_key, "to": message.to,
             "subject": message.subject, "body": message.body},
            ensure_ascii=False, separators=(",", ":"),
        ).encode()  # fmt: skip
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: message.idempotency_key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: webhook_signature(self._secret, timestamp, body),
        }
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {self.url}: {type(exc).__name__}: {exc}") from exc
        return _receipt(self.url, response)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _receipt(url: str, response: httpx.Response) -> str:
    """The receiver's message id from a 2xx answer, or the error the status calls for."""
    status = response.status_code
    if status >= 500 or status in _RETRYABLE_4XX:
        raise DeliveryError(f"webhook {url}: HTTP {status}")
    if not 200 <= status < 300:
        raise RejectedError(f"webhook {url}: HTTP {status}: {response.text[:200]}")
    try:
        receipt = response.json()
    except ValueError:
        receipt = None
    if not isinstance(receipt, dict) or not isinstance(receipt.get("id"), str | int):
        raise RejectedError(f'webhook {url}: HTTP {status} without a receipt {{"id": ...}}')
    return str(receipt["id"])


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
