"""The one entry point: open (or build) an index, then `ask()` questions of it."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import replace

import numpy as np

from embeddings import ModelLoadError, load_reader
from rag.answer.bands import band_of
from rag.answer.baselines import rank_by_cosine
from rag.answer.bylines import byline_reply
from rag.answer.compose import Reply, compose
from rag.answer.features import Scored, score_sentences
from rag.answer.question import Query, analyse
from rag.answer.reading import question_features, rank_with_reader
from rag.answer.selection import Selector, load_selector
from rag.errors import ModelError
from rag.index.store import Index, SentenceTable, content_tokens
from rag.index.tables import bylines
from rag.search.retrieval import Retriever
from rag.settings import ANSWERERS, Method
from rag.text import terms
from rag.types import Answer, Article, Passage, Timings

log = logging.getLogger(__name__)
CANDIDATE_PASSAGES = 8
# Up to this many articles, a question about an article (who wrote it, when) is compared with
# every title; past it, with the titles of its retrieved passages' articles: encoding a
# million titles would take minutes, and holding them all as articles gigabytes.
TITLE_LIMIT = 5_000


class SentencePieces:
    """The content word-piece vectors of sentences, for late interaction: the index's own
    (float16, or decoded from compact codes past `rag.index.store.PIECES_LIMIT` chunks), or,
    for an index that does not store them (built from a snapshot, or with `pieces=False`),
    encoded when asked for, in one batch, the most recent few thousand kept."""

    # Small batches of sentences of like length: one long sentence does not pad 60 short ones
    # (on 2,315 chunks, p95 317 to 348 ms in batches of 4 to 8, against 543 to 556 in 64).
    def __init__(self, index: Index, encoder, *, keep: int = 4096, batch_size: int = 8) -> None:
        self.index = index
        self.encoder = encoder
        self.keep = keep
        self.batch_size = batch_size
        self._kept: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, numbers: list[int]) -> list[np.ndarray]:
        """The vectors of the sentences with these numbers, in order."""
        index = self.index
        if index.has_pieces:
            return [index.sentence_tokens(n) for n in numbers]
        with self._lock:
            found = {n: self._kept[n] for n in numbers if n in self._kept}
        missing = [n for n in dict.fromkeys(numbers) if n not in found]
        if missing:
            _, encoded = self.encoder.encode_with_tokens(
                [index.sentence_text(index.sentences[n]) for n in missing],
                batch_size=self.batch_size,
            )
            for n, (p, v) in zip(missing, encoded, strict=True):
                found[n] = content_tokens(p, v).astype(np.float16)
        with self._lock:
            for n in numbers:
                self._kept[n] = found[n]
                self._kept.move_to_end(n)
            while len(self._kept) > self.keep:
                self._kept.popitem(last=False)
        return [found[n] for n in numbers]


class Engine:
    """A loaded index with its retriever and answer builder."""

    def __init__(
        self,
        index: Index,
        encoder,
        *,
        method: Method = "hybrid",
        answerer: str = "reader",
        reader=None,
        selector: Selector | None = None,
        runtime: str = "onnx",
        milvus: str | None = None,
        skipped: tuple[str, ...] = (),
    ) -> None:
        _check_answerer(answerer)
        self.runtime = runtime
        self.index = index
        self.encoder = encoder
        self.method = method
        self.answerer = answerer
        self.milvus = milvus
        backend = None
        if milvus is not None:
            from rag.search.milvus import MilvusBackend

            backend = MilvusBackend(milvus, index)
        self.retriever = Retriever(index, encoder, backend=backend)
        self.table = SentenceTable(index)
        self.pieces = SentencePieces(index, encoder)
        self._reader = reader
        self._selector = selector
        self._title_vectors: dict[str, np.ndarray] = {}
        # What of the collection could not be read when the engine was opened.
        self.skipped = skipped

    @property
    def reader(self):
        """The reader model, loaded on first use (`embeddings.load_reader`).

        Raises:
            ModelError: Its weights are missing or altered, or its export failed.
        """
        if self._reader is None:
            try:
                self._reader = load_reader(backend=self.runtime)
            except ModelLoadError as e:
                raise ModelError(str(e)) from e
        return self._reader

    def load_models(self) -> None:
        """Load the reader and the selector now rather than at the first question."""
        self.reader, self.selector  # noqa: B018

    @property
    def selector(self) -> Selector:
        """The fitted answer selector, loaded on first use."""
        if self._selector is None:
            self._selector = load_selector()
        return self._selector

    def with_index(self, index: Index) -> Engine:
        """The same models and options over another index (a newer version of this one).

        Args:
            index: The index.

        Returns:
            A new engine; this one is unchanged.
        """
        return Engine(
            index,
            self.encoder,
            method=self.method,
            answerer=self.answerer,
            reader=self._reader,
            selector=self._selector,
            runtime=self.runtime,
            milvus=self.milvus,
        )

    def article_named(self, query: Query, passages: list[Passage]) -> Article:
        """The article a question about an article (its author, its date) refers to.

        Titles are compared with the question by meaning and by shared rare words; the
        retrieved passages add a small vote. Up to `TITLE_LIMIT` articles every title is
        compared; past it, the titles of the retrieved passages' articles.

        Args:
            query: The analysed question.
            passages: Its retrieved passages, best first.

        Returns:
            The best-matching article.
        """
        if len(self.index.articles) <= TITLE_LIMIT:
            articles = list(self.index.articles.values())
        else:
            articles = list({p.article.id: p.article for p in passages}.values())
        missing = [a for a in articles if a.id not in self._title_vectors]
        found: dict[str, np.ndarray] = {}
        if missing:
            vectors = self.encoder.encode([a.title for a in missing])
            found = dict(zip((a.id for a in missing), vectors, strict=True))
        # Kept for later questions up to the limit only: past it, they would add every title
        # they meet, without end.
        if len(self._title_vectors) < TITLE_LIMIT:
            self._title_vectors.update(found)
        vectors = np.stack([found.get(a.id, self._title_vectors.get(a.id)) for a in articles])
        similarity = vectors @ self.retriever.question_vector(query.text)
        asked = query.about_terms
        lexicon = self.retriever.lexicon
        total = sum(lexicon.idf(t) for t in asked) or 1.0
        vote: dict[str, float] = {}
        for p in passages:
            vote.setdefault(p.article.id, 1.0 / p.rank)

        def score(i: int) -> float:
            title_terms = set(terms(articles[i].title))
            overlap = sum(lexicon.idf(t) for t in asked & title_terms) / total
            return float(similarity[i]) + overlap + 0.2 * vote.get(articles[i].id, 0.0)

        return articles[max(range(len(articles)), key=score)]

    def filter_articles(
        self,
        *,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        author: str | None = None,
    ) -> set[str] | None:
        """Ids of the articles that pass the filters; None when there is no filter."""
        if date_from is None and date_to is None and not author:
            return None
        wanted = author.casefold().strip() if author else None

        def keep(writer: str | None, date: dt.date | None) -> bool:
            if wanted and (not writer or wanted not in writer.casefold()):
                return False
            if (date_from or date_to) and date is None:
                return False
            if date_from and date < date_from:
                return False
            return not (date_to and date > date_to)

        return {i for i, writer, date in bylines(self.index.articles) if keep(writer, date)}

    def ask(
        self,
        question: str,
        *,
        top_k: int = 5,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        author: str | None = None,
        method: Method | None = None,
        answerer: str | None = None,
    ) -> Answer:
        """Answer a question with quoted, cited sentences, or say the articles do not answer.

        Args:
            question: The question as typed.
            top_k: How many supporting passages to return.
            date_from: Only articles published on or after this date.
            date_to: Only articles published on or before this date.
            author: Only articles whose author contains this text (any case).
            method: Retrieval method; the engine's default when None.
            answerer: `reader` (the learned selector), `rules` (hand-weighted features) or
                `cosine` (similarity alone); the engine's default when None.

        Returns:
            The answer.

        Raises:
            QuestionError: The question is empty, too long, or has nothing to search for.
        """
        started = time.perf_counter()
        query = analyse(question, self.index.lexicon)
        allowed = self.filter_articles(date_from=date_from, date_to=date_to, author=author)
        passages = self.retriever.retrieve(
            query, max(top_k, CANDIDATE_PASSAGES), method=method or self.method, articles=allowed
        )
        retrieved = time.perf_counter()
        if allowed is not None and not allowed:
            reply = Reply((), 0.0, False, "No article matches the filters (date range, author).")
        elif query.byline_field and passages:
            reply = byline_reply(self.article_named(query, passages), query.byline_field)
        else:
            reply = self._reply(query, passages, answerer or self.answerer)
        finished = time.perf_counter()
        return Answer(
            question=query.text,
            answered=reply.answered,
            confidence=round(reply.confidence, 4),
            sentences=reply.sentences,
            passages=tuple(passages[:top_k]),
            timings=Timings(
                retrieve_ms=round((retrieved - started) * 1000, 2),
                answer_ms=round((finished - retrieved) * 1000, 2),
                total_ms=round((finished - started) * 1000, 2),
            ),
            kind=query.kind,
            reason=reply.reason,
            band=reply.band,
        )

    def candidates(self, query: Query, passages: list[Passage]) -> list[Scored]:
        """Every sentence of the passages with its features (see `score_sentences`); of the
        sentences that near-duplicate articles share, only the first is kept."""
        scored = score_sentences(
            query,
            self.retriever.question_vector(query.text),
            self.retriever.question_tokens(query.text),
            passages,
            self.index,
            self.table,
            pieces=self.pieces,
        )
        twins = self.table.twins
        if not twins:
            return scored
        kept, seen = [], set()
        for candidate in scored:
            group = twins.get(candidate.number)
            if group not in seen:
                kept.append(candidate)
                if group is not None:
                    seen.add(group)
        return kept

    def read(
        self, query: Query, scored: list[Scored], selector: Selector
    ) -> tuple[list[Scored], float | None]:
        """The reader's ranking of the candidates, and the refusal model's probability that
        the articles answer (None without candidates or refusal model).

        Args:
            query: The analysed question.
            scored: Its candidates (`candidates`).
            selector: The selector to rank and judge with.

        Returns:
            (the read candidates, best first; the probability).
        """
        ranked = rank_with_reader(scored, query, self.reader, selector, self.index, self.table)
        if not ranked or selector.refusal is None:
            return ranked, None
        return ranked, float(
            selector.refusal.probabilities([question_features(ranked, self.index)])[0]
        )

    def _reply(self, query: Query, passages: list[Passage], answerer: str) -> Reply:
        scored = self.candidates(query, passages)
        if answerer == "rules":
            return compose(scored, self.index, self.table, kind=query.kind, event=query.event)
        if answerer == "cosine":
            return compose(
                rank_by_cosine(scored),
                self.index,
                self.table,
                threshold=self.selector.cosine_threshold,
                checks=False,
            )
        _check_answerer(answerer)
        selector = self.selector
        ranked, answered = self.read(query, scored, selector)
        threshold = selector.threshold
        if answered is not None:
            if answered < selector.refusal_threshold:
                return Reply(
                    (),
                    ranked[0].score,
                    False,
                    "The articles do not seem to answer this question.",
                    band="not sure",
                )
            threshold = 0.0
        reply = compose(
            ranked,
            self.index,
            self.table,
            threshold=threshold,
            kind=query.kind,
            event=query.event,
            checks=selector.rules,
            calibrated=True,
        )
        return replace(reply, band=band_of(reply.answered, reply.confidence, selector.answered_at))


def _check_answerer(answerer: str) -> None:
    if answerer not in ANSWERERS:
        raise ValueError(f"Unknown answerer {answerer!r}: use one of {', '.join(ANSWERERS)}.")
