"""The JSON API: answers, articles (HTML too, for browsers) and the service's health."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request, Response

from rag.listing import ArticlePage, list_articles
from rag.types import Article
from web import pages
from web.deps import Ready, State
from web.errors import BODY, BUSY
from web.requests import ArticlesQuery, AskQuery, AskRequest
from web.schemas import (
    AnswerOut,
    ArticleOut,
    ArticlePageOut,
    HealthOut,
    answer_out,
    article_out,
    article_page_out,
)
from web.state import View

router = APIRouter()


@router.post("/ask", response_model=AnswerOut, responses=BUSY | BODY, tags=["answers"])
def ask_post(body: AskRequest, view: Ready) -> Any:
    """Answer a question with quoted, cited sentences, or say the articles do not answer."""
    return answer_out(view.ask(body.question, body))


@router.get("/ask", response_model=AnswerOut, responses=BUSY, tags=["answers"])
def ask_get(params: Annotated[AskQuery, Query()], view: Ready) -> Any:
    """The same as `POST /ask`, with the question in `q`: `curl '.../ask?q=Who+...'`."""
    return answer_out(view.ask(params.q, params))


@router.get(
    "/articles",
    response_model=ArticlePageOut,
    responses={200: {"content": {"text/html": {}}}, **BUSY},
    tags=["articles"],
)
def articles(request: Request, params: Annotated[ArticlesQuery, Query()], view: Ready) -> Any:
    """A page of the articles, newest first, filtered by title words (`q`), dates and author:
    JSON with the counts and the next and previous pages' addresses, or HTML for browsers."""
    found = list_articles(view.engine.index.articles, params.wanted())
    links = page_links(params, found)
    if pages.prefers_json(request, default=True):
        return article_page_out(found, links)
    return pages.article_list_page(request, params, found, links)


def page_links(params: ArticlesQuery, found: ArticlePage) -> dict[str, str | None]:
    """The addresses of the pages before and after one, with the same filters.

    Args:
        params: The query of the page.
        found: The page.

    Returns:
        `next` and `previous`: `/articles?...`, or None where there is no such page.
    """
    kept = {
        k: v
        for k, v in params.model_dump(mode="json", exclude_defaults=True).items()
        if k != "offset"
    }

    def link(offset: int | None) -> str | None:
        if offset is None:
            return None
        query = urlencode({**kept, **({"offset": offset} if offset else {})})
        return f"/articles?{query}" if query else "/articles"

    return {"next": link(found.next_offset), "previous": link(found.previous_offset)}


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
    found = article_of(view, article_id)
    mark = highlight(found, hl)
    if pages.prefers_json(request, default=False):
        return article_out(found)
    return pages.article_page(request, view, found, mark)


@router.get("/healthz", response_model=HealthOut, tags=["service"])
def healthz(state: State, response: Response) -> HealthOut:
    """Whether the index is loaded (503 until it is), with its manifest."""
    health = state.health()
    response.status_code = 200 if health.ready else 503
    return health


def article_of(view: View, article_id: str) -> Article:
    """An article of the index in service.

    Args:
        view: The index in service.
        article_id: The article's id.

    Returns:
        The article.

    Raises:
        HTTPException: 404, no article has that id.
    """
    found = view.engine.index.articles.get(article_id)
    if found is None:
        raise HTTPException(404, detail=f"No article with id {article_id!r}.")
    return found


def highlight(article: Article, hl: str | None) -> tuple[int, int] | None:
    """The range of an article to highlight.

    Args:
        article: The article.
        hl: `start-end`, offsets in its text, or None.

    Returns:
        (start, end), or None when there is nothing to highlight.

    Raises:
        HTTPException: 422, the range is not inside the article's text.
    """
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
