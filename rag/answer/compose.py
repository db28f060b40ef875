"""The answer builder: picks the sentences that answer, marks the short answer, or abstains."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from rag.answer.question import Query
from rag.answer.selection import Selector, log_odds
from rag.index.lexicon import Lexicon
from rag.index.store import Index, SentenceTable
from rag.patterns import candidates, cause_strength, mentions_event
from rag.text import term_groups, terms, words
from rag.types import AnswerSentence, Article, Citation, Passage

# Weights of the sentence score and the abstention threshold on it; see README "How answers
# are chosen" for how they were set.
WEIGHTS = {
    "dense": 0.25,
    "tokens": 0.50,
    "lexical": 0.50,
    "context": 0.50,
    "typed": 0.20,
    "prior": 0.10,
}
THRESHOLD = 0.75
CONFIDENCE_SLOPE = 12.0
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
SHORT_KINDS = ("person", "names", "date", "number", "place", "definition")
_PRONOUN_START = re.compile(
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


@dataclass(frozen=True)
class Reply:
    """What the builder decided: the sentences, the confidence, and why when it abstains."""

    sentences: tuple[AnswerSentence, ...]
    confidence: float
    answered: bool
    reason: str | None = None


def confidence_of(score: float, threshold: float = THRESHOLD) -> float:
    """Map a sentence score to a confidence in [0, 1] that is 0.5 at the threshold."""
    return 1.0 / (1.0 + math.exp(-CONFIDENCE_SLOPE * (score - threshold)))


Group = frozenset[str]


def _question_groups(question: str, lexicon: Lexicon) -> dict[Group, float]:
    # One entry per question word: the collection's spellings of its terms, weighted by the
    # rarest of them. A word the collection lacks (no close spelling either) keeps the weight
    # of the rarest term: a question about something the articles never mention should not
    # look covered.
    rarest = math.log(1 + (lexicon.documents + 0.5) / 0.5)
    groups: dict[Group, float] = {}
    for word_terms in term_groups(question):
        resolved = frozenset(t for term in word_terms for t in lexicon.resolve(term))
        if resolved:
            groups[resolved] = max(lexicon.idf(t) for t in resolved)
        else:
            groups[frozenset({"?" + word_terms[0]})] = rarest
    return groups


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
    lexicon: Lexicon,
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
        lexicon: Term statistics of the collection.
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
    groups = _question_groups(query.search_text, lexicon)
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
        if before is not None and _PRONOUN_START.match(sentence):
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
    best `selector.candidates` of them with the sentence before each; the second model gives
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
    order = np.argsort(-first, kind="stable")[: selector.candidates]
    chosen = [scored[i] for i in order]
    readings = read_sentences(chosen, query.text, reader, index, table)
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


def read_sentences(chosen: list[Scored], question: str, reader, index: Index, table: SentenceTable):
    """The reader's reading of each chosen sentence, with the sentence before it as context."""
    texts = [index.sentence_text(index.sentences[s.number]) for s in chosen]
    contexts = []
    for s in chosen:
        before = table.previous(s.number)
        contexts.append("" if before is None else index.sentence_text(index.sentences[before]))
    return reader.read(question, texts, contexts)


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


def question_features(ranked: list[Scored]) -> dict[str, float]:
    """What the refusal model reads of a question's candidates, ranked by the selector."""
    best = ranked[0]
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


def rank_by_cosine(scored: list[Scored]) -> list[Scored]:
    """The baseline: candidates ranked by the cosine similarity of sentence and question."""
    return sorted((replace(s, score=s.dense) for s in scored), key=lambda s: -s.score)


def _citation(article: Article, start: int, end: int, span: tuple[int, int] | None) -> Citation:
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
    if not _PRONOUN_START.match(article.text[best.start : best.end]):
        return best.start
    before = table.previous(best.number)
    return index.sentences[before].start if before is not None else best.start


def select(
    scored: list[Scored],
    index: Index,
    table: SentenceTable,
    *,
    threshold: float = THRESHOLD,
    kind: str = "factoid",
    event: str | None = None,
    rules: bool = True,
    calibrated: bool = False,
) -> Reply:
    """Choose the answer sentences: the best one, others close to it, duplicates merged.

    Args:
        scored: Scored sentences, best first.
        index: The index.
        table: Sentence look-ups of the index.
        threshold: The score under which the articles are taken not to answer.
        kind: The kind of answer wanted; with `rules`, a date, number or names that no
            good sentence holds means the articles do not answer.
        event: The event the question asks about; with `rules`, when no good sentence
            speaks of it, the articles do not answer.
        rules: Apply the two checks above.
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
    if rules and kind in TYPED_KINDS and not any(s.typed for s in near_best):
        missing = f"The closest passages do not give the {kind} the question asks for."
    elif (
        rules
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
        citations = [_citation(article, start, main.end, main.span)]
        citations += [
            _citation(index.articles[t.article_id], t.start, t.end, t.span) for t in twins
        ]
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
            _citation(article, ref.start, ref.end, (at, at + len(span)) if at >= 0 else None)
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


def byline_reply(article: Article, kind_of_field: str) -> Reply:
    """Answer who wrote an article or when it was published, quoting its byline.

    Args:
        article: The article the question is about.
        kind_of_field: `author` or `date`.

    Returns:
        The byline as the answer, or an abstention that says the byline is missing.
    """
    wanted = "author" if kind_of_field == "author" else "publication date"
    if article.byline is None:
        return Reply(
            (),
            0.0,
            False,
            f"The article “{article.title}” has no byline: its {wanted} is not given.",
        )
    if (kind_of_field == "author" and not article.author) or (
        kind_of_field == "date" and not article.date
    ):
        return Reply((), 0.0, False, f"The article “{article.title}” does not give its {wanted}.")
    start, end = article.byline
    line = article.text[start:end]
    wanted = article.author if kind_of_field == "author" else None
    span = None
    if wanted and wanted in line:
        s = line.index(wanted)
        span = (start + s, start + s + len(wanted))
    elif kind_of_field == "date":
        match = re.search(r"Date:\s*(.+?)\s*(?:\||$)", line)
        if match:
            span = (start + match.start(1), start + match.end(1))
    return Reply(
        (
            AnswerSentence(
                line,
                (_citation(article, start, end, span),),
                1.0,
                article.text[span[0] : span[1]] if span else None,
            ),
        ),
        0.99,
        True,
    )
