"""Limits on HTTP requests, enforced before an application reads a body.

:class:`BodyLimit` refuses a body over ``max_bytes`` with 413: at once when its
Content-Length says so (nothing is read), otherwise as soon as the bytes received pass the
limit; and a body not received in full within ``timeout_s`` with 408.
:func:`head_timeout_protocol` closes a connection whose request head does not arrive in time
(slowloris). Uvicorn's own limits (connections, keep-alive) are set where it is started
(``lienwatch.runtime.serving_http``).
"""

from __future__ import annotations

import asyncio
import time

import h11
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from lienwatch.api.errors import error_response

#: A request refused before its body was read in full: the rest of it must not be taken for
#: the next request, nor keep the connection open.
_CLOSE = {"Connection": "close"}


class BodyLimit:
    """ASGI middleware bounding the size and the pace of request bodies."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            response = error_response(413, f"body: more than {self.max_bytes} bytes", _CLOSE)
            await response(scope, receive, send)
            return
        await self.app(scope, self._limited(receive), send)

    def _limited(self, receive: Receive) -> Receive:
        received, complete, deadline = 0, False, time.monotonic() + self.timeout_s

        async def limited() -> Message:
            nonlocal received, complete
            if complete:  # after the body: waiting for a disconnect is not a stall
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                detail = f"body: not received within {self.timeout_s:g} s"
                raise HTTPException(408, detail, _CLOSE) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, f"body: more than {self.max_bytes} bytes", _CLOSE)
                complete = not message.get("more_body", False)
            return message

        return limited


def head_timeout_protocol(timeout_s: float) -> type[H11Protocol]:
    """Uvicorn's h11 protocol closing a connection whose request head (request line and
    headers) is not complete within ``timeout_s`` of the connection or of the previous
    response: uvicorn has no such limit, so slow clients could hold connections forever."""

    class HeadTimeoutProtocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE:  # the head is in
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            if not self.transport.is_closing():
                self._head_timer = self.loop.call_later(timeout_s, self._expired)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _expired(self) -> None:
            if self.conn.their_state is h11.IDLE:
                self.transport.close()

    return HeadTimeoutProtocol
