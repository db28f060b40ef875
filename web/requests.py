"""The web API's validated requests: questions, article filters, verdicts and new articles."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticUseDefault

from rag.answer.question import MAX_QUESTION_CHARS, MAX_TOP_K
from rag.feedback import MAX_NOTE_CHARS, MAX_SHOWN, SENTENCE_ID, text_problem
from rag.listing import DEFAULT_LIMIT, MAX_LIMIT, ArticleFilter

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


def _unset_if_blank(value: Any) -> Any:
    # An empty field of an HTML form means "not given".
    if isinstance(value, str) and not value.strip():
        raise PydanticUseDefault()
    return value


class ArticlesQuery(BaseModel):
    """The query string of `GET /articles`: filters, and which page."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    q: str | None = Field(
        None, max_length=200, description="Only articles whose title has all these words."
    )
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
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Articles a page.")
    offset: int = Field(0, ge=0, le=10**9, description="How many articles to pass over.")

    _blank = field_validator(
        "q", "date_from", "date_to", "author", "limit", "offset", mode="before"
    )(_unset_if_blank)
    _in_order = model_validator(mode="after")(AskOptions._dates_in_order)

    def wanted(self) -> ArticleFilter:
        """The core's filter of these parameters."""
        return ArticleFilter(
            self.q, self.date_from, self.date_to, self.author, self.limit, self.offset
        )


def _plain_text(value: Any) -> Any:
    if isinstance(value, str) and (problem := text_problem(value)):
        raise ValueError(f"the text {problem}")
    return value


class FeedbackIn(BaseModel):
    """A reader's verdict on an answer (`POST /feedback`)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    question: str = Field(
        min_length=1, max_length=MAX_QUESTION_CHARS, description="The question, as asked."
    )
    verdict: Literal["right", "wrong"] = Field(description="Whether the answer was right.")
    shown: list[Annotated[str, Field(pattern=SENTENCE_ID)]] = Field(
        default_factory=list,
        max_length=MAX_SHOWN,
        description="The answer's quoted sentences, as `ARTICLE_ID:START-END` (the first"
        " citation's offsets), in order; empty when the articles did not answer.",
    )
    quote: Annotated[str, Field(pattern=SENTENCE_ID)] | None = Field(
        None,
        description="With a wrong verdict: the sentence that does answer, as"
        " `ARTICLE_ID:START-END` (a sentence of a passage shown).",
    )
    note: str | None = Field(None, max_length=MAX_NOTE_CHARS, description="Plain text.")

    _question_not_blank = field_validator("question", mode="before")(_not_blank)
    _no_markup = field_validator("question", "note", mode="after")(_plain_text)
    _blank_quote = field_validator("quote", "note", mode="before")(_unset_if_blank)


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
