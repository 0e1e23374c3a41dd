"""The webhook provider against a real HTTP receiver on loopback: signatures, retries with
backoff, idempotency keys (delivered once however often retried) and delivery receipts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lienwatch import clock
from lienwatch.adapters.senders import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookProvider,
    verify_webhook,
    webhook_signature,
)
from lienwatch.followup.channels import Dispatcher, Message
from lienwatch.followup.compliance import ComplianceGuard, ContactRequest, Permit
from lienwatch.followup.model import Channel

SECRET = "s3cret-shared-with-the-gateway"
NOON_SHANGHAI = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)


@dataclass
class Receiver:
    """An SMS gateway's webhook endpoint: checks the signature, fails the first ``fail_first``
    requests with 503, stalls the first ``stall_first`` accepted ones past the client's
    timeout, and delivers each idempotency key once."""

    fail_first: int = 0
    stall_first: int = 0
    stall_s: float = 0.0
    requests: list[tuple[str, bool]] = field(default_factory=list)  # (key, signature ok)
    delivered: dict[str, dict] = field(default_factory=dict)  # key -> payload
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers, body: bytes) -> tuple[int, dict]:
        key = headers[IDEMPOTENCY_HEADER]
        ok = verify_webhook(
            SECRET, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER],
            now=clock.timestamp(),
        )
        with self.lock:
            self.requests.append((key, ok))
            if not ok:
                return 401, {"error": "bad signature"}
            if len(self.requests) <= self.fail_first:
                return 503, {"error": "busy"}
            self.delivered.setdefault(key, json.loads(body))
            stall = len(self.delivered) <= self.stall_first and len(self.requests) == 1
        if stall:
            time.sleep(self.stall_s)  # delivered, but the answer comes too late
        return 200, {"id": f"gw-{list(self.delivered).index(key) + 1}"}


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status, answer = state.answer(self.headers, body)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/sms"
    finally:
        server.shutdown()
        server.server_close()


def permit(guard: ComplianceGuard) -> Permit:
    decision = guard.check(ContactRequest("L1", Channel.SMS, NOON_SHANGHAI, "Asia/Shanghai"))
    assert decision.permit is not None
    return decision.permit


def send(provider: WebhookProvider, waits: list[float], retries: int = 3):
    guard = ComplianceGuard("cn")
    dispatcher = Dispatcher(guard, {Channel.SMS: provider}, retries=retries, sleep=waits.append)
    message = Message("+8613800000001", "您的还款已逾期", "step:7:0:2026-03-01")
    return dispatcher.send(permit(guard), Channel.SMS, message)


def test_a_signed_post_is_delivered_and_its_receipt_recorded(receiver):
    state, url = receiver
    delivery = send(WebhookProvider(url, SECRET), waits := [])
    assert delivery.delivered and delivery.provider_id == "gw-1"
    assert [(a.number, a.ok, a.detail) for a in delivery.attempts] == [(1, True, "gw-1")]
    assert state.requests == [("step:7:0:2026-03-01", True)]
    assert state.delivered["step:7:0:2026-03-01"]["body"] == "您的还款已逾期"
    assert waits == []


def test_5xx_is_retried_with_backoff_under_the_same_key_and_delivered_once(receiver):
    state, url = receiver
    state.fail_first = 2
    delivery = send(WebhookProvider(url, SECRET), waits := [])
    assert [a.ok for a in delivery.attempts] == [False, False, True]
    assert "HTTP 503" in delivery.attempts[0].detail
    assert waits == [0.5, 1.0]
    assert [key for key, _ok in state.requests] == ["step:7:0:2026-03-01"] * 3
    assert len(state.delivered) == 1 and delivery.provider_id == "gw-1"


def test_a_timeout_after_delivery_is_retried_and_the_receiver_keeps_one_copy(receiver):
    state, url = receiver
    state.stall_first, state.stall_s = 1, 1.0
    delivery = send(WebhookProvider(url, SECRET, timeout_s=0.3), [])
    assert [a.ok for a in delivery.attempts] == [False, True]
    assert "Timeout" in delivery.attempts[0].detail
    assert len(state.delivered) == 1 and delivery.provider_id == "gw-1"


def test_a_refused_request_is_not_retried(receiver):
    state, url = receiver
    delivery = send(WebhookProvider(url, "not-the-shared-secret-at-all"), waits := [])
    assert not delivery.delivered
    assert len(delivery.attempts) == 1 and "HTTP 401" in delivery.attempts[0].detail
    assert state.requests == [("step:7:0:2026-03-01", False)] and state.delivered == {}
    assert waits == []


def test_an_unreachable_receiver_fails_visibly_after_every_retry():
    provider = WebhookProvider("http://127.0.0.1:1/sms", SECRET, timeout_s=0.5)
    delivery = send(provider, waits := [], retries=1)
    assert [a.ok for a in delivery.attempts] == [False, False] and waits == [0.5]
    assert all(
        a.detail.startswith("webhook http://127.0.0.1:1/sms: ConnectError")
        for a in delivery.attempts
    )


def test_the_signature_covers_timestamp_and_body_and_expires():
    body = b'{"to":"+86138"}'
    signature = webhook_signature(SECRET, "1772337600", body)
    assert verify_webhook(SECRET, body, "1772337600", signature, now=1772337600 + 299)
    assert not verify_webhook(SECRET, body, "1772337600", signature, now=1772337600 + 301)
    assert not verify_webhook(SECRET, body + b" ", "1772337600", signature, now=1772337600)
    assert not verify_webhook(SECRET, body, "1772337601", signature, now=1772337600)
    assert not verify_webhook("other" + SECRET, body, "1772337600", signature, now=1772337600)


def test_a_webhook_needs_a_secret():
    with pytest.raises(ValueError, match=r"^secret: "):
        WebhookProvider("http://127.0.0.1:9/", "")
