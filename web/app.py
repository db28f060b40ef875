"""The web app: a question page, article pages and a JSON API over the answering engine."""

from __future__ import annotations

import datetime as dt
import hmac
import importlib.resources
import json
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from swagger_ui_bundle import swagger_ui_path

from rag.build.updates import Update, add_articles, remove_articles
from rag.engine import Engine
from rag.errors import CollectionError, IndexBusyError, MilvusError, QuestionError
from rag.examples import read_questions
from rag.ingest.articles import article_from_record
from rag.ingest.files import MAX_FILE_BYTES, SUFFIXES, read_data
from rag.serialize import answer_to_dict, article_to_dict, newest_first
from rag.settings import Settings
from rag.types import Answer, Article
from web.limits import MAX_BODY_BYTES, BodyLimit
from web.schemas import (
    AnswerOut,
    ArticleIn,
    ArticleOut,
    ArticleSummary,
    AskOptions,
    AskQuery,
    AskRequest,
    HealthOut,
    UpdateOut,
)
from web.state import RELOAD_SECONDS, AppState, View

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
ADMIN_ENV = "RAG_ADMIN_TOKEN"
# Example questions come from a Q&A file: by default the project's own eval set, whose
# questions are about the shipped articles.
DEFAULT_QUESTIONS = Path(str(importlib.resources.files("eval") / "qa.jsonl"))
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def article_url(article_id: str, start: int | None = None, end: int | None = None) -> str:
    """The address of an article page, optionally highlighting and scrolled to a range.

    Args:
        article_id: The article.
        start: Start offset of the range to highlight in the article's text.
        end: End offset (exclusive).

    Returns:
        A site-relative URL.
    """
    path = f"/articles/{quote(article_id, safe='')}"
    return path if start is None or end is None else f"{path}?hl={start}-{end}#quote"


def marked_pieces(
    text: str, offset: int, ranges: Iterable[Sequence[int | None]]
) -> list[tuple[str, bool]]:
    """Cut a text into pieces, each inside one of the ranges (to highlight) or outside all.

    Args:
        text: The text, which starts at `offset` of its article.
        offset: The article offset of `text[0]`.
        ranges: (start, end) article offsets, in order; ranges with a None are skipped.

    Returns:
        (piece, highlighted) pairs that join to `text`.
    """
    pieces: list[tuple[str, bool]] = []
    position = 0
    for start, end in ranges:
        if start is None or end is None:
            continue
        lo, hi = max(start - offset, position), min(end - offset, len(text))
        if hi <= lo:
            continue
        if lo > position:
            pieces.append((text[position:lo], False))
        pieces.append((text[lo:hi], True))
        position = hi
    if position < len(text):
        pieces.append((text[position:], False))
    return pieces


def answer_out(answer: Answer) -> AnswerOut:
    """The API form of an answer: the core's plain data with page links.

    Args:
        answer: The answer.

    Returns:
        The answer with a `url` for every source, citation and passage.
    """
    data = answer_to_dict(answer)
    for source in data["sources"]:
        source["url"] = article_url(source["article_id"])
    for sentence in data["sentences"]:
        for citation in sentence["citations"]:
            citation["url"] = article_url(
                citation["article_id"], citation["start"], citation["end"]
            )
    for passage in data["passages"]:
        passage["url"] = article_url(passage["article_id"], passage["start"], passage["end"])
    return AnswerOut.model_validate(data)


@dataclass
class Piece:
    """Text of an article page, highlighted or not."""

    text: str
    mark: bool = False
    first: bool = False


@dataclass
class Run:
    """One sentence of an article page (with its anchor), or text between sentences."""

    anchor: str | None
    pieces: list[Piece]


@dataclass
class Block:
    """A paragraph of an article page, or its byline."""

    byline: bool
    runs: list[Run]


def article_blocks(
    article: Article, sentences: Sequence[tuple[int, int]], mark: tuple[int, int] | None = None
) -> list[Block]:
    """Lay out an article for its page: every sentence anchored as `s-{start}-{end}`, the byline
    too, and a range (a quote) highlighted, its first piece being the `#quote` target.

    Args:
        article: The article.
        sentences: (start, end) of its body sentences.
        mark: The range to highlight, if any.

    Returns:
        The paragraphs, then the byline, as blocks of runs of pieces that join to their text.
    """
    paragraphs = [*article.paragraphs, *([article.byline] if article.byline else [])]
    anchors = [*sentences, *([article.byline] if article.byline else [])]
    blocks: list[Block] = []
    first = True
    for start, end in paragraphs:
        inside = [(a, b) for a, b in anchors if start <= a and b <= end]
        cuts = {start, end, *(x for span in inside for x in span)}
        if mark:
            cuts |= {min(max(x, start), end) for x in mark}
        points = sorted(cuts)
        runs: list[Run] = []
        for a, b in zip(points, points[1:], strict=False):
            owner = next(((s, e) for s, e in inside if s <= a and b <= e), None)
            anchor = f"s-{owner[0]}-{owner[1]}" if owner else None
            marked = mark is not None and mark[0] <= a and b <= mark[1]
            piece = Piece(article.text[a:b], marked, marked and first)
            first = first and not marked
            if runs and runs[-1].anchor == anchor:
                runs[-1].pieces.append(piece)
            else:
                runs.append(Run(anchor, [piece]))
        blocks.append(Block((start, end) == article.byline, runs))
    return blocks


def _state(request: Request) -> AppState:
    return request.app.state.web


def _ready(request: Request) -> View:
    state = _state(request)
    view = state.view
    if view is None:
        headers = None if state.error else {"Retry-After": "5"}
        raise HTTPException(503, detail=state.not_ready(), headers=headers)
    return view


State = Annotated[AppState, Depends(_state)]
Ready = Annotated[View, Depends(_ready)]


def _answer(view: View, question: str, options: AskOptions, where: list[str]) -> AnswerOut:
    try:
        return answer_out(view.ask(question, options))
    except QuestionError as e:
        detail = [{"type": "question", "loc": where, "msg": str(e)}]
        raise HTTPException(422, detail=detail) from e
    except MilvusError as e:
        raise HTTPException(503, detail=str(e), headers={"Retry-After": "5"}) from e


def _article(view: View, article_id: str) -> Article:
    try:
        return view.engine.index.articles[article_id]
    except KeyError as e:
        raise HTTPException(404, detail=f"No article with id {article_id!r}.") from e


def _range(article: Article, hl: str | None) -> tuple[int, int] | None:
    if hl is None:
        return None
    start, end = (int(x) for x in hl.split("-"))
    if not 0 <= start < end <= len(article.text):
        detail = [
            {
                "type": "range",
                "loc": ["query", "hl"],
                "msg": f"The range {hl} is not inside the article (0-{len(article.text)}).",
            }
        ]
        raise HTTPException(422, detail=detail)
    return start, end


def _prefers_json(request: Request, *, default: bool) -> bool:
    accept = request.headers.get("accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return True
    if "text/html" in accept and "application/json" not in accept:
        return False
    return default


def _long_date(value: dt.date | None) -> str:
    return f"{value.day} {value:%B %Y}" if value else "no date"


def _plain_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    # Pydantic's errors, without the input echoed back (a question can be long) and with
    # messages a reader can act on.
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


def _message(errors: Sequence[Any]) -> str:
    names = {"q": "question"}
    parts = []
    for error in _plain_errors(errors):
        where = [str(x) for x in error.get("loc", ()) if x not in ("body", "query", "path")]
        field_name = names.get(where[-1], where[-1]) if where else ""
        parts.append(f"{field_name}: {error.get('msg')}" if field_name else str(error.get("msg")))
    return "; ".join(parts)


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True
    )
    env.globals["marked"] = marked_pieces
    env.filters["longdate"] = _long_date
    return Jinja2Templates(env=env)


templates = _templates()


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    return templates.TemplateResponse(
        request, name, context, status_code=status, headers={"Vary": "Accept"}
    )


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    admin_token: str | None = None,
    questions: Path | None = DEFAULT_QUESTIONS,
    reload_seconds: float | None = RELOAD_SECONDS,
) -> FastAPI:
    """Build the web app.

    Args:
        settings: Where the collection and index are.
        engine: An open engine to use; when None, the index is opened (or built) in a
            background thread at start-up, and until it is ready `/healthz` says so and
            `/ask` answers 503.
        admin_token: With a token, `POST /articles` and `DELETE /articles/{id}` exist and
            take requests that carry it (`Authorization: Bearer TOKEN`).
        questions: A Q&A JSON Lines file whose questions about the collection's articles
            are offered as examples when the collection answers them well.
        reload_seconds: How often to look for a new index generation (written by `rag add`,
            `rag remove` or `rag index` in another process) and take it into service; None
            never looks.

    Returns:
        The FastAPI app.
    """
    state = AppState(settings, questions=read_questions(questions))
    if engine is not None:
        state.use(engine)
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if state.view is None and not state.loading:
            state.loading = True
            threading.Thread(target=state.load, name="rag-index", daemon=True).start()
        if reload_seconds:
            threading.Thread(
                target=state.watch, args=(stop, reload_seconds), name="rag-watch", daemon=True
            ).start()
        yield
        stop.set()

    app = FastAPI(
        title="Ask the articles",
        summary="Questions about news articles, answered with cited, verbatim sentences.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.web = state
    app.state.admin_token = admin_token
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.mount("/swagger-ui", StaticFiles(directory=swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        # Swagger UI from the installed swagger-ui-bundle package: the page works offline.
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url="/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/swagger-ui/favicon-32x32.png",
        )

    if admin_token:
        app.include_router(admin)
    app.include_router(router)
    app.add_middleware(
        BodyLimit,
        max_bytes=MAX_BODY_BYTES,
        uploads={"/articles": UPLOAD_BYTES} if admin_token else None,
    )
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        if not request.url.path.startswith(("/docs", "/redoc")):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response

    return app


def _wants_error_page(request: Request) -> bool:
    return not request.url.path.startswith("/ask") and not _prefers_json(request, default=True)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        # FastAPI's words for a body it could not decode; say what to send instead.
        exc = StarletteHTTPException(400, UNREADABLE_BODY)
    if not _wants_error_page(request):
        return await http_exception_handler(request, exc)
    detail = exc.detail if isinstance(exc.detail, str) else _message(exc.detail)
    return _page(
        request, "error.html", {"status": exc.status_code, "message": detail}, exc.status_code
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not _wants_error_page(request):
        return JSONResponse({"detail": _plain_errors(exc.errors())}, status_code=422)
    return _page(request, "error.html", {"status": 422, "message": _message(exc.errors())}, 422)


router = APIRouter()
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


@router.post("/ask", response_model=AnswerOut, responses=BUSY | BODY, tags=["answers"])
def ask_post(body: AskRequest, view: Ready) -> AnswerOut:
    """Answer a question with quoted, cited sentences, or say the articles do not answer."""
    return _answer(view, body.question, body, ["body", "question"])


@router.get("/ask", response_model=AnswerOut, responses=BUSY, tags=["answers"])
def ask_get(params: Annotated[AskQuery, Query()], view: Ready) -> AnswerOut:
    """The same as `POST /ask`, with the question in `q`: `curl '.../ask?q=Who+...'`."""
    return _answer(view, params.q, params, ["query", "q"])


@router.get("/articles", response_model=list[ArticleSummary], responses=BUSY, tags=["articles"])
def articles(request: Request, view: Ready) -> Any:
    """The articles, newest first: JSON, or an HTML list for browsers."""
    found = [_summary(a) for a in newest_first(view.engine.index.articles.values())]
    if _prefers_json(request, default=True):
        return found
    return _page(request, "articles.html", {"articles": found})


@router.get(
    "/articles/{article_id}",
    response_model=ArticleOut,
    responses={
        200: {"content": {"text/html": {}}, "description": "HTML unless JSON is asked for."},
        404: {"description": "No such article."},
        **BUSY,
    },
    tags=["articles"],
)
def article(
    article_id: str,
    request: Request,
    view: Ready,
    hl: Annotated[
        str | None,
        Query(pattern=r"^\d{1,9}-\d{1,9}$", description="A range to highlight: start-end."),
    ] = None,
) -> Any:
    """One article: HTML with every sentence anchored (`#s-{start}-{end}`) and the `hl` range
    highlighted as `#quote`, or JSON with `Accept: application/json`."""
    found = _article(view, article_id)
    mark = _range(found, hl)
    if _prefers_json(request, default=False):
        return ArticleOut.model_validate(
            {**article_to_dict(found, with_text=True), "page_url": article_url(found.id)}
        )
    blocks = article_blocks(found, view.engine.index.article_sentences(found.id), mark)
    return _page(request, "article.html", {"article": found, "blocks": blocks, "mark": mark})


@router.get("/healthz", response_model=HealthOut, tags=["service"])
def healthz(state: State, response: Response) -> HealthOut:
    """Whether the index is loaded (503 until it is), with its manifest."""
    health = state.health()
    response.status_code = 200 if health.ready else 503
    return health


@router.get("/", include_in_schema=False)
def page(request: Request, state: State) -> Response:
    """The question page; `/?q=...` answers on the server, no JavaScript needed."""
    return _question_page(request, state)


admin = APIRouter()
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
    **BUSY,
}


def _admin(request: Request) -> AppState:
    # The admin token, compared in constant time: how long it takes says nothing of the token.
    token = request.app.state.admin_token.encode()
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
        raise HTTPException(
            401,
            detail=f"This needs the admin token: send the header Authorization: Bearer TOKEN,"
            f" with the token the server was started with (${ADMIN_ENV}).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    _ready(request)  # 503 until the index is in service
    return _state(request)


Admin = Annotated[AppState, Depends(_admin)]


def _unprocessable(message: str, where: list[str]) -> HTTPException:
    return HTTPException(422, detail=[{"type": "article", "loc": where, "msg": message}])


async def _uploaded(request: Request) -> tuple[list[Article], list[str]]:
    # The articles of a JSON body (one article or a list) or of an uploaded file.
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    warnings: list[str] = []
    if kind == "multipart/form-data":
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
        articles = read_data(await upload.read(), suffix, f"upload {name}", warnings)
        return articles, warnings
    if kind != "application/json":
        raise HTTPException(
            415,
            detail="Send the article as JSON (Content-Type: application/json) or a file in a"
            " multipart form field named 'file'.",
        )
    try:
        data = json.loads(await request.body())
    except ValueError as e:
        raise HTTPException(400, detail=UNREADABLE_BODY) from e
    records = data if isinstance(data, list) else [data]
    if not records:
        raise _unprocessable("The list of articles is empty.", ["body"])
    articles = []
    for number, record in enumerate(records):
        where = ["body", number] if isinstance(data, list) else ["body"]
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
    return articles, warnings


def _update_out(update: Update) -> UpdateOut:
    return UpdateOut(
        added=list(update.added),
        updated=list(update.updated),
        removed=list(update.removed),
        unchanged=update.unchanged,
        skipped=list(update.skipped),
        duplicates=[
            {"first": d.first, "second": d.second, "similarity": d.similarity}
            for d in update.duplicates
        ],
        embedded_chunks=update.embedded_chunks,
        embedded_sentences=update.embedded_sentences,
        articles=update.articles,
        chunks=update.chunks,
        seconds=round(update.seconds, 3),
    )


def _change(
    state: AppState,
    *,
    add: Sequence[Article] = (),
    remove: Sequence[str] = (),
    skipped: Sequence[str] = (),
) -> UpdateOut:
    # Update the index (embedding only new text), then serve it before answering.
    view = state.view
    assert view is not None
    try:
        if remove:
            index, update = remove_articles(state.settings, view.engine.encoder, remove)
        else:
            index, update = add_articles(state.settings, view.engine.encoder, add, skipped=skipped)
    except IndexBusyError as e:
        raise HTTPException(503, detail=str(e), headers={"Retry-After": "30"}) from e
    state.refresh(index)
    return _update_out(update)


@admin.post(
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
async def add_article(request: Request, state: Admin) -> UpdateOut:
    """Add articles, or new versions of articles of the same id: a JSON article (or a list of
    them), or a file in the form field `file` (a page, a feed, JSON Lines, text or
    Markdown). Only their text is embedded; the new index answers once this returns."""
    articles, skipped = await _uploaded(request)
    if not articles:
        raise _unprocessable("No article could be read: " + "; ".join(skipped), ["body"])
    return await run_in_threadpool(_change, state, add=articles, skipped=skipped)


@admin.delete(
    "/articles/{article_id}",
    response_model=UpdateOut,
    responses={
        **ADMIN_ERRORS,
        404: {"description": "No such article."},
        409: {"description": "It is the last article."},
    },
    tags=["articles"],
)
def delete_article(article_id: str, state: Admin) -> UpdateOut:
    """Remove an article: none of its text is left in the index."""
    if article_id not in state.articles:
        raise HTTPException(404, detail=f"No article with id {article_id!r}.")
    try:
        return _change(state, remove=[article_id])
    except CollectionError as e:
        raise HTTPException(409, detail=str(e)) from e


def _summary(article: Article) -> ArticleSummary:
    return ArticleSummary.model_validate(
        {**article_to_dict(article, with_text=False), "page_url": article_url(article.id)}
    )


def _question_page(request: Request, state: AppState) -> Response:
    fields = {k: v for k, v in request.query_params.items() if k in AskQuery.model_fields}
    kept = {k: v for k, v in fields.items() if v.strip() and (k, v.strip()) != ("top_k", "5")}
    if kept.get("q") and kept != fields:
        # The form without JavaScript sends its empty filters too; share the short address.
        return RedirectResponse(f"/?{urlencode(kept)}", status_code=303)
    context: dict[str, Any] = {
        "form": fields,
        "state": state,
        "answer": None,
        "error": None,
        "filtered": any(fields.get(k) for k in ("date_from", "date_to", "author")),
    }
    if not fields.get("q", "").strip():
        return _page(request, "index.html", context)
    try:
        params = AskQuery.model_validate(fields)
    except ValidationError as e:
        return _page(request, "index.html", {**context, "error": _message(e.errors())}, 422)
    view = state.view
    if view is None:
        return _page(request, "index.html", {**context, "error": state.not_ready()}, 503)
    try:
        context["answer"] = answer_out(view.ask(params.q, params))
    except QuestionError as e:
        return _page(request, "index.html", {**context, "error": str(e)}, 422)
    except MilvusError as e:
        return _page(request, "index.html", {**context, "error": str(e)}, 503)
    return _page(request, "index.html", context)


def _log_progress() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name in ("web", "rag", "embeddings"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)


def default_app() -> FastAPI:
    """The app over the default collection and index (`$RAG_INDEX_DIR`, else the cache).

    For `uvicorn --factory web.app:default_app`.

    Returns:
        The FastAPI app; the index loads in the background once it starts.
    """
    _log_progress()
    return create_app(Settings(), admin_token=os.environ.get(ADMIN_ENV) or None)


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    questions: Path | None = DEFAULT_QUESTIONS,
) -> None:
    """Serve the web app with uvicorn until interrupted, printing its address. With
    `$RAG_ADMIN_TOKEN` set, articles can be added and removed over HTTP with that token.

    Args:
        settings: Where the collection and index are.
        host: The interface to listen on.
        port: The port.
        questions: A Q&A file to take example questions from.
    """
    _log_progress()
    shown = "localhost" if host in ("0.0.0.0", "::") else f"[{host}]" if ":" in host else host
    print(f"Serving on http://{shown}:{port}/ (API docs at /docs); Ctrl+C stops.", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"Listening on {host}, not only on this machine: anyone who can reach it on port"
            f" {port} can ask questions and read the articles. Use --host 127.0.0.1 to keep"
            " it local.",
            flush=True,
        )
    token = os.environ.get(ADMIN_ENV) or None
    if token:
        print(f"Adding and removing articles over HTTP is on (${ADMIN_ENV} is set).", flush=True)
    uvicorn.run(create_app(settings, admin_token=token, questions=questions), host=host, port=port)
