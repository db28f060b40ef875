"""Articles as the project holds them: built from a record, a page or a feed entry."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.text import slugify, squash
from rag.types import Article, Section


@dataclass(frozen=True)
class Collection:
    """The articles read from some paths, what was skipped, and a fingerprint of the input."""

    articles: tuple[Article, ...]
    warnings: tuple[str, ...]
    fingerprint: str
    sources: tuple[str, ...]


def build_article(
    *,
    title: str,
    paragraphs: Sequence[str],
    source: str,
    article_id: str | None = None,
    author: str | None = None,
    date: dt.date | None = None,
    caption: str | None = None,
    url: str | None = None,
    byline: str | None = None,
    section_titles: Sequence[str | None] | None = None,
) -> Article:
    """Assemble an article; its text is the paragraphs joined by blank lines, then the byline.

    Args:
        title: The title as written.
        paragraphs: Body paragraphs as written.
        source: Where it came from, for messages.
        article_id: A given id; a slug of the title otherwise.
        author: The byline's author.
        date: The publication date.
        caption: An image caption split off the first paragraph.
        url: The original address.
        byline: The byline line as written, quoted for questions about author and date.
        section_titles: One entry per paragraph: a title opens a new section there. With
            `None` the whole body is one untitled section.

    Returns:
        The article.
    """
    offsets: list[tuple[int, int]] = []
    position = 0
    for paragraph in paragraphs:
        offsets.append((position, position + len(paragraph)))
        position += len(paragraph) + 2
    body = "\n\n".join(paragraphs)
    text, byline_span = body, None
    if byline:
        text = f"{body}\n\n{byline}"
        byline_span = (len(body) + 2, len(text))
    sections: list[Section] = []
    if section_titles:
        for (start, end), heading in zip(offsets, section_titles, strict=True):
            if heading is not None or not sections:
                sections.append(Section(heading, start, end))
            else:
                sections[-1] = Section(sections[-1].title, sections[-1].start, end)
    else:
        sections.append(Section(None, 0, len(body)))
    return Article(
        id=article_id or slugify(title),
        title=squash(title),
        text=text,
        body_end=len(body),
        paragraphs=tuple(offsets),
        sections=tuple(sections),
        author=author,
        date=date,
        caption=caption,
        url=url,
        byline=byline_span,
        source=source,
    )


def paragraphs_of(text: str) -> list[str]:
    """The paragraphs of a plain text: blocks between blank lines, stripped."""
    return [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def parse_date(value: object) -> dt.date | None:
    """Read a publication date as feeds and exports write it.

    ISO 8601 (`2022-11-09`, with or without a time), RFC 2822 (`Wed, 09 Nov 2022 10:00:00
    +0000`) and common written forms (`2022/11/09`, `Nov 9, 2022`, `9 November 2022`) are
    read; a slashed date with the day or month first (`09/11/2022`) is read month first.

    Args:
        value: The date as found in a record.

    Returns:
        The date, or None when it cannot be read as one.
    """
    text = str(value).strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(text).date()
    except (TypeError, ValueError, IndexError):
        pass
    from dateutil import parser

    try:
        return parser.parse(text, fuzzy=False).date()
    except (ValueError, OverflowError, parser.ParserError):
        return None


def article_from_record(record: object, source: str) -> tuple[Article | None, str | None]:
    """Read one JSON article record: `title` and `text`, optional `id`, `author`, `date`, `url`.

    Args:
        record: The decoded JSON value.
        source: Where it came from, for messages.

    Returns:
        (the article, None), or (None, why it was skipped). An unreadable date is left out
        and reported in the article's place as `(article, "date")`.
    """
    if not isinstance(record, dict):
        return None, "a record must be a JSON object"
    title, body = record.get("title"), record.get("text")
    if not isinstance(title, str) or not title.strip():
        return None, "no 'title'"
    if not isinstance(body, str) or not body.strip():
        return None, "no 'text'"
    date = parse_date(record["date"]) if record.get("date") else None
    author = str(record["author"]).strip() if record.get("author") else None
    article = build_article(
        title=title,
        paragraphs=paragraphs_of(body),
        source=source,
        article_id=str(record["id"]) if record.get("id") else None,
        author=author,
        date=date,
        url=str(record["url"]) if record.get("url") else None,
        # The author and date become a byline line after the body, as in a feed export,
        # so that questions about them are answered by quoting it.
        byline=byline_line(author, date),
    )
    return article, "date" if record.get("date") and date is None else None


def byline_line(author: str | None, date: dt.date | None, extra: Sequence[str] = ()) -> str | None:
    """The byline line quoted for questions about an article's author and date, as a feed
    export writes it: `Author: NAME | Date: YYYY-MM-DD`, then any extra parts.

    Returns:
        The line, or None when there is nothing to say.
    """
    parts = [f"Author: {author}"] if author else []
    parts += [f"Date: {date.isoformat()}"] if date else []
    parts += list(extra)
    return " | ".join(parts) or None
