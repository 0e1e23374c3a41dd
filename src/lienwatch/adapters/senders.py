"""The providers that deliver messages: ``log`` (a Python logger; the automated dialer's
stand-in), ``smtp`` (real SMTP), ``webhook`` (an HMAC-signed JSON POST) and
:class:`LocalSmsGateway`, the local stand-in for a paid SMS cloud. Each implements
:class:`lienwatch.followup.channels.Provider`; configured ones are built by
:mod:`lienwatch.adapters.providers`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import smtplib
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage

import httpx

from lienwatch import clock as process_clock
from lienwatch.followup.channels import DeliveryError, Message, RejectedError

SIGNATURE_HEADER = "X-Lienwatch-Signature"
TIMESTAMP_HEADER = "X-Lienwatch-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]")


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

