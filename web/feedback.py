"""Readers' verdicts on answers: `POST /feedback`, as JSON or as the answer page's form."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from rag.feedback import FEEDBACK_FILE, Feedback, append_feedback, make_feedback
from web import pages
from web.deps import Ready, current_state
from web.errors import BODY, BUSY
from web.requests import FeedbackIn
from web.schemas import FeedbackOut, feedback_out
from web.state import View

# A reader gives a verdict or two a minute; a script giving more is refused, not stored.
PER_CLIENT = 10
WINDOW_SECONDS = 60.0
FORM = "application/x-www-form-urlencoded"
FEEDBACK_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": FeedbackIn.model_json_schema()},
        FORM: {"schema": FeedbackIn.model_json_schema()},
    },
}


class ClientRate:
    """At most `limit` events per client in any `window` seconds (a sliding window)."""

    def __init__(self, limit: int = PER_CLIENT, window: float = WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """Count an event of a client if it is within the limit.

        Args:
            client: The client's address.

        Returns:
            0 when counted; else the seconds until the client may try again.
        """
        now = time.monotonic()
        with self._lock:
            for key in [k for k, seen in self._seen.items() if now - seen[-1] >= self.window]:
                del self._seen[key]  # forget idle clients, so the table stays small
            seen = self._seen.setdefault(client, deque())
            while seen and now - seen[0] >= self.window:
                seen.popleft()
            if len(seen) >= self.limit:
                return self.window - (now - seen[0])
            seen.append(now)
            return 0.0


router = APIRouter()


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackOut,
    responses={
        **BODY,
        201: {"content": {"text/html": {}}, "description": "Stored (HTML for the form)."},
        415: {"description": "Neither JSON nor a form."},
        422: {"description": "A field is wrong, or names a sentence the index lacks."},
        429: {"description": f"Over {PER_CLIENT} verdicts a minute from this client."},
        **BUSY,
    },
    openapi_extra={"requestBody": FEEDBACK_BODY},
    tags=["feedback"],
)
async def feedback(request: Request, view: Ready) -> Any:
    """Say whether an answer was right; with a wrong one, optionally the sentence (of a
    passage shown) that does answer. Appended to `feedback.jsonl` beside the index, for
    `rag feedback export`. The answer page's form posts here too, and gets a page back."""
    given, form = await verdict_of(request)
    saved = await run_in_threadpool(store, request, view, given)
    if form and not pages.prefers_json(request, default=False):
        return pages.feedback_page(request, saved)
    return feedback_out(saved)


async def verdict_of(request: Request) -> tuple[FeedbackIn, bool]:
    """The verdict a request carries, as JSON or as the answer page's form.

    Args:
        request: The request.

    Returns:
        (the validated verdict, whether it came as a form).

    Raises:
        HTTPException: 400 for a body that is not JSON, 415 for neither JSON nor a form;
            RequestValidationError for a verdict that does not validate.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            data: Any = json.loads(await request.body())
        except ValueError as e:
            raise HTTPException(
                400,
                detail="The request body is not JSON text in UTF-8. Send"
                ' {"question": "...", "verdict": "right"} with the header Content-Type:'
                " application/json.",
            ) from e
    elif kind == FORM:
        fields = await request.form()
        data = {k: fields.getlist(k) if k == "shown" else fields.get(k) for k in fields}
    else:
        raise HTTPException(
            415,
            detail="Send the verdict as JSON (Content-Type: application/json) or as the"
            " answer page's form.",
        )
    try:
        return FeedbackIn.model_validate(data), kind == FORM
    except ValidationError as e:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in e.errors()]
        raise RequestValidationError(errors) from e


def store(request: Request, view: View, given: FeedbackIn) -> Feedback:
    """Check a verdict against the index in service and append it, within the client's rate.

    Args:
        request: The request (its client's address is what the rate counts).
        view: The index in service.
        given: The verdict.

    Returns:
        The verdict as stored.

    Raises:
        FeedbackError: It names a sentence the index lacks (nothing is stored).
        HTTPException: 429 past the client's rate (nothing is stored).
    """
    made = make_feedback(
        view.engine.index,
        question=given.question,
        verdict=given.verdict,
        shown=given.shown,
        quote=given.quote,
        note=given.note,
    )
    wait = request.app.state.feedback_rate.take(request.client.host if request.client else "")
    if wait:
        raise HTTPException(
            429,
            detail=f"Over {PER_CLIENT} verdicts a minute from this address: try again in"
            f" {wait:.0f} s.",
            headers={"Retry-After": str(max(1, round(wait)))},
        )
    append_feedback(current_state(request).settings.index_path / FEEDBACK_FILE, made)
    return made
