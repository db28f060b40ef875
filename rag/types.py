"""The core types: articles, chunks, passages, citations and answers, all frozen."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Section:
    """A titled part of an article (a digest item); offsets index `Article.text`."""

    title: str | None
    start: int
    end: int


@dataclass(frozen=True)
class Article:
    """One article as written in its source.

    `text` is what answers quote: the body paragraphs joined by blank lines, followed by the
    byline line where the source has one. `body_end` is where the body stops.
    """

    id: str
    title: str
    text: str
    body_end: int
    paragraphs: tuple[tuple[int, int], ...]
    sections: tuple[Section, ...]
    author: str | None = None
    date: dt.date | None = None
    caption: str | None = None
    url: str | None = None
    byline: tuple[int, int] | None = None
    source: str = ""

    @property
    def body(self) -> str:
        """The body text, without the byline."""
        return self.text[: self.body_end]


@dataclass(frozen=True)
class Chunk:
    """A run of whole sentences of one article section, small enough for the model's window."""

    id: int
    article_id: str
    section: int
    paragraph: int
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its score, rank and article."""

    chunk: Chunk
    article: Article
    score: float
    rank: int


@dataclass(frozen=True)
class Citation:
    """Where a quote stands: the article and the character offsets in its text."""

    article_id: str
    title: str
    author: str | None
    date: dt.date | None
    start: int
    end: int
    span_start: int | None = None
    span_end: int | None = None


@dataclass(frozen=True)
class AnswerSentence:
    """One quoted sentence of an answer, with the short answer inside it where one was found.

    `text` equals the first citation's article text at its offsets; further citations are other
    articles that carry the same sentence.
    """

    text: str
    citations: tuple[Citation, ...]
    score: float
    span: str | None = None


@dataclass(frozen=True)
class Timings:
    """Milliseconds spent in each step of answering."""

    retrieve_ms: float
    answer_ms: float
    total_ms: float


@dataclass(frozen=True)
class Answer:
    """What the reader gets back for a question."""

    question: str
    answered: bool
    confidence: float
    sentences: tuple[AnswerSentence, ...]
    passages: tuple[Passage, ...]
    timings: Timings
    kind: str = "factoid"
    reason: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    band: str | None = None  # `answered`, `probably` or `not sure`: the reader's answers only
