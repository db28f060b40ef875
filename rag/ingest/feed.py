"""Parse the blog-feed export format of the default collection into articles."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from rag.ingest.articles import parse_date

BYLINE = re.compile(
    r"^(?:►\s*)?Author:\s*(?P<author>[^|]*?)\s*\|\s*Date:\s*(?P<date>[^|]*?)\s*(?:\|\s*Permalink\s*)?$"
)
READ_MORE = re.compile(r"\s*Read more of this post\s*$")
DIGEST_TITLE = re.compile(r"(?i)(you may have missed|\bdigest\b|\broundup\b|#\d+\s*$)")
# A caption glued to the first word: "Hisham al-HashimiA leading", "ISIS IraqIraq is", "Twitter
# IAFrench forces". The body starts at a capital that follows a letter without a space.
_GLUED = re.compile(r"(?<=[^\W\d_])(?=[A-Z][a-z]|[AI] [a-z])")
_MAX_CAPTION = 60
# Capitals inside a name are not a caption's end: McDonald, MacArthur, DeLuca, LaGuardia.
_NAME_PREFIXES = {"Mc", "Mac", "De", "Di", "Da", "La", "Le", "Van", "Von", "Du", "Fitz", "O'"}
_MAX_TITLE = 200


def looks_like_feed(text: str) -> bool:
    """Whether a text file is in the feed format (it has a byline or a 'Read more' line)."""
    return any(BYLINE.match(line.strip()) or READ_MORE.search(line) for line in text.splitlines())


@dataclass
class RawArticle:
    """An article as the feed lays it out, before it becomes an `Article`."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    caption: str | None = None
    byline: str | None = None
    author: str | None = None
    date: dt.date | None = None
    digest: bool = False
    warnings: list[str] = field(default_factory=list)


def split_caption(paragraph: str) -> tuple[str | None, str]:
    """Split an image caption glued to the first word of a paragraph.

    Args:
        paragraph: The first paragraph of an article.

    Returns:
        (caption or None, the paragraph without it).
    """
    for match in _GLUED.finditer(paragraph[: _MAX_CAPTION + 1]):
        caption = paragraph[: match.start()]
        if any(c in caption for c in '.,;:!?"“”'):
            return None, paragraph
        glued = caption.split()[-1].split("-")[-1] if caption.split() else ""
        if glued in _NAME_PREFIXES or (len(glued) < 3 and not glued.isupper()):
            continue
        if len(caption.split()) <= 6:
            return caption, paragraph[match.start() :]
    return None, paragraph


def _is_title(block: str, article: RawArticle | None) -> bool:
    if article is not None and not article.paragraphs:
        return False
    if "\n" in block or len(block) > _MAX_TITLE:
        return False
    return not re.search(r"[.!?:;,][\"”’']?\s*$", block)


def parse_feed(text: str) -> list[RawArticle]:
    """Split a feed export into articles.

    An article is a title line and its paragraphs, closed by a byline line, by a paragraph
    ending in `Read more of this post`, or by the next title line.

    Args:
        text: The whole file.

    Returns:
        The articles in file order.
    """
    articles: list[RawArticle] = []
    current: RawArticle | None = None
    for block in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")):
        block = block.strip("\n").rstrip()
        if not block.strip():
            continue
        byline = BYLINE.match(block.strip())
        if byline:
            if current is None:
                continue
            current.byline = block.strip().lstrip("►").strip()
            current.author = byline["author"].strip() or None
            current.date = parse_date(byline["date"])
            if byline["date"].strip() and current.date is None:
                current.warnings.append(f"unreadable date {byline['date']!r}")
            current = None
            continue
        if current is None or _is_title(block, current):
            current = RawArticle(title=block.strip(), digest=bool(DIGEST_TITLE.search(block)))
            articles.append(current)
            continue
        if not current.paragraphs:
            current.caption, block = split_caption(block)
        ended = READ_MORE.search(block)
        if ended:
            block = block[: ended.start()].rstrip()
        if block:
            current.paragraphs.append(block)
        if ended:
            current = None
    return [a for a in articles if a.paragraphs]
