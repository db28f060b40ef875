"""The answer builder: picks the sentences that answer, marks the short answer, or abstains."""

from __future__ import annotations

from dataclasses import dataclass

from rag.answer.bands import Band
from rag.answer.baselines import THRESHOLD, confidence_of
from rag.answer.features import PRONOUN_START, Scored
from rag.index.store import Index, SentenceTable
from rag.patterns import mentions_event
from rag.text import terms
from rag.types import AnswerSentence, Article, Citation

MAX_SENTENCES = 3
# A question that wants a date, a number or the names of something is not answered by
# sentences that hold none: when no sentence scoring within this share of the best one has
# one, abstain. ("Who" and "where" are left out: they are often answered by a description,
# "the owner", "in committee", that no pattern can tell from a non-answer.)
TYPED_WINDOW = 0.9
TYPED_KINDS = ("date", "number", "names")
RELATIVE_KEEP = 0.92
OTHER_KEEP = 0.8
DUPLICATE_JACCARD = 0.6


@dataclass(frozen=True)
class Reply:
    """What the builder decided: the sentences, the confidence, and why when it abstains."""

    sentences: tuple[AnswerSentence, ...]
    confidence: float
    answered: bool
    reason: str | None = None
    band: Band | None = None  # the reader's answers only (`rag.answer.bands`)


def citation(article: Article, start: int, end: int, span: tuple[int, int] | None) -> Citation:
    """A citation of `article` from `start` to `end`, with the short answer `span` in it."""
    return Citation(
        article_id=article.id,
        title=article.title,
        author=article.author,
        date=article.date,
        start=start,
        end=end,
        span_start=span[0] if span else None,
        span_end=span[1] if span else None,
    )


def _extend_for_pronoun(best: Scored, index: Index, table: SentenceTable) -> int:
    # "He was shot ..." needs the sentence before it to say who "he" is.
    article = index.articles[best.article_id]
    if not PRONOUN_START.match(article.text[best.start : best.end]):
        return best.start
    before = table.previous(best.number)
    return index.sentences[before].start if before is not None else best.start


def compose(
    scored: list[Scored],
    index: Index,
    table: SentenceTable,
    *,
    threshold: float = THRESHOLD,
    kind: str = "factoid",
    event: str | None = None,
    checks: bool = True,
    calibrated: bool = False,
) -> Reply:
    """Choose the answer sentences: the best one, others close to it, duplicates merged.

    Args:
        scored: Scored sentences, best first.
        index: The index.
        table: Sentence look-ups of the index.
        threshold: The score under which the articles are taken not to answer.
        kind: The kind of answer wanted; with `checks`, a date, number or names that no
            good sentence holds means the articles do not answer.
        event: The event the question asks about; with `checks`, when no good sentence
            speaks of it, the articles do not answer.
        checks: Apply the two checks above.
        calibrated: The scores are probabilities, reported as the confidence as they are.

    Returns:
        The reply; when it abstains, no sentences and a reason.
    """
    if not scored:
        return Reply((), 0.0, False, "No passage of the articles matches the question.")
    best = scored[0]
    confidence = best.score if calibrated else confidence_of(best.score, threshold)
    if best.score < threshold:
        return Reply((), confidence, False, "The articles do not seem to answer this question.")
    near_best = [s for s in scored if s.score >= best.score * TYPED_WINDOW]
    missing = None
    if checks and kind in TYPED_KINDS and not any(s.typed for s in near_best):
        missing = f"The closest passages do not give the {kind} the question asks for."
    elif (
        checks
        and event
        and not any(
            mentions_event(index.articles[s.article_id].text[s.start : s.end], event)
            for s in near_best
        )
    ):
        missing = f"The closest passages do not speak of the {event} the question asks about."
    if missing:
        return Reply((), min(confidence, 0.5), False, missing)
    chosen: list[tuple[Scored, list[Scored]]] = []
    for candidate in scored:
        if len(chosen) >= MAX_SENTENCES or candidate.score < max(
            threshold, best.score * OTHER_KEEP
        ):
            break
        twin = next((c for c in chosen if _same_fact(c[0], candidate, index)), None)
        if twin is not None:
            if candidate.article_id not in {s.article_id for s in [twin[0], *twin[1]]}:
                twin[1].append(candidate)
            continue
        if candidate.score >= best.score * RELATIVE_KEEP or _other_answer(candidate, chosen, index):
            chosen.append((candidate, []))
    sentences = []
    for main, twins in chosen:
        article = index.articles[main.article_id]
        start = _extend_for_pronoun(main, index, table)
        citations = [citation(article, start, main.end, main.span)]
        citations += [citation(index.articles[t.article_id], t.start, t.end, t.span) for t in twins]
        span_text = article.text[main.span[0] : main.span[1]] if main.span else None
        citations += _twin_citations(
            main.number, {c.article_id for c in citations}, span_text, index, table
        )
        sentences.append(
            AnswerSentence(
                article.text[start : main.end], tuple(citations), round(main.score, 4), span_text
            )
        )
    return Reply(tuple(sentences), confidence, True)


def _twin_citations(
    number: int, cited: set[str], span: str | None, index: Index, table: SentenceTable
) -> list[Citation]:
    # The same sentence in near-duplicate articles (found at index time): every source is
    # cited once, with the short answer marked where its words are there too.
    found = []
    for twin in table.twins.get(number, ()):
        ref = index.sentences[twin]
        if ref.article_id in cited:
            continue
        cited.add(ref.article_id)
        article = index.articles[ref.article_id]
        at = article.text.find(span, ref.start, ref.end) if span else -1
        found.append(
            citation(article, ref.start, ref.end, (at, at + len(span)) if at >= 0 else None)
        )
    return found


def _span_text(scored: Scored, index: Index) -> str | None:
    if scored.span is None:
        return None
    return " ".join(terms(index.articles[scored.article_id].text[scored.span[0] : scored.span[1]]))


def _other_answer(
    candidate: Scored, chosen: list[tuple[Scored, list[Scored]]], index: Index
) -> bool:
    # Another article giving another short answer (two names for one successor) is shown
    # beside the best one, even a little further behind it, so the reader sees they disagree.
    span = _span_text(candidate, index)
    if not span or candidate.article_id in {c.article_id for c, _ in chosen}:
        return False
    return all(span != _span_text(c, index) for c, _ in chosen)


def _same_fact(a: Scored, b: Scored, index: Index) -> bool:
    first = set(terms(index.articles[a.article_id].text[a.start : a.end]))
    second = set(terms(index.articles[b.article_id].text[b.start : b.end]))
    if not first or not second:
        return False
    overlap = len(first & second) / len(first | second)
    similarity = float(index.sentence_vectors[a.number] @ index.sentence_vectors[b.number])
    return overlap >= DUPLICATE_JACCARD or similarity >= 0.92
