"""Read collections (feed exports, JSON Lines, plain text, Markdown) into articles."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from rag.errors import CollectionError
from rag.ingest.articles import (
    Collection,
    article_from_record,
    build_article,
    paragraphs_of,
)
from rag.ingest.feed import RawArticle, looks_like_feed, parse_feed
from rag.ingest.pages import FEED_SUFFIXES, HTML_SUFFIXES, read_feed, read_html
from rag.sentences import split_sentences
from rag.settings import DEFAULT_COLLECTION
from rag.types import Article

PARSER_VERSION = 4
MAX_FILE_BYTES = 32 * 2**20
SUFFIXES = {".txt", ".md", ".markdown", ".jsonl", ".ndjson"} | HTML_SUFFIXES | FEED_SUFFIXES


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
    for block in paragraphs_of("\n".join(lines[1:])):
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
