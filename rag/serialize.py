"""Plain-data (JSON-ready) forms of answers and articles, for the command line, web and eval."""

from __future__ import annotations

from typing import Any

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


def answer_to_dict(answer: Answer) -> dict[str, Any]:
    """An answer as plain data; every offset indexes its article's text.

    Args:
        answer: The answer.

    Returns:
        A JSON-ready dict.
    """
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
                "citations": [citation_to_dict(c) for c in s.citations],
            }
            for s in answer.sentences
        ],
        "passages": [passage_to_dict(p) for p in answer.passages],
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
        "sections": [{"title": s.title, "start": s.start, "end": s.end} for s in article.sections],
    }
    if with_text:
        data["text"] = article.text
        data["body_end"] = article.body_end
        data["paragraphs"] = [list(p) for p in article.paragraphs]
        data["byline"] = list(article.byline) if article.byline else None
    return data
