"""What the app says when a request fails: HTTP statuses for the core's errors, and messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException, Request

from rag.errors import (
    CollectionError,
    FeedbackError,
    IndexBusyError,
    MilvusError,
    QuestionError,
    RagError,
    StorageError,
)
from web.limits import MAX_BODY_BYTES

# The core's errors that are the request's (or the moment's) fault: status, and headers (how
# soon to try again). Any other error of the core is a server error, 500.
STATUSES: dict[type[RagError], tuple[int, dict[str, str] | None]] = {
    QuestionError: (422, None),
    FeedbackError: (422, None),
    CollectionError: (409, None),
    IndexBusyError: (503, {"Retry-After": "30"}),
    MilvusError: (503, {"Retry-After": "5"}),
    # The disk is full or not writable: the change is undone, the index before it answers.
    StorageError: (507, None),
}
BUSY: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "The index is still loading or could not be opened, or the search"
        " server (Milvus) does not answer."
    }
}
BODY: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not JSON text in UTF-8."},
    413: {"description": f"The body is over {MAX_BODY_BYTES // 1024} KiB."},
}
UNREADABLE_BODY = (
    'The request body is not JSON text in UTF-8. Send {"question": "..."} with the header'
    " Content-Type: application/json."
)


def http_error(exc: RagError, request: Request) -> HTTPException | None:
    """The HTTP error that answers an error of the core.

    Args:
        exc: The error.
        request: The request it failed.

    Returns:
        The HTTP error (a refused question said like a validation error of the field that
        holds it), or None for an error that is the server's.
    """
    for kind, (status, headers) in STATUSES.items():
        if isinstance(exc, kind):
            if isinstance(exc, QuestionError):
                where = ["body", "question"] if request.method == "POST" else ["query", "q"]
                detail: Any = [{"type": "question", "loc": where, "msg": str(exc)}]
            elif isinstance(exc, FeedbackError):
                detail = [{"type": "feedback", "loc": ["body", exc.field], "msg": str(exc)}]
            else:
                detail = str(exc)
            return HTTPException(status, detail=detail, headers=headers)
    return None


def plain_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors, without the input echoed back (a question can be long) and with
    messages a reader can act on.

    Args:
        errors: The errors of a validation.

    Returns:
        Errors with `type`, `loc` and `msg`.
    """
    plain = []
    for error in errors:
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        kind = str(error.get("type", ""))
        name = str(error["loc"][-1]) if error.get("loc") else ""
        if kind.startswith("date") and "YYYY-MM-DD" not in message:
            message += "; write the date as YYYY-MM-DD, such as 2020-01-31"
        elif kind == "missing" and name:
            message = f"'{name}' is required; add it to the request (see /docs)"
        elif kind == "extra_forbidden" and name:
            message = f"'{name}' is not a field of this request; see /docs for the fields"
        plain.append({"type": error.get("type"), "loc": list(error.get("loc", ())), "msg": message})
    return plain


def error_message(errors: Sequence[Any]) -> str:
    """Validation errors in one line for a page, each after the name of its field.

    Args:
        errors: The errors of a validation.

    Returns:
        The message.
    """
    names = {"q": "question"}
    parts = []
    for error in plain_errors(errors):
        where = [str(x) for x in error.get("loc", ()) if x not in ("body", "query", "path")]
        field_name = names.get(where[-1], where[-1]) if where else ""
        parts.append(f"{field_name}: {error.get('msg')}" if field_name else str(error.get("msg")))
    return "; ".join(parts)
