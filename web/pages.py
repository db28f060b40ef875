"""The HTML pages: the question page, the article list and article pages, error pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError

from rag.answer.bands import WORDING
from rag.errors import RagError
from rag.examples import EXAMPLES
from rag.feedback import Feedback
from rag.listing import ArticlePage, newest
from rag.types import Article
from web.deps import State
from web.errors import error_message, http_error
from web.requests import AskQuery
from web.schemas import answer_out, article_out, article_url
from web.state import AppState, View

HERE = Path(__file__).parent


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


def prefers_json(request: Request, *, default: bool) -> bool:
    """Whether the client asks for JSON rather than HTML.

    Args:
        request: The request.
        default: The answer when its `Accept` header names both or neither.

    Returns:
        True for JSON.
    """
    accept = request.headers.get("accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return True
    if "text/html" in accept and "application/json" not in accept:
        return False
    return default


def passage_runs(passage: BaseModel) -> list[tuple[str | None, list[tuple[str, bool]]]]:
    """Cut a passage into its sentences, each with the id a verdict names it by, and the text
    between them; each cut into pieces highlighted where the answer quotes it.

    Args:
        passage: The API form of a passage (`PassageOut`).

    Returns:
        (`ARTICLE_ID:START-END` or None, pieces) pairs whose pieces join to the passage text.
    """
    p: Any = passage
    runs: list[tuple[str | None, list[tuple[str, bool]]]] = []
    position = p.start
    for start, end in [*p.sentences, (p.end, p.end)]:
        start, end = max(start, position), min(end, p.end)
        if start > position:
            runs.append(
                (
                    None,
                    marked_pieces(
                        p.text[position - p.start : start - p.start], position, p.highlights
                    ),
                )
            )
        if end > start:
            text = p.text[start - p.start : end - p.start]
            runs.append((f"{p.article_id}:{start}-{end}", marked_pieces(text, start, p.highlights)))
            position = end
    return runs


def _long_date(value: dt.date | None) -> str:
    return f"{value.day} {value:%B %Y}" if value else "no date"


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True
    )
    env.globals["marked"] = marked_pieces
    env.globals["band_wording"] = WORDING
    env.globals["passage_runs"] = passage_runs
    env.globals["article_url"] = article_url
    env.filters["longdate"] = _long_date
    return Jinja2Templates(env=env)


templates = _templates()


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    """A page rendered from a template.

    Args:
        request: The request.
        name: The template.
        context: Its variables.
        status: The HTTP status.

    Returns:
        The HTML response (its content depends on `Accept`, and says so).
    """
    return templates.TemplateResponse(
        request, name, context, status_code=status, headers={"Vary": "Accept"}
    )


def error_page(request: Request, status: int, message: str) -> Response:
    """The page of a failed request.

    Args:
        request: The request.
        status: The HTTP status.
        message: What went wrong.

    Returns:
        The HTML response.
    """
    return page(request, "error.html", {"status": status, "message": message}, status)


def article_list_page(
    request: Request, params: BaseModel, found: ArticlePage, links: dict[str, str | None]
) -> Response:
    """A page of the article list, with its filters, counts and links to the pages around it.

    Args:
        request: The request.
        params: The query (`ArticlesQuery`), to fill the filter form.
        found: The page.
        links: `next` and `previous` addresses, or None.

    Returns:
        The HTML response.
    """
    context = {
        "form": params.model_dump(mode="json"),
        "page": found,
        "articles": [article_out(a, with_text=False) for a in found.articles],
        "links": links,
        "filtered": params.wanted().filtered,
    }
    return page(request, "articles.html", context)


def feedback_page(request: Request, saved: Feedback) -> Response:
    """The page after the answer page's form sent a verdict.

    Args:
        request: The request.
        saved: The verdict as stored.

    Returns:
        The HTML response (201).
    """
    return page(request, "feedback.html", {"saved": saved}, 201)


def article_page(
    request: Request, view: View, article: Article, mark: tuple[int, int] | None
) -> Response:
    """An article's page: every sentence anchored, a quote highlighted.

    Args:
        request: The request.
        view: The index in service.
        article: The article.
        mark: The range to highlight (as `#quote`), if any.

    Returns:
        The HTML response.
    """
    blocks = article_blocks(article, view.engine.index.article_sentences(article.id), mark)
    return page(request, "article.html", {"article": article, "blocks": blocks, "mark": mark})


router = APIRouter()


@router.get("/", include_in_schema=False)
def question(request: Request, state: State) -> Response:
    """The question page; `/?q=...` answers on the server, no JavaScript needed."""
    return question_page(request, state)


def question_page(request: Request, state: AppState) -> Response:
    """The question page, with the answer to the question in the query string, if any, or
    why there is none (the form's filters kept in either case).

    Args:
        request: The request.
        state: The app's state.

    Returns:
        The HTML response: 422 for a question the form or the core refuses, 503 while there
        is no index in service.
    """
    fields = {k: v for k, v in request.query_params.items() if k in AskQuery.model_fields}
    kept = {k: v for k, v in fields.items() if v.strip() and (k, v.strip()) != ("top_k", "5")}
    if kept.get("q") and kept != fields:
        # The form without JavaScript sends its empty filters too; share the short address.
        return RedirectResponse(f"/?{urlencode(kept)}", status_code=303)
    view = state.view
    context: dict[str, Any] = {
        "form": fields,
        "state": state,
        # Without example questions, the newest articles as topics (see index.html).
        "topics": newest(view.engine.index.articles, EXAMPLES)
        if view and not view.examples
        else [],
        "answer": None,
        "error": None,
        "filtered": any(fields.get(k) for k in ("date_from", "date_to", "author")),
    }
    if not fields.get("q", "").strip():
        return page(request, "index.html", context)
    try:
        params = AskQuery.model_validate(fields)
    except ValidationError as e:
        return page(request, "index.html", {**context, "error": error_message(e.errors())}, 422)
    if view is None:
        return page(request, "index.html", {**context, "error": state.not_ready()}, 503)
    try:
        context["answer"] = answer_out(view.ask(params.q, params))
    except RagError as e:
        # Shown in the form, with the status the API gives it.
        error = http_error(e, request)
        if error is None:
            raise
        return page(request, "index.html", {**context, "error": str(e)}, error.status_code)
    return page(request, "index.html", context)
