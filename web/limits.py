"""Limits: a request body's size, enforced before it is read whole; the questions waiting."""

from __future__ import annotations

import html
import json
import math
import time
from collections.abc import Mapping

from starlette.exceptions import HTTPException

# A question is at most 1,000 characters; 64 KiB leaves room for any valid request.
MAX_BODY_BYTES = 64 * 1024


class _TooLarge(HTTPException):
    # An HTTP error, so that a route reading the body turns it into the 413 response.
    pass


class BodyLimit:
    """ASGI middleware: a body over `max_bytes` gets 413, checked on its declared length and
    again as it streams in, so a chunked upload is cut off at the limit, not buffered.
    `uploads` gives some paths (an article upload) a larger limit of their own."""

    def __init__(
        self, app, max_bytes: int = MAX_BODY_BYTES, uploads: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.uploads = dict(uploads or {})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.uploads.get(scope.get("path", ""), self.max_bytes)
        refusal = self._too_large() if limit == self.max_bytes else self._upload_too_large(limit)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _refuse(send, 400, "The Content-Length header is not a number.")
                return
            if int(declared) > limit:
                await _refuse(send, 413, refusal)
                return
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(413, refusal)
            return message

        async def tracked_send(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _TooLarge:
            if not started:
                await _refuse(send, 413, refusal)

    def _too_large(self) -> str:
        return (
            f"The request body is over {self.max_bytes // 1024} KiB. Send the question alone"
            " (at most 1,000 characters) with its options."
        )

    @staticmethod
    def _upload_too_large(limit: int) -> str:
        return f"The upload is over {limit // 2**20} MB. Split it into smaller files."


async def _refuse(send, status: int, message: str, headers=(), *, page: bool = False) -> None:
    if page:  # the question page: a page a person can read, not JSON
        body = BUSY_PAGE.format(message=html.escape(message)).encode()
        kind = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"detail": message}).encode()
        kind = b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class QuestionQueue:
    """ASGI middleware: at most `limit` questions in the server at once, being answered or
    waiting for a core. Past it a question gets 503 at once, with `Retry-After` set to how
    long the answered ones take, so that the accepted keep their latency under a crowd."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.inside = 0
        # Seconds an accepted question has taken lately (a moving average).
        self.seconds = 1.0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not _asks(scope):
            await self.app(scope, receive, send)
            return
        if self.inside >= self.limit:
            wait = max(1, math.ceil(self.seconds))
            message = (
                f"The server is busy: {self.inside} questions are being answered or waiting."
                f" Try again in {wait} s."
            )
            retry = [(b"retry-after", str(wait).encode())]
            await _refuse(send, 503, message, retry, page=scope.get("path") == "/")
            return
        self.inside += 1
        started = time.monotonic()
        try:
            await self.app(scope, receive, send)
        finally:
            # The event loop runs this middleware: the count needs no lock.
            self.inside -= 1
            self.seconds = 0.9 * self.seconds + 0.1 * (time.monotonic() - started)


BUSY_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Busy</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>Busy</h1><p>{message}</p><p><a href="/">Back to the question page</a></p>
</main></body></html>
"""


def _asks(scope) -> bool:
    # A question: the API's, or the question page's `/?q=...`.
    path = scope.get("path", "")
    return path == "/ask" or (path == "/" and b"q=" in scope.get("query_string", b""))
