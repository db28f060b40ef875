"""A page of a collection's articles: newest first, filtered by title words, dates and author."""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Mapping
from dataclasses import dataclass

from rag.errors import QuestionError
from rag.index.tables import bylines, titles
from rag.text import terms
from rag.types import Article

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class ArticleFilter:
    """Which articles to list, and which page of them."""

    words: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    author: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    @property
    def filtered(self) -> bool:
        """Whether any filter (not only paging) is set."""
        return bool(self.words or self.date_from or self.date_to or self.author)


@dataclass(frozen=True)
class ArticlePage:
    """One page of the articles that pass a filter, newest first."""

    articles: tuple[Article, ...]
    total: int
    collection: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        """The offset of the next page, or None on the last."""
        following = self.offset + self.limit
        return following if following < self.total else None

    @property
    def previous_offset(self) -> int | None:
        """The offset of the previous page, or None on the first."""
        return max(self.offset - self.limit, 0) if self.offset > 0 else None


def list_articles(articles: Mapping[str, Article], wanted: ArticleFilter) -> ArticlePage:
    """A page of a collection's articles, newest first (undated ones last, in collection
    order), read from the index only for the page: dates, authors and titles are compared
    without reading the articles' texts.

    Args:
        articles: An index's articles.
        wanted: The filters, the page size (1 to `MAX_LIMIT`) and where the page starts.

    Returns:
        The page, with how many articles pass the filters and how many there are in all.

    Raises:
        QuestionError: A limit or offset out of range, dates out of order, or title words
            with nothing to search for; the message says what to send instead.
    """
    if not 1 <= wanted.limit <= MAX_LIMIT:
        raise QuestionError(f"limit must be from 1 to {MAX_LIMIT}, not {wanted.limit}.")
    if wanted.offset < 0:
        raise QuestionError(f"offset must be 0 or more, not {wanted.offset}.")
    if wanted.date_from and wanted.date_to and wanted.date_from > wanted.date_to:
        raise QuestionError(
            f"date_from ({wanted.date_from}) is after date_to ({wanted.date_to}): swap them."
        )
    asked = set(terms(wanted.words)) if wanted.words and wanted.words.strip() else set()
    if wanted.words and wanted.words.strip() and not asked:
        raise QuestionError(
            f"The title words {wanted.words!r} hold nothing to search for: use words of the"
            " titles, such as names or places."
        )
    author = wanted.author.casefold().strip() if wanted.author else ""
    rows = []
    for row, (article_id, writer, date) in enumerate(bylines(articles)):
        if author and (not writer or author not in writer.casefold()):
            continue
        if (wanted.date_from or wanted.date_to) and date is None:
            continue
        if wanted.date_from and date < wanted.date_from:
            continue
        if wanted.date_to and date > wanted.date_to:
            continue
        rows.append((date or dt.date.min, -row, article_id))
    if asked:
        kept = {i for i, title in titles(articles) if asked <= set(terms(title))}
        rows = [r for r in rows if r[2] in kept]
    rows.sort(reverse=True)
    shown = rows[wanted.offset : wanted.offset + wanted.limit]
    return ArticlePage(
        articles=tuple(articles[article_id] for _, _, article_id in shown),
        total=len(rows),
        collection=len(articles),
        offset=wanted.offset,
        limit=wanted.limit,
    )


def newest(articles: Mapping[str, Article], count: int) -> list[Article]:
    """The newest articles, as `list_articles` orders them, without sorting them all.

    Args:
        articles: An index's articles.
        count: How many.

    Returns:
        Up to `count` articles, newest first.
    """
    rows = (
        (date or dt.date.min, -row, article_id)
        for row, (article_id, _, date) in enumerate(bylines(articles))
    )
    return [articles[article_id] for _, _, article_id in heapq.nlargest(count, rows)]
