"""Channels: a real SMTP server on loopback, the local SMS gateway, retries that stay visible,
and no delivery without a permit from the guard."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler

from lienwatch.adapters.senders import LocalSmsGateway, SmtpProvider
from lienwatch.followup.channels import Dispatcher, Message
from lienwatch.followup.compliance import ComplianceGuard, ContactRequest, Permit
from lienwatch.followup.model import Channel, FollowupError

NOON_SHANGHAI = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)


class Inbox(MessageHandler):
    def __init__(self) -> None:
        super().__init__()
        self.received: list = []

    def handle_message(self, message) -> None:
        self.received.append(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def permit(guard: ComplianceGuard, channel: Channel) -> Permit:
    decision = guard.check(ContactRequest("L1", channel, NOON_SHANGHAI, "Asia/Shanghai"))
    assert decision.permit is not None
    return decision.permit


def test_email_goes_over_real_smtp_with_the_idempotency_key(smtp_server):
    inbox, port = smtp_server
    guard = ComplianceGuard("cn")
    smtp = SmtpProvider("127.0.0.1", port, "collections@lender.example")
    dispatcher = Dispatcher(guard, {Channel.EMAIL: smtp})
    message = Message("wang@example.com", "Please contact us about loan L1.", "step:7:0", "L1")
    delivery = dispatcher.send(permit(guard, Channel.EMAIL), Channel.EMAIL, message)
    assert delivery.delivered and len(delivery.attempts) == 1
    [received] = inbox.received
    assert received["To"] == "wang@example.com"
    assert received["X-Idempotency-Key"] == "step:7:0"
    assert received["Message-ID"] == "<step.7.0@lienwatch>" == delivery.provider_id
    assert received.get_payload().strip() == "Please contact us about loan L1."


def test_a_failing_provider_is_retried_with_backoff_and_every_attempt_is_kept():
    guard, waits = ComplianceGuard("cn"), []
    gateway = LocalSmsGateway(fail_first=2)
    dispatcher = Dispatcher(
        guard, {Channel.SMS: gateway}, retries=3, backoff_s=0.5, sleep=waits.append
    )
    delivery = dispatcher.send(permit(guard, Channel.SMS), Channel.SMS, Message("1380", "hi", "k1"))
    assert [a.ok for a in delivery.attempts] == [False, False, True]
    assert waits == [0.5, 1.0]
    assert list(gateway.sent) == ["k1"]


def test_an_unreachable_smtp_server_fails_visibly():
    guard = ComplianceGuard("cn")
    smtp = SmtpProvider("127.0.0.1", free_port(), "x@lender.example", timeout_s=1)
    dispatcher = Dispatcher(guard, {Channel.EMAIL: smtp}, retries=1, sleep=lambda _s: None)
    delivery = dispatcher.send(
        permit(guard, Channel.EMAIL), Channel.EMAIL, Message("a@b", "x", "k")
    )
    assert not delivery.delivered
    assert [a.ok for a in delivery.attempts] == [False, False]
    assert "smtp 127.0.0.1" in delivery.attempts[-1].detail


def test_nothing_is_sent_without_a_permit_of_the_guard():
    guard, gateway = ComplianceGuard("cn"), LocalSmsGateway()
    dispatcher = Dispatcher(guard, {Channel.SMS: gateway})
    forged = Permit(1, ContactRequest("L1", Channel.SMS, NOON_SHANGHAI, "Asia/Shanghai"))
    with pytest.raises(FollowupError, match="permit"):
        dispatcher.send(forged, Channel.SMS, Message("1380", "hi", "k"))
    assert gateway.calls == 0
