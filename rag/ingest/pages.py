"""Saved news pages (HTML, through trafilatura) and feeds (RSS and Atom, through feedparser)."""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import re

from rag.ingest.articles import build_article, byline_line, parse_date
from rag.text import slugify, squash
from rag.types import Article

HTML_SUFFIXES = {".html", ".htm"}
FEED_SUFFIXES = {".rss", ".atom", ".xml"}
MIN_TEXT_CHARS = 80
_BLOCKS = re.compile(r"</(?:p|div|li|h[1-6]|blockquote|tr)>|<br\s*/?>", re.IGNORECASE)


def read_html(data: bytes, source: str, warnings: list[str]) -> list[Article]:
    """A saved news page's main text, title, author and date, without menus and footers.

    Args:
        data: The page's HTML, in the encoding it declares (UTF-8 when it declares none).
        source: Where it came from, for messages.
        warnings: Where to add why nothing was found.

    Returns:
        The article, or nothing when the page holds no main text.
    """
    import trafilatura

    found = trafilatura.bare_extraction(
        data,
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        favor_precision=True,
    )
    # A page without an article still yields its menu's words: a line or two is not a story.
    if found is None or len(squash(found.text or "")) < MIN_TEXT_CHARS:
        warnings.append(f"{source}: skipped, no article text found in the page")
        return []
    title = squash(found.title or "")
    if not title:
        warnings.append(f"{source}: skipped, the page has no title")
        return []
    paragraphs = [squash(line) for line in found.text.splitlines() if line.strip()]
    if paragraphs and paragraphs[0] == title:
        paragraphs = paragraphs[1:]  # the page's own heading, already the title
    if not paragraphs:
        warnings.append(f"{source}: skipped, the page holds a title but no text")
        return []
    author = squash(found.author) if found.author else None
    date = parse_date(found.date) if found.date else None
    return [
        build_article(
            title=title,
            paragraphs=paragraphs,
            source=source,
            author=author,
            date=date,
            url=found.url or None,
            byline=byline_line(author, date),
        )
    ]


def _paragraphs(html: str) -> list[str]:
    # Feed content is HTML already cleaned by feedparser: block ends become paragraph breaks.
    import lxml.html

    marked = _BLOCKS.sub(lambda m: m.group(0) + "\n\n", html)
    try:
        text = lxml.html.fragment_fromstring(marked, create_parent="div").text_content()
    except Exception:  # noqa: BLE001 - an unreadable fragment is read as plain text
        text = re.sub(r"<[^>]+>", " ", html)
    return [squash(p) for p in re.split(r"\n\s*\n", text) if squash(p)]


def _feed_author(value: str) -> str | None:
    # RSS writes an author as an address with the name in brackets: "news@x.org (Pia Lind)".
    value = squash(value)
    if "@" in value:
        name, _ = email.utils.parseaddr(value)
        return squash(name) or value
    return value or None


def _entry_id(title: str, key: str | None) -> str | None:
    # Stable across re-reads of the feed, and distinct for two feeds' entries of one title.
    if not key:
        return None
    return f"{slugify(title)}-{hashlib.sha256(key.encode()).hexdigest()[:6]}"


def read_feed(data: bytes, source: str, warnings: list[str]) -> list[Article]:
    """One article per entry of an RSS or Atom feed, with its link as url and its date.

    An entry that carries only a summary is indexed as that summary, and its byline says so.

    Args:
        data: The feed's bytes.
        source: Where it came from, for messages.
        warnings: Where to add the entries that were skipped and why.

    Returns:
        The articles.
    """
    import feedparser

    feed = feedparser.parse(data)
    if not feed.entries:
        reason = f" ({feed.bozo_exception})" if feed.get("bozo") else ""
        warnings.append(f"{source}: skipped, not a feed with entries{reason}")
        return []
    articles = []
    for number, entry in enumerate(feed.entries, start=1):
        where = f"{source}: entry {number}"
        contents = [c.get("value", "") for c in entry.get("content", [])]
        body = max(contents, key=len, default="")
        summary_only = not body.strip()
        paragraphs = _paragraphs(body or entry.get("summary", ""))
        title = squash(entry.get("title", ""))
        if not title or not paragraphs:
            warnings.append(f"{where}: skipped, no {'title' if not title else 'text'}")
            continue
        parsed = entry.get("published_parsed") or entry.get("updated_parsed")
        date = dt.date(*parsed[:3]) if parsed else None
        author = _feed_author(entry.get("author", ""))
        link = entry.get("link") or None
        articles.append(
            build_article(
                title=title,
                paragraphs=paragraphs,
                source=where,
                article_id=_entry_id(title, entry.get("id") or link),
                author=author,
                date=date,
                url=link,
                byline=byline_line(author, date, ["Summary from the feed"] if summary_only else ()),
            )
        )
    return articles
