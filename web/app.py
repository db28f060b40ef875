"""The web app: its factory, middleware and error handling, and the server."""

from __future__ import annotations

import logging
import os
import threading
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from swagger_ui_bundle import swagger_ui_path

from embeddings import set_batching
from rag.engine import Engine
from rag.errors import RagError
from rag.examples import read_questions
from rag.settings import Settings
from web import admin, api, feedback, pages
from web.errors import UNREADABLE_BODY, error_message, http_error, plain_errors
from web.limits import MAX_BODY_BYTES, BodyLimit, QuestionQueue
from web.state import RELOAD_SECONDS, AppState

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
ADMIN_ENV = admin.ADMIN_ENV
QUESTIONS_ENV = "RAG_QUESTIONS"
# Questions in the server at once (answered or waiting), per core: past it, 503 at once. At
# most one model run per core is in flight, so this bounds an accepted question's wait.
# Measured with 64 clients on two cores shared with other jobs (README, "Reliability"): 2, 3,
# 4 and 6 a core gave accepted p95 0.6, 1.0, 1.6 and 2.5 s at the same throughput; 3 leaves
# room under the 1.5 s aimed at when the cores are busy elsewhere.
QUESTIONS_PER_CORE = 3
MAX_QUESTIONS = QUESTIONS_PER_CORE * (os.cpu_count() or 1)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    admin_token: str | None = None,
    questions: Path | None = None,
    reload_seconds: float | None = RELOAD_SECONDS,
    max_questions: int = MAX_QUESTIONS,
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
            are offered as examples when the collection answers them well; None offers none.
        reload_seconds: How often to look for a new index generation (written by `rag add`,
            `rag remove` or `rag index` in another process) and take it into service; None
            never looks.
        max_questions: How many questions may be in the server at once, answered or
            waiting; past it a question gets 503 at once, with `Retry-After`.

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
    app.state.feedback_rate = feedback.ClientRate()
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
        app.include_router(admin.router)
    app.include_router(api.router)
    app.include_router(feedback.router)
    app.include_router(pages.router)
    app.add_middleware(
        BodyLimit,
        max_bytes=MAX_BODY_BYTES,
        uploads={"/articles": admin.UPLOAD_BYTES} if admin_token else None,
    )
    app.add_middleware(QuestionQueue, limit=max_questions)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)

    @app.exception_handler(RagError)
    async def core_error(request: Request, exc: RagError) -> Response:
        # The core's errors, one place for every route: see web.errors.STATUSES.
        error = http_error(exc, request)
        if error is None:
            raise exc
        return await _http_error(request, error)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        if not request.url.path.startswith(("/docs", "/redoc")):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
        return response

    return app


def _wants_error_page(request: Request) -> bool:
    return not request.url.path.startswith("/ask") and not pages.prefers_json(request, default=True)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        # FastAPI's words for a body it could not decode; say what to send instead.
        exc = StarletteHTTPException(400, UNREADABLE_BODY)
    if not _wants_error_page(request):
        return await http_exception_handler(request, exc)
    detail = exc.detail if isinstance(exc.detail, str) else error_message(exc.detail)
    return pages.error_page(request, exc.status_code, detail)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not _wants_error_page(request):
        return JSONResponse({"detail": plain_errors(exc.errors())}, status_code=422)
    return pages.error_page(request, 422, error_message(exc.errors()))


def _log_progress() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name in ("web", "rag", "embeddings"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)


def default_app() -> FastAPI:
    """The app over the default collection and index (`$RAG_INDEX_DIR`, else the cache),
    with the admin API when `$RAG_ADMIN_TOKEN` is set and example questions from the Q&A
    file `$RAG_QUESTIONS` names, if any.

    For `uvicorn --factory web.app:default_app`.

    Returns:
        The FastAPI app; the index loads in the background once it starts.
    """
    _log_progress()
    questions = os.environ.get(QUESTIONS_ENV)
    return create_app(
        Settings(),
        admin_token=os.environ.get(ADMIN_ENV) or None,
        questions=Path(questions) if questions else None,
    )


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    questions: Path | None = None,
    max_questions: int = MAX_QUESTIONS,
    batching: bool = True,
) -> None:
    """Serve the web app with uvicorn until interrupted, printing its address and how many
    questions it holds at once. With
    `$RAG_ADMIN_TOKEN` set, articles can be added and removed over HTTP with that token.

    Args:
        settings: Where the collection and index are.
        host: The interface to listen on.
        port: The port.
        questions: A Q&A file to take example questions from; None offers none.
        max_questions: Questions in the server at once (see `create_app`).
        batching: Questions that arrive while the model runs share its next run; off, each
            runs alone (see `embeddings.set_batching`).
    """
    _log_progress()
    set_batching(batching)
    shown = "localhost" if host in ("0.0.0.0", "::") else f"[{host}]" if ":" in host else host
    print(
        f"Serving on http://{shown}:{port}/ (API docs at /docs); at most {max_questions}"
        " questions at once, answered or waiting (more get 503 with Retry-After); Ctrl+C stops.",
        flush=True,
    )
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
    app = create_app(settings, admin_token=token, questions=questions, max_questions=max_questions)
    uvicorn.run(app, host=host, port=port)
