"""A request body size limit, enforced before the body is read whole."""

from __future__ import annotations

import json
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
                await self._refuse(send, 400, "The Content-Length header is not a number.")
                return
            if int(declared) > limit:
                await self._refuse(send, 413, refusal)
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
                await self._refuse(send, 413, refusal)

    def _too_large(self) -> str:
        return (
            f"The request body is over {self.max_bytes // 1024} KiB. Send the question alone"
            " (at most 1,000 characters) with its options."
        )

    @staticmethod
    def _upload_too_large(limit: int) -> str:
        return f"The upload is over {limit // 2**20} MB. Split it into smaller files."

    @staticmethod
    async def _refuse(send, status: int, message: str) -> None:
        body = json.dumps({"detail": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
