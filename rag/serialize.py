"""Plain-data (JSON-ready) forms of answers and articles, for the command line, web and eval."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any
from urllib.parse import urlsplit

from rag.types import Answer, Article, Citation, Passage


def citation_to_dict(citation: Citation) -> dict[str, Any]:
    """A citation as plain data."""
    return {
        "article_id": citation.article_id,
        "title": citation.title,
        "author": citation.author,
        "date": citation.date.isoformat() if citation.date else None,
        "start": citation.start,
        "end": citation.end,
        "span_start": citation.span_start,
        "span_end": citation.span_end,
    }


def passage_to_dict(passage: Passage) -> dict[str, Any]:
    """A passage as plain data, with its article's metadata."""
    article = passage.article
    return {
        "rank": passage.rank,
        "score": round(passage.score, 6),
        "article_id": article.id,
        "title": article.title,
        "author": article.author,
        "date": article.date.isoformat() if article.date else None,
        "start": passage.chunk.start,
        "end": passage.chunk.end,
        "text": passage.chunk.text,
        "sentences": [list(s) for s in passage.chunk.sentences],
    }


def source_numbers(answer: Answer) -> dict[str, int]:
    """Number the cited articles 1, 2, ... in the order the answer first cites them.

    Args:
        answer: The answer.

    Returns:
        Article id → its source number.
    """
    numbers: dict[str, int] = {}
    for sentence in answer.sentences:
        for citation in sentence.citations:
            numbers.setdefault(citation.article_id, len(numbers) + 1)
    return numbers


def _numbered(citation: Citation, numbers: dict[str, int]) -> dict[str, Any]:
    return {**citation_to_dict(citation), "number": numbers[citation.article_id]}


def _merge(ranges: Iterable[tuple[int, int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(end, merged[-1][1])
        else:
            merged.append([start, end])
    return merged


def answer_to_dict(answer: Answer) -> dict[str, Any]:
    """An answer as plain data; every offset indexes its article's text.

    Args:
        answer: The answer.

    Returns:
        A JSON-ready dict: the answer sentences, each citation with its source number, the
        numbered sources, and the passages, each with the ranges of it that the answer quotes.
    """
    numbers = source_numbers(answer)
    cited = [c for s in answer.sentences for c in s.citations]
    sources = {}
    for c in cited:
        sources.setdefault(c.article_id, _numbered(c, numbers))
    passages = []
    for p in answer.passages:
        data = passage_to_dict(p)
        data["highlights"] = _merge(
            (max(c.start, p.chunk.start), min(c.end, p.chunk.end))
            for c in cited
            if c.article_id == p.article.id and c.start < p.chunk.end and c.end > p.chunk.start
        )
        passages.append(data)
    return {
        "question": answer.question,
        "answered": answer.answered,
        "confidence": answer.confidence,
        "kind": answer.kind,
        "reason": answer.reason,
        "sentences": [
            {
                "text": s.text,
                "span": s.span,
                "score": s.score,
                "citations": [_numbered(c, numbers) for c in s.citations],
            }
            for s in answer.sentences
        ],
        "sources": [
            {k: source[k] for k in ("number", "article_id", "title", "author", "date")}
            for source in sources.values()
        ],
        "passages": passages,
        "timings": {
            "retrieve_ms": answer.timings.retrieve_ms,
            "answer_ms": answer.timings.answer_ms,
            "total_ms": answer.timings.total_ms,
        },
    }


def article_to_dict(article: Article, *, with_text: bool = True) -> dict[str, Any]:
    """An article as plain data."""
    data: dict[str, Any] = {
        "id": article.id,
        "title": article.title,
        "author": article.author,
        "date": article.date.isoformat() if article.date else None,
        "caption": article.caption,
        "url": article.url,
        "source": source_label(article),
        "sections": [{"title": s.title, "start": s.start, "end": s.end} for s in article.sections],
    }
    if with_text:
        data["text"] = article.text
        data["body_end"] = article.body_end
        data["paragraphs"] = [list(p) for p in article.paragraphs]
        data["byline"] = list(article.byline) if article.byline else None
    return data


def newest_first(articles: Iterable[Article]) -> list[Article]:
    """Articles by date, newest first; undated ones last, in collection order."""
    return sorted(articles, key=lambda a: a.date or dt.date.min, reverse=True)


def source_label(article: Article) -> str:
    """Where an article comes from, in a word: its site, else its file's name."""
    if article.url and (host := urlsplit(article.url).hostname):
        return host.removeprefix("www.")
    source = article.source.split("://")[-1] if "://" in article.source else article.source
    name = PurePath(source.rsplit(":", 1)[0] if ":" in source else source).name
    return name or "unknown source"
