"""Validated input and output schemas of the web API."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticUseDefault

from rag.answer.question import MAX_QUESTION_CHARS, MAX_TOP_K

MAX_AUTHOR_CHARS = 200


class AskOptions(BaseModel):
    """Filters and the number of passages, shared by every way of asking."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    top_k: int = Field(5, ge=1, le=MAX_TOP_K, description="How many supporting passages.")
    date_from: dt.date | None = Field(
        None, description="Only articles published on or after this day (YYYY-MM-DD)."
    )
    date_to: dt.date | None = Field(
        None, description="Only articles published on or before this day (YYYY-MM-DD)."
    )
    author: str | None = Field(
        None,
        max_length=MAX_AUTHOR_CHARS,
        description="Only articles whose author contains this text (any case).",
    )

    @field_validator("top_k", "date_from", "date_to", "author", mode="before")
    @classmethod
    def _blank_means_default(cls, value: Any) -> Any:
        # An empty field of an HTML form (`?date_from=`) means "not given".
        if isinstance(value, str) and not value.strip():
            raise PydanticUseDefault()
        return value

    @model_validator(mode="after")
    def _dates_in_order(self) -> AskOptions:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(
                f"date_from ({self.date_from}) is after date_to ({self.date_to}): swap them"
            )
        return self


def _not_blank(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise ValueError("the question is empty: type a question about the articles")
    return value


class AskRequest(AskOptions):
    """The body of `POST /ask`."""

    question: str = Field(
        min_length=1, max_length=MAX_QUESTION_CHARS, description="The question, in words."
    )
    _question_not_blank = field_validator("question", mode="before")(_not_blank)


class AskQuery(AskOptions):
    """The query string of `GET /ask` and of the question page."""

    q: str = Field(
        min_length=1, max_length=MAX_QUESTION_CHARS, description="The question, in words."
    )
    _q_not_blank = field_validator("q", mode="before")(_not_blank)


class CitationOut(BaseModel):
    """Where a quoted sentence stands in its article."""

    article_id: str
    title: str
    author: str | None
    date: dt.date | None
    start: int = Field(description="Offset of the quote in the article's text.")
    end: int = Field(description="End offset of the quote (exclusive).")
    span_start: int | None = Field(description="Offset of the short answer inside the quote.")
    span_end: int | None
    number: int = Field(description="The source number shown as [n]; one per article.")
    url: str = Field(description="The article page, scrolled to the quote and highlighting it.")


class SentenceOut(BaseModel):
    """One quoted sentence of the answer."""

    text: str = Field(description="Equals the first citation's article text at its offsets.")
    span: str | None = Field(description="The short answer inside the sentence, if found.")
    score: float
    citations: list[CitationOut]


class SourceOut(BaseModel):
    """An article the answer quotes, numbered as in the citation markers."""

    number: int
    article_id: str
    title: str
    author: str | None
    date: dt.date | None
    url: str


class PassageOut(BaseModel):
    """A retrieved passage with its article's metadata."""

    rank: int
    score: float
    article_id: str
    title: str
    author: str | None
    date: dt.date | None
    start: int
    end: int
    text: str
    sentences: list[tuple[int, int]]
    highlights: list[tuple[int, int]] = Field(
        description="Ranges (article offsets) of the passage that the answer quotes."
    )
    url: str = Field(description="The article page with this passage highlighted.")


class TimingsOut(BaseModel):
    """Milliseconds spent answering."""

    retrieve_ms: float
    answer_ms: float
    total_ms: float


class AnswerOut(BaseModel):
    """The answer to a question: quoted sentences with citations, or why there is none."""

    question: str
    answered: bool
    confidence: float
    kind: str
    reason: str | None = Field(description="Why the articles do not answer, when they do not.")
    sentences: list[SentenceOut]
    sources: list[SourceOut]
    passages: list[PassageOut]
    timings: TimingsOut


class SectionOut(BaseModel):
    """A titled part of an article."""

    title: str | None
    start: int
    end: int


class ArticleSummary(BaseModel):
    """An article in the list."""

    id: str
    title: str
    author: str | None
    date: dt.date | None
    source: str = Field(description="Where it comes from: its site, else its file's name.")
    sections: list[SectionOut]
    page_url: str = Field(description="The article page of this app.")


class ArticleOut(ArticleSummary):
    """An article with its text; every offset of the API indexes `text`."""

    caption: str | None
    url: str | None = Field(description="The original address, when the source gives one.")
    text: str
    body_end: int
    paragraphs: list[tuple[int, int]]
    byline: tuple[int, int] | None


class ManifestOut(BaseModel):
    """What the loaded index was built from."""

    model: str
    articles: int
    chunks: int
    sentences: int
    created_at: str = Field(description="When the index was built (UTC, ISO 8601).")


class HealthOut(BaseModel):
    """Whether the index is loaded and questions can be asked."""

    ready: bool
    status: Literal["loading", "ready", "failed"]
    error: str | None = None
    manifest: ManifestOut | None = None


class ArticleIn(BaseModel):
    """An article to add (`POST /articles`); one with the id of an article already there
    replaces it. The id is made from the title when not given."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=500)
    text: str = Field(min_length=1, description="Paragraphs separated by blank lines.")
    id: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[^/?#\s]+$")
    author: str | None = Field(None, max_length=MAX_AUTHOR_CHARS)
    date: dt.date | None = Field(None, description="Publication day, YYYY-MM-DD.")
    url: str | None = Field(None, max_length=2000, description="The original address.")


class DuplicateOut(BaseModel):
    """Two articles that tell one story; answers cite each once."""

    first: str
    second: str
    similarity: float = Field(description="Share of the shorter one's text found in the other.")


class UpdateOut(BaseModel):
    """What adding or removing articles did."""

    added: list[str]
    updated: list[str]
    removed: list[str]
    unchanged: int
    skipped: list[str] = Field(description="What could not be read, and why.")
    duplicates: list[DuplicateOut]
    embedded_chunks: int
    embedded_sentences: int
    articles: int
    chunks: int
    seconds: float
