"""Plain-data (JSON-ready) forms of answers and articles, for the command line, web and eval."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields, is_dataclass
from pathlib import PurePath
from typing import Any
from urllib.parse import urlsplit

from rag.types import Answer, Article, Citation, Passage

# The order of the keys of each plain form; a field added to a core type comes after these.
ANSWER_KEYS = (
    "question",
    "answered",
    "confidence",
    "band",
    "kind",
    "reason",
    "sentences",
    "sources",
    "passages",
    "timings",
)
ANSWER_OMITS = ("notes",)  # fields of `Answer` that its plain form leaves out
SENTENCE_KEYS = ("text", "span", "score", "citations")
SOURCE_KEYS = ("number", "article_id", "title", "author", "date")
ARTICLE_KEYS = (
    "id",
    "title",
    "author",
    "date",
    "caption",
    "url",
    "source",
    "sections",
    "text",
    "body_end",
    "paragraphs",
    "byline",
)
ARTICLE_TEXT_KEYS = ("text", "body_end", "paragraphs", "byline")  # not in the short form


def plain(value: Any) -> Any:
    """A core value as plain data: a dataclass as a dict of its fields in declaration order,
    a date as YYYY-MM-DD, a tuple as a list, a path as text.

    Args:
        value: A core dataclass, or any value one holds.

    Returns:
        JSON-ready data.
    """
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    return value


def ordered(data: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The dict with `keys` first, in that order, then its other keys as they were.

    Args:
        data: A plain form.
        keys: The keys that come first.

    Returns:
        A new dict with the same items.
    """
    return {**{key: data[key] for key in keys if key in data}, **data}


def citation_to_dict(citation: Citation) -> dict[str, Any]:
    """A citation as plain data."""
    return plain(citation)


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
        A JSON-ready dict: the answer's fields, with the answer sentences, each citation with
        its source number, the numbered sources, and the passages, each with the ranges of it
        that the answer quotes.
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
    sentences = [
        ordered(
            {**plain(s), "citations": [_numbered(c, numbers) for c in s.citations]},
            SENTENCE_KEYS,
        )
        for s in answer.sentences
    ]
    others = {
        f.name: plain(getattr(answer, f.name))
        for f in fields(answer)
        if f.name not in ("sentences", "passages", *ANSWER_OMITS)
    }
    return ordered(
        {
            **others,
            "sentences": sentences,
            "sources": [{k: source[k] for k in SOURCE_KEYS} for source in sources.values()],
            "passages": passages,
        },
        ANSWER_KEYS,
    )


def article_to_dict(article: Article, *, with_text: bool = True) -> dict[str, Any]:
    """An article as plain data.

    Args:
        article: The article.
        with_text: Keep its text and the offsets into it (else the short form, for lists).

    Returns:
        Its fields, `source` said in a word (see `source_label`).
    """
    data = {**plain(article), "source": source_label(article)}
    if not with_text:
        data = {k: v for k, v in data.items() if k not in ARTICLE_TEXT_KEYS}
    return ordered(data, ARTICLE_KEYS)


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
