"""The web API's responses, derived from the core's types."""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Collection, Mapping, Sequence
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints
from urllib.parse import quote

from pydantic import BaseModel, Field, create_model

from rag.build.duplicates import Duplicate
from rag.build.updates import Update
from rag.feedback import Feedback, Quote
from rag.index.disk import LastUpdate
from rag.listing import ArticlePage
from rag.serialize import (
    ANSWER_KEYS,
    ANSWER_OMITS,
    ARTICLE_KEYS,
    SENTENCE_KEYS,
    SOURCE_KEYS,
    answer_to_dict,
    article_to_dict,
    plain,
)
from rag.types import Answer, AnswerSentence, Article, Chunk, Citation, Passage, Section, Timings


class ManifestOut(BaseModel):
    """What the loaded index was built from."""

    model: str
    articles: int
    chunks: int
    sentences: int
    created_at: str = Field(description="When the index was built (UTC, ISO 8601).")


# Response models derived from the core's dataclasses: each field's type comes from the
# core type (a nested core type becoming its response model, a tuple a list), so a field
# added there is in the API too. Every field is required: a response always carries it.
_FORMS: dict[type, type[BaseModel]] = {}


def _out(kind: Any) -> Any:
    # The response type of a core field's type.
    if kind in _FORMS:
        return _FORMS[kind]
    origin, args = get_origin(kind), get_args(kind)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return list[_out(args[0])]
    if origin in (Union, UnionType):
        return functools.reduce(operator.or_, map(_out, args))
    return kind


def derived(
    name: str,
    core: type | tuple[type, ...],
    doc: str,
    *,
    keys: Sequence[str] = (),
    rest: bool = True,
    omit: Collection[str] = (),
    extra: Mapping[str, Any] | None = None,
    describe: Mapping[str, str] | None = None,
    base: type[BaseModel] = BaseModel,
    form: bool = True,
) -> type[BaseModel]:
    """A response model with the fields of a core dataclass.

    Args:
        name: The model's name (its name in the OpenAPI schema).
        core: The dataclass; or several, a field's type then coming from the first that
            has a field of its name.
        doc: The model's description.
        keys: Fields to put first, in this order (the order of the plain form).
        rest: Then the other fields of the (first) dataclass, in declaration order; False
            keeps to `keys` (a projection).
        omit: Fields left out.
        extra: Fields the core types lack (links, numbers): name → type.
        describe: Descriptions of fields, by name.
        base: A model whose fields come first.
        form: Use this model for the dataclass wherever another derived model holds it.

    Returns:
        The pydantic model.
    """
    cores = core if isinstance(core, tuple) else (core,)
    hints: dict[str, Any] = {}
    for kind in reversed(cores):
        hints |= get_type_hints(kind)
    extra, describe = extra or {}, describe or {}
    declared = [f.name for f in dataclasses.fields(cores[0])] if rest else []
    names = [n for n in dict.fromkeys([*keys, *declared, *extra]) if n not in omit]
    fields: dict[str, Any] = {
        n: (extra[n] if n in extra else _out(hints[n]), Field(description=describe.get(n)))
        for n in names
        if n not in base.model_fields
    }
    model = create_model(name, __base__=base, __doc__=doc, __module__=__name__, **fields)
    if form:
        _FORMS[cores[0]] = model
    return model


SectionOut = derived("SectionOut", Section, "A titled part of an article.")
CitationOut = derived(
    "CitationOut",
    Citation,
    "Where a quoted sentence stands in its article.",
    extra={"number": int, "url": str},
    describe={
        "start": "Offset of the quote in the article's text.",
        "end": "End offset of the quote (exclusive).",
        "span_start": "Offset of the short answer inside the quote.",
        "number": "The source number shown as [n]; one per article.",
        "url": "The article page, scrolled to the quote and highlighting it.",
    },
)
SentenceOut = derived(
    "SentenceOut",
    AnswerSentence,
    "One quoted sentence of the answer.",
    keys=SENTENCE_KEYS,
    describe={
        "text": "Equals the first citation's article text at its offsets.",
        "span": "The short answer inside the sentence, if found.",
    },
)
SourceOut = derived(
    "SourceOut",
    Citation,
    "An article the answer quotes, numbered as in the citation markers.",
    keys=SOURCE_KEYS,
    rest=False,
    extra={"number": int, "url": str},
    form=False,
)
PassageOut = derived(
    "PassageOut",
    (Passage, Chunk, Article),
    "A retrieved passage with its article's metadata.",
    keys=(
        "rank",
        "score",
        "article_id",
        "title",
        "author",
        "date",
        "start",
        "end",
        "text",
        "sentences",
        "highlights",
        "url",
    ),
    rest=False,
    extra={"highlights": list[tuple[int, int]], "url": str},
    describe={
        "highlights": "Ranges (article offsets) of the passage that the answer quotes.",
        "url": "The article page with this passage highlighted.",
    },
)
TimingsOut = derived("TimingsOut", Timings, "Milliseconds spent answering.")
AnswerOut = derived(
    "AnswerOut",
    Answer,
    "The answer to a question: quoted sentences with citations, or why there is none.",
    keys=ANSWER_KEYS,
    omit=ANSWER_OMITS,
    extra={"sources": list[SourceOut]},
    describe={
        "reason": "Why the articles do not answer, when they do not.",
        "band": "How sure the answer is, in words: `answered`, `probably` (check the quote) or"
        " `not sure` (no answer, the closest passages); the reader's answers only.",
    },
)
ArticleSummary = derived(
    "ArticleSummary",
    Article,
    "An article in the list.",
    keys=("id", "title", "author", "date", "source", "sections"),
    rest=False,
    extra={"page_url": str},
    describe={
        "source": "Where it comes from: its site, else its file's name.",
        "page_url": "The article page of this app.",
    },
    form=False,
)
ArticlePageOut = create_model(
    "ArticlePageOut",
    __doc__="A page of the article list, newest first, with the filters' counts and links.",
    __module__=__name__,
    articles=(list[ArticleSummary], ...),  # type: ignore[valid-type]
    total=(int, Field(description="Articles that pass the filters.")),
    collection=(int, Field(description="Articles in the collection.")),
    offset=(int, ...),
    limit=(int, ...),
    next=(str | None, Field(description="The next page's address; null on the last.")),
    previous=(str | None, Field(description="The previous page's address; null on the first.")),
)
ArticleOut = derived(
    "ArticleOut",
    Article,
    "An article with its text; every offset of the API indexes `text`.",
    keys=ARTICLE_KEYS,
    describe={"url": "The original address, when the source gives one."},
    base=ArticleSummary,
    form=False,
)
DuplicateOut = derived(
    "DuplicateOut",
    Duplicate,
    "Two articles that tell one story; answers cite each once.",
    describe={"similarity": "Share of the shorter one's text found in the other."},
)
UpdateOut = derived(
    "UpdateOut",
    Update,
    "What adding or removing articles did.",
    keys=(
        "added",
        "updated",
        "removed",
        "unchanged",
        "skipped",
        "duplicates",
        "embedded_chunks",
        "embedded_sentences",
        "articles",
        "chunks",
        "seconds",
    ),
    rest=False,
    describe={"skipped": "What could not be read, and why."},
)
LastUpdateOut = derived(
    "LastUpdateOut",
    LastUpdate,
    "What the last change to the index did (here or in another process).",
    describe={
        "ok": "Whether it was done; when not, the index before it still answers.",
        "action": "What it was to do.",
        "at": "When it ended (UTC, ISO 8601).",
        "message": "Why it failed, and what to do; `done` when it was done.",
        "generation": "The generation it made.",
    },
)


class HealthOut(BaseModel):
    """Whether the index is loaded and questions can be asked, which generation answers, and
    what the last change to it did."""

    ready: bool
    status: Literal["loading", "ready", "failed"]
    error: str | None = None
    manifest: ManifestOut | None = None
    generation: str | None = Field(None, description="The index generation that answers.")
    last_update: LastUpdateOut | None = None  # type: ignore[valid-type]


def article_url(article_id: str, start: int | None = None, end: int | None = None) -> str:
    """The address of an article page, optionally highlighting and scrolled to a range.

    Args:
        article_id: The article.
        start: Start offset of the range to highlight in the article's text.
        end: End offset (exclusive).

    Returns:
        A site-relative URL.
    """
    path = f"/articles/{quote(article_id, safe='')}"
    return path if start is None or end is None else f"{path}?hl={start}-{end}#quote"


def answer_out(answer: Answer) -> BaseModel:
    """The API form of an answer: the core's plain data with page links.

    Args:
        answer: The answer.

    Returns:
        An `AnswerOut`, with a `url` for every source, citation and passage.
    """
    data = answer_to_dict(answer)
    for source in data["sources"]:
        source["url"] = article_url(source["article_id"])
    for sentence in data["sentences"]:
        for citation in sentence["citations"]:
            citation["url"] = article_url(
                citation["article_id"], citation["start"], citation["end"]
            )
    for passage in data["passages"]:
        passage["url"] = article_url(passage["article_id"], passage["start"], passage["end"])
    return AnswerOut.model_validate(data)


def article_out(article: Article, *, with_text: bool = True) -> BaseModel:
    """The API form of an article.

    Args:
        article: The article.
        with_text: The whole article (an `ArticleOut`), else its entry in the list (an
            `ArticleSummary`).

    Returns:
        The model, with the address of the article's page.
    """
    model = ArticleOut if with_text else ArticleSummary
    data = article_to_dict(article, with_text=with_text)
    return model.model_validate({**data, "page_url": article_url(article.id)})


def update_out(update: Update) -> BaseModel:
    """The API form of what adding or removing articles did.

    Args:
        update: The update.

    Returns:
        An `UpdateOut`, its time in seconds rounded to milliseconds.
    """
    return UpdateOut.model_validate({**plain(update), "seconds": round(update.seconds, 3)})


QuoteOut = derived("QuoteOut", Quote, "A sentence a verdict names, as the index holds it.")
FeedbackOut = derived(
    "FeedbackOut",
    Feedback,
    "A verdict as stored.",
    describe={
        "answered": "Whether the page showed an answer (else it said the articles do not).",
        "fingerprint": "The collection's fingerprint when the verdict was given.",
        "at": "When (UTC, ISO 8601).",
    },
)


def feedback_out(feedback: Feedback) -> BaseModel:
    """The API form of a stored verdict.

    Args:
        feedback: The verdict.

    Returns:
        A `FeedbackOut`.
    """
    return FeedbackOut.model_validate(plain(feedback))


def article_page_out(page: ArticlePage, links: Mapping[str, str | None]) -> BaseModel:
    """The API form of a page of the article list.

    Args:
        page: The `rag.listing.ArticlePage`.
        links: The `next` and `previous` addresses (None where there is no such page).

    Returns:
        An `ArticlePageOut`.
    """
    return ArticlePageOut.model_validate(
        {
            "articles": [article_out(a, with_text=False) for a in page.articles],
            "total": page.total,
            "collection": page.collection,
            "offset": page.offset,
            "limit": page.limit,
            **links,
        }
    )
