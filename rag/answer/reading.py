"""The reader reads the most promising candidates; the fitted selector ranks them by it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from rag.answer.features import Scored
from rag.answer.question import Query
from rag.answer.selection import Selector, log_odds
from rag.index.store import Index, SentenceTable


def rank_with_reader(
    scored: list[Scored],
    query: Query,
    reader,
    selector: Selector,
    index: Index,
    table: SentenceTable,
) -> list[Scored]:
    """Rank the candidates by the learned selector, with the reader's reading of the best ones.

    The selector's first model ranks every candidate on its features; the reader reads the
    best `selector.candidates` of them (fewer when the first model is sure, see
    `Selector.reads`) with the sentence before each; the second model gives
    each read sentence the probability that it answers. Only read sentences are returned.

    Args:
        scored: Candidates from `score_sentences`.
        query: The analysed question.
        reader: The reader (`embeddings.reader.Reader`).
        selector: The fitted selector.
        index: The index.
        table: Sentence look-ups of the index.

    Returns:
        The read candidates, best first, each with `score` set to its probability of answering
        and `reader` to the reader's own probability.
    """
    if not scored:
        return []
    first = selector.first.probabilities([s.features() for s in scored])
    order = np.argsort(-first, kind="stable")
    chosen = [scored[i] for i in order[: selector.reads(float(first[order[0]]))]]
    readings = read_sentences(
        chosen, query.text, reader, index, table, context_tokens=selector.context_tokens
    )
    rows = reader_rows(chosen, readings)
    return ranked_by(chosen, readings, selector.second.probabilities(rows), selector.spans)


def ranked_by(chosen: list[Scored], readings, probabilities, spans: str) -> list[Scored]:
    """Read sentences with their probability of answering as the score and their short
    answer taken as `spans` says (see `choose_span`), best first."""
    ranked = [
        replace(s, score=float(p), reader=r.probability, span=choose_span(s, r.span, spans))
        for s, r, p in zip(chosen, readings, probabilities, strict=True)
    ]
    ranked.sort(key=lambda s: -s.score)
    return ranked


def read_sentences(
    chosen: list[Scored],
    question: str,
    reader,
    index: Index,
    table: SentenceTable,
    *,
    context_tokens: int | None = None,
):
    """The reader's reading of each chosen sentence, with (the start of) the sentence before
    it as context (see `embeddings.reader.Reader.read`)."""
    texts = [index.sentence_text(index.sentences[s.number]) for s in chosen]
    contexts = []
    for s in chosen:
        before = table.previous(s.number)
        contexts.append("" if before is None else index.sentence_text(index.sentences[before]))
    return reader.read(question, texts, contexts, context_tokens=context_tokens)


def reader_rows(chosen: list[Scored], readings) -> list[dict[str, float]]:
    """The second model's rows: each read sentence's features and what the reader says of it."""
    odds = [log_odds(r.probability) for r in readings]
    rows = []
    for n, (s, reading) in enumerate(zip(chosen, readings, strict=True)):
        others = [o for m, o in enumerate(odds) if m != n]
        rows.append(
            {
                **s.features(),
                "reader": odds[n],
                "reader_gap": odds[n] - max(others, default=odds[n]),
                "span_probability": reading.span_probability,
            }
        )
    return rows


def question_features(ranked: list[Scored], index: Index) -> dict[str, float]:
    """What the refusal model reads of a question's candidates, ranked by the selector
    (`REFUSAL_FEATURES` and `AGREEMENT_FEATURES` of `rag.answer.selection`)."""
    best = ranked[0]
    answer = ""
    if best.span:
        answer = index.articles[best.article_id].text[best.span[0] : best.span[1]].casefold()
    holding = [
        s
        for s in ranked[1:]
        if answer.strip()
        and answer in index.articles[s.article_id].text[s.start : s.end].casefold()
    ]
    return {
        "best": log_odds(best.score),
        "second": log_odds(ranked[1].score if len(ranked) > 1 else 0.0),
        "reader_best": log_odds(max(s.reader or 0.0 for s in ranked)),
        "dense": best.dense,
        "tokens": best.tokens,
        "lexical": best.lexical,
        "context": best.context,
        "typed": best.typed,
        "short_kind": best.short_kind,
        "agree": sum(s.score for s in holding),
        "agree_articles": float(len({s.article_id for s in holding} - {best.article_id})),
    }


def choose_span(scored: Scored, read: tuple[int, int] | None, spans: str) -> tuple[int, int] | None:
    """The short answer of a read sentence, in article offsets.

    Args:
        scored: The sentence, with the span the patterns found (article offsets).
        read: The reader's span, in offsets of the sentence, or None.
        spans: `patterns`, `reader`, or `both` (the pattern's span where it lies inside the
            reader's, else the reader's).

    Returns:
        (start, end) in the article's text, or None.
    """
    if spans == "patterns" or read is None:
        return scored.span
    start, end = scored.start + read[0], scored.start + read[1]
    pattern = scored.span
    if spans == "both" and pattern and start <= pattern[0] and pattern[1] <= end:
        return pattern
    return (start, end)
