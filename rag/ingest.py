"""Read collections (feed exports, JSON Lines, plain text, Markdown) into articles."""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.errors import CollectionError
from rag.feed import RawArticle, looks_like_feed, parse_feed
from rag.pages import FEED_SUFFIXES, HTML_SUFFIXES, byline_line, read_feed, read_html
from rag.sentences import split_sentences
from rag.text import slugify, squash
from rag.types import Article, Section

PARSER_VERSION = 3
MAX_FILE_BYTES = 32 * 2**20
SUFFIXES = {".txt", ".md", ".markdown", ".jsonl", ".ndjson"} | HTML_SUFFIXES | FEED_SUFFIXES
DEFAULT_COLLECTION = Path(__file__).parent / "data" / "articles.txt"


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


def _from_feed(raw: RawArticle, source: str) -> Article:
    section_titles = None
    if raw.digest:
        section_titles = []
        for paragraph in raw.paragraphs:
            first = split_sentences(paragraph)[:1]
            section_titles.append(paragraph[first[0][0] : first[0][1]] if first else None)
    return build_article(
        title=raw.title,
        paragraphs=raw.paragraphs,
        source=source,
        author=raw.author,
        date=raw.date,
        caption=raw.caption,
        byline=raw.byline,
        section_titles=section_titles,
    )


def _paragraphs(text: str) -> list[str]:
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
        paragraphs=_paragraphs(body),
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


def _from_jsonl(text: str, source: str, warnings: list[str]) -> list[Article]:
    articles = []
    unread_dates: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            warnings.append(f"{where}: skipped, not valid JSON ({e.msg}, column {e.colno})")
            continue
        article, problem = article_from_record(record, where)
        if article is None:
            warnings.append(f"{where}: skipped, {problem}")
            continue
        if problem == "date":
            unread_dates.append(f"{number} ({record['date']!r})")
        articles.append(article)
    if unread_dates:
        # One line for the file, not one per record: a whole export often shares one format.
        shown = ", ".join(unread_dates[:3]) + (", ..." if len(unread_dates) > 3 else "")
        warnings.append(
            f"{source}: {len(unread_dates)} dates could not be read and were left out, on"
            f" lines {shown}; write them as YYYY-MM-DD"
        )
    return articles


def _from_plain(text: str, source: str, *, markdown: bool) -> list[Article]:
    lines = text.strip().splitlines()
    title = lines[0].lstrip("#").strip() if markdown else lines[0].strip()
    paragraphs: list[str] = []
    headings: list[str | None] = []
    pending: str | None = None
    for block in _paragraphs("\n".join(lines[1:])):
        if markdown and block.startswith("#") and "\n" not in block:
            pending = block.lstrip("#").strip()
            continue
        paragraphs.append(block)
        headings.append(pending)
        pending = None
    if not paragraphs:
        return []
    return [
        build_article(
            title=title,
            paragraphs=paragraphs,
            source=source,
            section_titles=headings if markdown and any(headings) else None,
        )
    ]


def read_file(path: Path, warnings: list[str]) -> list[Article]:
    """Read one file; a file that cannot be used adds a warning naming it and gives nothing.

    Args:
        path: A .txt, .md or .jsonl file.
        warnings: Where to add what was skipped and why.

    Returns:
        The articles in the file.
    """
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            warnings.append(
                f"{path}: skipped, {size / 2**20:.0f} MB is over the {MAX_FILE_BYTES // 2**20} MB"
                " a file may hold; split it into smaller files"
            )
            return []
        data = path.read_bytes()
    except OSError as e:
        warnings.append(f"{path}: skipped, cannot be read ({e.strerror or e})")
        return []
    return read_data(data, path.suffix, str(path), warnings)


def read_data(data: bytes, suffix: str, source: str, warnings: list[str]) -> list[Article]:
    """Read the content of one file, its format told by the file name's suffix.

    Args:
        data: The file's bytes.
        suffix: Its suffix, such as `.html` or `.jsonl` (any case).
        source: Where it came from, for messages.
        warnings: Where to add what was skipped and why.

    Returns:
        The articles in it.
    """
    if b"\x00" in data[:8192]:
        warnings.append(f"{source}: skipped, binary file")
        return []
    suffix = suffix.lower()
    if suffix in FEED_SUFFIXES | HTML_SUFFIXES:
        # Pages and feeds declare their own encoding; their libraries read it.
        before = len(warnings)
        read = read_feed if suffix in FEED_SUFFIXES else read_html
        articles = read(data, source, warnings)
        if not articles and len(warnings) == before:
            warnings.append(f"{source}: skipped, no article found in it")
        return articles
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        warnings.append(f"{source}: skipped, not UTF-8 text (byte {e.start}); convert it to UTF-8")
        return []
    if not text.strip():
        warnings.append(f"{source}: skipped, empty file")
        return []
    if suffix in {".jsonl", ".ndjson"}:
        articles = _from_jsonl(text, source, warnings)
    elif suffix in {".md", ".markdown"}:
        articles = _from_plain(text, source, markdown=True)
    elif looks_like_feed(text):
        articles = []
        for raw in parse_feed(text):
            warnings += [f"{source}: {raw.title}: {w}" for w in raw.warnings]
            articles.append(_from_feed(raw, source))
    else:
        articles = _from_plain(text, source, markdown=False)
    if not articles:
        warnings.append(f"{source}: skipped, no article found in it")
    return articles


def expand_paths(paths: Iterable[str | Path], warnings: list[str] | None = None) -> list[Path]:
    """Turn files and folders into the sorted list of collection files.

    Folders are searched recursively, following symbolic links to other folders; a link back
    to a folder already searched (a loop) is skipped with a warning.

    Args:
        paths: Files or folders; folders are searched for known suffixes.
        warnings: Where to add what was skipped and why.

    Returns:
        The files to read.

    Raises:
        CollectionError: A path does not exist.
    """
    warnings = warnings if warnings is not None else []
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise CollectionError(f"No such file or folder: {path}")
        if not path.is_dir():
            files.append(path)
            continue
        visited: set[tuple[int, int]] = set()
        found: list[Path] = []
        for folder, names, filenames in os.walk(path, followlinks=True):
            stat = os.stat(folder)
            if (stat.st_dev, stat.st_ino) in visited:
                warnings.append(f"{folder}: skipped, a link back to a folder already read")
                names.clear()
                continue
            visited.add((stat.st_dev, stat.st_ino))
            names.sort()
            found += [
                Path(folder) / name
                for name in filenames
                if Path(name).suffix.lower() in SUFFIXES and (Path(folder) / name).is_file()
            ]
        files += sorted(found)
    return files


def fingerprint(files: Sequence[Path]) -> str:
    """A digest of the collection's content (not its paths), and of the parser's version."""
    digest = hashlib.sha256(f"parser:{PARSER_VERSION}".encode())
    for content in sorted(hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()):
        digest.update(content.encode())
    return digest.hexdigest()[:32]


def load_collection(paths: Sequence[str | Path] | None = None) -> Collection:
    """Read every article of the given paths (the shipped collection when none are given).

    Args:
        paths: Files or folders.

    Returns:
        The collection, with a warning for every file or record that was skipped (returned,
        not logged: the caller says what was skipped as it reports).

    Raises:
        CollectionError: A path is missing, nothing could be read, or two articles share an id.
    """
    warnings: list[str] = []
    files = expand_paths(paths or [DEFAULT_COLLECTION], warnings)
    articles: list[Article] = []
    seen: dict[str, Article] = {}
    for path in files:
        for article in read_file(path, warnings):
            if article.id in seen:
                other = seen[article.id]
                raise CollectionError(
                    f"Two articles have the id {article.id!r}: {other.title!r} in {other.source}"
                    f" and {article.title!r} in {article.source}. Give one of them another id"
                    " or title."
                )
            seen[article.id] = article
            articles.append(article)
    if not articles:
        raise CollectionError(
            "No article could be read from "
            + ", ".join(str(p) for p in files or paths or [])
            + (". " + "; ".join(warnings) if warnings else "")
        )
    readable = [f for f in files if not any(w.startswith(f"{f}:") for w in warnings)]
    return Collection(
        tuple(articles), tuple(warnings), fingerprint(readable or files), tuple(map(str, files))
    )
