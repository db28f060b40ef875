"""The admin API: adding and removing articles over HTTP, for requests with the admin token."""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from rag.build.updates import add_articles, remove_articles
from rag.ingest.articles import article_from_record
from rag.ingest.files import MAX_FILE_BYTES, SUFFIXES, read_data
from rag.types import Article
from web.deps import current_state, ready_view
from web.errors import BUSY, UNREADABLE_BODY
from web.requests import ArticleIn
from web.schemas import UpdateOut, update_out
from web.state import AppState

ADMIN_ENV = "RAG_ADMIN_TOKEN"
UPLOAD_BYTES = MAX_FILE_BYTES
UPLOAD_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    ArticleIn.model_json_schema(),
                    {"type": "array", "items": ArticleIn.model_json_schema()},
                ]
            }
        },
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
    },
}
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No admin token, or a wrong one."},
    507: {
        "description": "The index could not be written (the disk is full or not writable):"
        " nothing was changed, and the index before answers."
    },
    **BUSY,
}


def admin_state(request: Request) -> AppState:
    """The app's state, for a request that carries the admin token.

    Args:
        request: The request.

    Returns:
        The state, its index in service.

    Raises:
        HTTPException: 401 without the token (compared in constant time: how long it takes
            says nothing of the token), 503 until the index is in service.
    """
    token = request.app.state.admin_token.encode()
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
        raise HTTPException(
            401,
            detail=f"This needs the admin token: send the header Authorization: Bearer TOKEN,"
            f" with the token the server was started with (${ADMIN_ENV}).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    ready_view(request)
    return current_state(request)


Admin = Annotated[AppState, Depends(admin_state)]
router = APIRouter()


@router.post(
    "/articles",
    status_code=201,
    response_model=UpdateOut,
    responses={
        **ADMIN_ERRORS,
        400: {"description": "The body is not JSON text in UTF-8."},
        413: {"description": f"The body is over {UPLOAD_BYTES // 2**20} MB."},
        415: {"description": "Neither JSON nor a multipart form."},
        422: {"description": "No article could be read; the message says why."},
    },
    openapi_extra={"requestBody": UPLOAD_BODY},
    tags=["articles"],
)
async def add_article(request: Request, state: Admin) -> Any:
    """Add articles, or new versions of articles of the same id: a JSON article (or a list of
    them), or a file in the form field `file` (a page, a feed, JSON Lines, text or
    Markdown). Only their text is embedded; the new index answers once this returns."""
    articles, skipped = await uploaded(request)
    return await run_in_threadpool(change, state, add=articles, skipped=skipped)


@router.delete(
    "/articles/{article_id}",
    response_model=UpdateOut,
    responses={
        **ADMIN_ERRORS,
        404: {"description": "No such article."},
        409: {"description": "It is the last article."},
    },
    tags=["articles"],
)
def delete_article(article_id: str, state: Admin) -> Any:
    """Remove an article: none of its text is left in the index."""
    if article_id not in state.articles:
        raise HTTPException(404, detail=f"No article with id {article_id!r}.")
    return change(state, remove=[article_id])


def change(
    state: AppState,
    *,
    add: Sequence[Article] = (),
    remove: Sequence[str] = (),
    skipped: Sequence[str] = (),
) -> BaseModel:
    """Update the index (embedding only new text), then serve it.

    Args:
        state: The app's state, its index in service.
        add: Articles to add (or replace, by id).
        remove: Ids of articles to remove (then nothing is added).
        skipped: What of an upload could not be read, reported with the update.

    Returns:
        The `UpdateOut` of what was done; the new index answers from now on.
    """
    view = state.view
    assert view is not None
    if remove:
        index, update = remove_articles(state.settings, view.engine.encoder, remove)
    else:
        index, update = add_articles(state.settings, view.engine.encoder, add, skipped=skipped)
    state.refresh(index)
    return update_out(update)


def _unprocessable(message: str, where: list[Any]) -> HTTPException:
    return HTTPException(422, detail=[{"type": "article", "loc": where, "msg": message}])


async def uploaded(request: Request) -> tuple[list[Article], list[str]]:
    """The articles of a request: a JSON body (one article or a list) or an uploaded file.

    Args:
        request: The request.

    Returns:
        (the articles, at least one; what of a file could not be read).

    Raises:
        HTTPException: 400 for a body that is not JSON, 415 for neither JSON nor a form, 422
            for no article (each article's problems said); RequestValidationError for an
            article that does not validate.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        articles, warnings = await _from_file(request)
    elif kind == "application/json":
        articles, warnings = await _from_json(request), []
    else:
        raise HTTPException(
            415,
            detail="Send the article as JSON (Content-Type: application/json) or a file in a"
            " multipart form field named 'file'.",
        )
    if not articles:
        raise _unprocessable("No article could be read: " + "; ".join(warnings), ["body"])
    return articles, warnings


async def _from_file(request: Request) -> tuple[list[Article], list[str]]:
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise _unprocessable("Send the file in a form field named 'file'.", ["body", "file"])
    name = upload.filename or "upload"
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise _unprocessable(
            f"{name}: not a kind of file that holds articles; send one of"
            f" {', '.join(sorted(SUFFIXES))}",
            ["body", "file"],
        )
    warnings: list[str] = []
    articles = read_data(await upload.read(), suffix, f"upload {name}", warnings)
    return articles, warnings


async def _from_json(request: Request) -> list[Article]:
    try:
        data = json.loads(await request.body())
    except ValueError as e:
        raise HTTPException(400, detail=UNREADABLE_BODY) from e
    records = data if isinstance(data, list) else [data]
    if not records:
        raise _unprocessable("The list of articles is empty.", ["body"])
    articles = []
    for number, record in enumerate(records):
        where: list[Any] = ["body", number] if isinstance(data, list) else ["body"]
        try:
            checked = ArticleIn.model_validate(record)
        except ValidationError as e:
            raise RequestValidationError(
                [{**error, "loc": (*where, *error["loc"])} for error in e.errors()]
            ) from e
        article, problem = article_from_record(
            checked.model_dump(mode="json", exclude_none=True), f"POST /articles[{number}]"
        )
        if article is None:
            raise _unprocessable(str(problem), where)
        articles.append(article)
    return articles
