"""Candidate sentences and their features: how well each one meets the question."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.answer.question import Query
from rag.index.store import Index, SentenceTable
from rag.patterns import candidates, cause_strength, mentions_event
from rag.text import terms, words
from rag.types import Passage

# Weights of the `rules` baseline's sentence score (its threshold is in `baselines`); see README "How answers
# are chosen" for how they were set.
WEIGHTS = {
    "dense": 0.25,
    "tokens": 0.50,
    "lexical": 0.50,
    "context": 0.50,
    "typed": 0.20,
    "prior": 0.10,
}


SHORT_KINDS = ("person", "names", "date", "number", "place", "definition")


PRONOUN_START = re.compile(
    r"^(?:He|She|It|They|His|Her|Its|Their|This|These|That|Those|The (?:group|organization|"
    r"militia|man|woman|official|agency|report|move|attack|strike))\b"
)


@dataclass(frozen=True)
class Scored:
    """A candidate sentence with its features and score."""

    number: int
    start: int
    end: int
    article_id: str
    dense: float
    tokens: float
    lexical: float
    context: float
    typed: float
    prior: float
    score: float
    span: tuple[int, int] | None
    short_kind: float = 0.0
    reader: float | None = None

    def features(self) -> dict[str, float]:
        """The features the learned selector reads (see `rag.answer.selection`)."""
        return {
            "dense": self.dense,
            "tokens": self.tokens,
            "lexical": self.lexical,
            "context": self.context,
            "typed": self.typed,
            "prior": self.prior,
            "short_kind": self.short_kind,
        }


Group = frozenset[str]


def _coverage(weights: dict[Group, float], found: set[str]) -> float:
    total = sum(weights.values())
    return sum(w for group, w in weights.items() if group & found) / total if total else 0.0


def _pick_span(
    sentence: str,
    kind: str,
    question_terms: set[str],
    acronym: str | None,
    counted: set[str] = frozenset(),
    places: frozenset[str] = frozenset(),
    detail: str | None = None,
    named: set[str] = frozenset(),
) -> tuple[int, int] | None:
    best, best_key = None, None
    matched = [(a, b) for term, a, b in _words_with_terms(sentence) if term in question_terms]
    found = candidates(sentence, kind, acronym=acronym, places=places, detail=detail, named=named)
    for start, end in found:
        inside = set(terms(sentence[start:end]))
        if inside and inside <= question_terms:
            continue
        # Characters between the span and the nearest question word.
        distance = min((max(a - end, start - b, 0) for a, b in matched), default=0)
        novel = len(inside - question_terms) / len(inside) if inside else 0.0
        # "How many missiles": the number that counts missiles, not another one nearby.
        counts = bool(counted & set(terms(" ".join(sentence[start:].split()[:4]))))
        key = (novel > 0, counts, round(novel, 1), -distance, end - start)
        if best_key is None or key > best_key:
            best, best_key = (start, end), key
    return best


def _words_with_terms(sentence: str) -> list[tuple[str, int, int]]:
    return [(term, start, end) for word, start, end in words(sentence) for term in terms(word)]


def score_sentences(
    query: Query,
    question_vector: np.ndarray,
    question_tokens: np.ndarray,
    passages: list[Passage],
    index: Index,
    table: SentenceTable,
    *,
    pieces: Callable[[list[int]], Sequence[np.ndarray]],
    weights: dict[str, float] = WEIGHTS,
) -> list[Scored]:
    """Score every sentence of the passages against the question, best first.

    Features: cosine similarity of the sentence and question vectors; how well each content
    word piece of the question finds a close word piece in the sentence (late interaction, so
    `relocate` meets `moving`); the share of the question's words the sentence holds, each
    weighted by how rare it is in the collection and among the candidate sentences (so a word
    every candidate shares counts little), and the share its title and previous sentence add;
    whether it holds the kind of answer wanted; the rank of its passage. The score is the
    hand-weighted sum of the features (the `rules` answerer); the learned selector reads the
    features themselves (`rank_with_reader`).

    Args:
        query: The analysed question.
        question_vector: Its embedding.
        question_tokens: The vectors of its content word pieces.
        passages: Retrieved passages, best first.
        index: The index (sentence vectors and articles).
        table: Sentence look-ups of the index.
        pieces: The content word-piece vectors of the sentences with the given numbers
            (`rag.engine.SentencePieces`).
        weights: Weight of each feature in the score.

    Returns:
        Scored sentences, each once, best first.
    """
    kind = query.kind
    prior: dict[int, float] = {}
    for passage in passages:
        for number in table.of_chunk(passage.chunk):
            # A section's headline sums up what the sentences under it say: it is context for
            # them, not an answer of its own.
            if not table.is_heading(number):
                prior.setdefault(number, 1.0 / passage.rank)
    if not prior:
        return []
    numbers = list(prior)
    dense = index.sentence_vectors[numbers] @ question_vector
    piece_vectors = pieces(numbers)
    texts = [index.sentence_text(index.sentences[n]) for n in numbers]
    found = [set(terms(t)) for t in texts]
    groups = dict(query.groups)
    groups = {
        g: w * math.log(1 + (len(found) + 0.5) / (sum(bool(g & f) for f in found) + 0.5))
        for g, w in groups.items()
    }
    question_terms = set().union(*groups) if groups else set()
    headings: dict[tuple[str, int], set[str]] = {}
    scored = []
    for number, similarity, sentence, sentence_terms, sentence_pieces in zip(
        numbers, dense, texts, found, piece_vectors, strict=True
    ):
        ref = index.sentences[number]
        section = table.section_of(number)
        key = (ref.article_id, section.start)
        if key not in headings:
            headings[key] = set(
                terms(f"{index.articles[ref.article_id].title} {section.title or ''}")
            )
        context = set(headings[key])
        before = table.previous(number)
        # The sentence before says who "he" or "the group" is; it adds nothing otherwise.
        if before is not None and PRONOUN_START.match(sentence):
            context |= set(terms(index.sentence_text(index.sentences[before])))
        tokens = float((sentence_pieces.astype(np.float32) @ question_tokens.T).max(axis=0).mean())
        lexical = _coverage(groups, sentence_terms)
        around = _coverage(groups, sentence_terms | context) - lexical
        span = None
        # "When was she born?" is answered by a date given for a birth, not by any date.
        if kind in SHORT_KINDS and (query.event is None or mentions_event(sentence, query.event)):
            span = _pick_span(
                sentence,
                kind,
                question_terms,
                query.acronym,
                query.counted,
                table.places,
                query.detail,
                query.named,
            )
        if kind in SHORT_KINDS:
            typed = 1.0 if span else 0.0
        elif kind == "why":
            typed = cause_strength(sentence)
        else:
            typed = 0.5
        score = (
            weights["dense"] * float(similarity)
            + weights["tokens"] * tokens
            + weights["lexical"] * lexical
            + weights["context"] * around
            + weights["typed"] * typed
            + weights["prior"] * prior[number]
        )
        scored.append(
            Scored(
                number,
                ref.start,
                ref.end,
                ref.article_id,
                float(similarity),
                tokens,
                lexical,
                around,
                typed,
                prior[number],
                score,
                (ref.start + span[0], ref.start + span[1]) if span else None,
                float(kind in SHORT_KINDS),
            )
        )
    scored.sort(key=lambda s: -s.score)
    return scored
