"""Readers' verdicts on answers, kept as JSON Lines beside the index, and turned into Q&A."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rag.errors import CollectionError, FeedbackError
from rag.index.store import Index
from rag.serialize import plain
from rag.text import squash

FEEDBACK_FILE = "feedback.jsonl"
MAX_NOTE_CHARS = 500
MAX_SHOWN = 20
# `ARTICLE_ID:START-END`, offsets in the article's text: a sentence, or a run of them.
SENTENCE_ID = r"^[^/?#\s]{1,200}:\d{1,9}-\d{1,9}$"
Verdict = Literal["right", "wrong"]

# A tag, comment or declaration opening: `<b`, `</b`, `<!--`, `<?`. A lone `<` ("x < 5") is text.
_MARKUP = re.compile(r"<\s*[A-Za-z/!?]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Quote:
    """A sentence (or run of sentences) of an article, as a verdict names it."""

    id: str
    article_id: str
    title: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Feedback:
    """A reader's verdict on an answer: the question, what the page showed, and the sentence
    that does answer when the reader chose one."""

    question: str
    verdict: Verdict
    answered: bool
    shown: tuple[Quote, ...]
    quote: Quote | None
    note: str | None
    fingerprint: str
    generation: str
    at: str


def text_problem(text: str) -> str | None:
    """What keeps a text from being stored as plain text, if anything.

    Args:
        text: A question or note as sent.

    Returns:
        The problem and what to do, or None for plain text.
    """
    if _MARKUP.search(text):
        return "holds HTML markup (a tag such as <b> or <script>); send plain text"
    if _CONTROL.search(text):
        return "holds control characters; send plain text"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text (an unpaired surrogate); send plain text"
    return None


def _checked(text: str | None, field: str) -> str | None:
    if text is None:
        return None
    problem = text_problem(text)
    if problem:
        raise FeedbackError(f"The {field} {problem}.", field)
    return text


def quote_of(index: Index, sentence_id: str, field: str = "quote") -> Quote:
    """The sentence of the index a verdict names.

    Args:
        index: The index in service.
        sentence_id: `ARTICLE_ID:START-END`, as the answer page gives each sentence.
        field: The verdict's field that holds it, for the error.

    Returns:
        The quote, its text and title read from the index (never from the request).

    Raises:
        FeedbackError: No article of that id, or the range does not start and end at
            sentence boundaries of it.
    """
    article_id, _, span = sentence_id.rpartition(":")
    start, _, end = span.partition("-")
    if not (article_id and start.isdigit() and end.isdigit()):
        raise FeedbackError(
            f"{sentence_id!r} is not a sentence id: send ARTICLE_ID:START-END, as the answer"
            " gives it.",
            field,
        )
    article = index.articles.get(article_id)
    if article is None:
        raise FeedbackError(f"No article with id {article_id!r} ({field}).", field)
    sentences = index.article_sentences(article_id)
    if article.byline:
        sentences.append(article.byline)
    first, last = int(start), int(end)
    if not (
        first < last and first in {s for s, _ in sentences} and last in {e for _, e in sentences}
    ):
        raise FeedbackError(
            f"{sentence_id!r} is not a sentence of {article.title!r} ({field}): send the id"
            " the answer gives.",
            field,
        )
    return Quote(sentence_id, article_id, article.title, first, last, article.text[first:last])


def make_feedback(
    index: Index,
    *,
    question: str,
    verdict: Verdict,
    shown: Sequence[str],
    quote: str | None = None,
    note: str | None = None,
    now: dt.datetime | None = None,
) -> Feedback:
    """A verdict checked against the index in service.

    Args:
        index: The index in service.
        question: The question asked.
        verdict: "right" or "wrong".
        shown: Ids of the answer's quoted sentences, in order; none for a refusal.
        quote: With "wrong", the id of the sentence that does answer, if the reader chose one.
        note: The reader's words, plain text.
        now: The time to record (default: now, UTC).

    Returns:
        The verdict, with the quoted texts, the collection's fingerprint and generation.

    Raises:
        FeedbackError: Markup or control characters in the question or note, a quote with
            a "right" verdict, too many sentences, or an id the index does not have.
    """
    _checked(question, "question")
    _checked(note, "note")
    if quote is not None and verdict != "wrong":
        raise FeedbackError(
            "A chosen quote goes with a 'wrong' verdict: it is the sentence that does answer.",
            "quote",
        )
    if len(shown) > MAX_SHOWN:
        raise FeedbackError(f"At most {MAX_SHOWN} shown sentences.", "shown")
    manifest = index.manifest
    return Feedback(
        question=squash(question),
        verdict=verdict,
        answered=bool(shown),
        shown=tuple(quote_of(index, s, "shown") for s in shown),
        quote=quote_of(index, quote) if quote else None,
        note=squash(note) if note else None,
        fingerprint=str(manifest.get("collection", {}).get("fingerprint", "")),
        generation=str(manifest.get("generation", "")),
        at=(now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
    )


def append_feedback(path: Path, feedback: Feedback) -> None:
    """Add a verdict to the file, one JSON line written whole.

    Args:
        path: The feedback file (`FEEDBACK_FILE` beside the index).
        feedback: The verdict.
    """
    line = json.dumps(plain(feedback), ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK, path.open("a", encoding="utf-8") as out:
        out.write(line)


def read_feedback(path: Path) -> list[dict[str, Any]]:
    """The verdicts of a feedback file, oldest first.

    Args:
        path: The file.

    Returns:
        The records as written.

    Raises:
        CollectionError: No such file, or a line that is not a verdict (named).
    """
    if not path.is_file():
        raise CollectionError(
            f"No feedback in {path}: verdicts are written there when readers press Right or"
            " Wrong on the answer page (rag serve)."
        )
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise CollectionError(f"{path}:{number}: not a JSON line ({e})") from e
        if not isinstance(record, dict) or not {"question", "verdict", "shown"} <= set(record):
            raise CollectionError(f"{path}:{number}: not a verdict (question, verdict, shown)")
        records.append(record)
    return records


@dataclass(frozen=True)
class Export:
    """Q&A records made from verdicts, and how many verdicts gave none."""

    questions: tuple[dict[str, Any], ...]
    skipped: int
    replaced: int


def feedback_questions(records: Iterable[dict[str, Any]]) -> Export:
    """Verdicts as Q&A records of `rag eval --qa` (see `eval.harness.load_qa`).

    A "right" verdict on an answer gives its first quote as the answer sentence; on a
    refusal, an unanswerable question. A "wrong" verdict with a chosen quote gives that
    quote. A "wrong" verdict without one gives nothing: it says what was shown is wrong,
    not that no article answers, which is what an unanswerable record claims. A question
    judged more than once keeps its last verdict.

    Args:
        records: Verdicts as `read_feedback` gives them, oldest first.

    Returns:
        The Q&A records, the verdicts skipped and those replaced by a later one.
    """
    latest: dict[str, dict[str, Any]] = {}
    skipped = replaced = 0
    for record in records:
        key = squash(record["question"]).casefold()
        quote = record.get("quote")
        if record["verdict"] == "wrong" and quote:
            answers, articles = [quote["text"]], [quote["title"]]
        elif record["verdict"] == "right" and record["shown"]:
            first = record["shown"][0]
            answers, articles = [first["text"]], [first["title"]]
        elif record["verdict"] == "right":
            answers, articles = [], []
        else:
            skipped += 1
            continue
        replaced += key in latest
        latest[key] = {
            "question": squash(record["question"]),
            "answers": answers,
            "articles": articles,
            "verdict": record["verdict"],
            "at": record.get("at"),
        }
    questions = tuple(
        {"id": f"feedback-{number:04d}", **qa} for number, qa in enumerate(latest.values(), 1)
    )
    return Export(questions, skipped, replaced)


def write_questions(path: Path, questions: Iterable[dict[str, Any]]) -> None:
    """Write Q&A records as JSON Lines.

    Args:
        path: The file, replaced.
        questions: The records.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions), encoding="utf-8"
    )
