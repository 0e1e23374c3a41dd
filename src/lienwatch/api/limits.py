"""Limits on HTTP requests, enforced before an application reads a body.

:class:`BodyLimit` refuses a body over ``max_bytes`` with 413: at once when its
Content-Length says so (nothing is read), otherwise as soon as the bytes received pass the
limit; and a body that stalls for ``timeout_s`` between two chunks with 408. Uvicorn's own
limits (connections, keep-alive, the time to send the request head) are set where it is
started (``lienwatch.runtime.serving_http``).
"""

from __future__ import annotations

import asyncio

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lienwatch.api.errors import error_response


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
            response = error_response(413, f"body: more than {self.max_bytes} bytes")
            await response(scope, receive, send)
            return
        await self.app(scope, self._limited(receive), send)

    def _limited(self, receive: Receive) -> Receive:
        received, complete = 0, False

        async def limited() -> Message:
            nonlocal received, complete
            if complete:  # after the body: waiting for a disconnect is not a stall
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:
                raise HTTPException(408, f"body: nothing for {self.timeout_s:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, f"body: more than {self.max_bytes} bytes")
                complete = not message.get("more_body", False)
            return message

        return limited
