"""The retriever: dense (FAISS), lexical (BM25) or both fused, over the chunks of an index."""

from __future__ import annotations

import functools
from collections.abc import Collection as Set
from typing import Protocol

import numpy as np

from rag.answer.question import Query
from rag.index.lexicon import Lexicon
from rag.index.store import Index, content_tokens
from rag.settings import METHODS, Method
from rag.types import Passage

RRF_K = 60
# Past `rag.index.vectors.EXACT_LIMIT` chunks, the length of each list fused (see `InProcess`): past
# the first hundred, a chunk's share of a fused score is under 1/160.
CANDIDATES = 100
FILTERED_DEPTH = 10


class Backend(Protocol):
    """Where the chunks are searched: in this process (`InProcess`) or on a server
    (`rag.search.milvus.MilvusBackend`)."""

    def search(
        self,
        vector: np.ndarray,
        terms: list[str],
        *,
        k: int,
        method: Method,
        articles: Set[str] | None,
    ) -> list[tuple[int, float]]:
        """The best k chunks as (chunk id, score), best first.

        Args:
            vector: The question's embedding.
            terms: The question's BM25 terms, as the collection spells them.
            k: How many.
            method: `dense`, `bm25` or `hybrid` (reciprocal rank fusion of the two).
            articles: Only chunks of these article ids; None for all.
        """
        ...


class InProcess:
    """FAISS and bm25s in this process: the default backend.

    Up to `rag.index.vectors.EXACT_LIMIT` chunks every chunk is scored both ways and the fused rank
    is exact. Past it, the approximate vector index and BM25 each give their best
    `CANDIDATES`, and those lists are fused, as a search server does.
    """

    def __init__(self, index: Index, lexicon: Lexicon) -> None:
        self.index = index
        self.lexicon = lexicon

    def dense_scores(self, vector: np.ndarray) -> np.ndarray:
        """Cosine similarity of a question's vector to every chunk (exact indexes)."""
        n = len(self.index.chunk_vectors)
        ids, scores = self.index.chunk_vectors.search(vector, n)
        out = np.full(n, -1.0, dtype=np.float32)
        valid = ids >= 0
        out[ids[valid]] = scores[valid]
        return out

    def _shortlists(
        self, vector: np.ndarray, terms: list[str], *, k: int, method: Method, allowed
    ) -> list[tuple[int, float]]:
        # With a filter, deeper lists, so that enough allowed chunks remain in them.
        depth = max(k, CANDIDATES) * (FILTERED_DEPTH if allowed is not None else 1)
        lists = []
        if method in ("dense", "hybrid"):
            ids, scores = self.index.chunk_vectors.search(vector, depth)
            lists.append([(int(i), float(v)) for i, v in zip(ids, scores, strict=True)])
        if method in ("bm25", "hybrid"):
            scores = self.lexicon.term_scores(terms)
            top = np.argpartition(-scores, min(depth, len(scores) - 1))[:depth]
            top = top[np.argsort(-scores[top], kind="stable")]
            lists.append([(int(i), float(scores[i])) for i in top if scores[i] > 0])
        if allowed is not None:
            lists = [[(i, v) for i, v in found if allowed[i]] for found in lists]
        if method != "hybrid":
            return lists[0][:k]
        fused: dict[int, float] = {}
        for found in lists:
            for rank, (i, _) in enumerate(found, start=1):
                fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank)
        return sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]

    def search(
        self,
        vector: np.ndarray,
        terms: list[str],
        *,
        k: int,
        method: Method,
        articles: Set[str] | None,
    ) -> list[tuple[int, float]]:
        """See `Backend.search`."""
        allowed = None
        if articles is not None:
            ids = self.index.sentences.article_ids
            wanted = np.array([a in articles for a in ids], dtype=bool)
            allowed = wanted[self.index.chunks.article_rows]
        if not self.index.chunk_vectors.exact:
            return self._shortlists(vector, terms, k=k, method=method, allowed=allowed)
        if method == "dense":
            scores = self.dense_scores(vector)
        else:
            lexical = self.lexicon.term_scores(terms)
            # A chunk with none of the question's terms is no BM25 match: no rank, no share.
            lexical = np.where(lexical > 0, lexical, -np.inf)
            scores = lexical if method == "bm25" else _rrf([self.dense_scores(vector), lexical])
        if allowed is not None:
            scores = np.where(allowed, scores, -np.inf)
        order = [int(i) for i in np.argsort(-scores, kind="stable")[:k] if np.isfinite(scores[i])]
        return [(i, float(scores[i])) for i in order]


class Retriever:
    """Finds the chunks of an index that best match a question."""

    def __init__(self, index: Index, encoder, *, backend: Backend | None = None) -> None:
        self.index = index
        self.encoder = encoder
        self.lexicon = index.lexicon
        self.backend = backend or InProcess(index, self.lexicon)
        # Cached per retriever, not per class: a class-level cache would keep every index
        # replaced by a hot swap alive.
        self._encode_question = functools.lru_cache(maxsize=1024)(self._encode)

    def _encode(self, question: str) -> tuple[np.ndarray, np.ndarray]:
        vector, pieces, vectors = self.encoder.encode_query(question)
        return vector, content_tokens(pieces, vectors)

    def question_vector(self, question: str) -> np.ndarray:
        """The question's embedding, cached for repeated questions."""
        return self._encode_question(question)[0]

    def question_tokens(self, question: str) -> np.ndarray:
        """Vectors of the question's content word pieces, cached for repeated questions."""
        return self._encode_question(question)[1]

    def retrieve(
        self,
        query: Query,
        k: int = 5,
        *,
        method: Method = "hybrid",
        articles: Set[str] | None = None,
    ) -> list[Passage]:
        """Return the top-k passages for a question.

        Args:
            query: The analysed question (`rag.answer.question.analyse`).
            k: How many passages.
            method: `dense` (embeddings), `bm25` (words) or `hybrid` (reciprocal rank fusion).
            articles: Only chunks of these article ids (filters); None for all.

        Returns:
            Passages best first, each with its score (cosine, BM25, or fused) and article.
        """
        if method not in METHODS:
            raise ValueError(
                f"unknown retrieval method {method!r}; use one of {', '.join(METHODS)}"
            )
        found = self.backend.search(
            self.question_vector(query.text),
            list(query.terms),
            k=k,
            method=method,
            articles=articles,
        )
        chunks = [self.index.chunks[i] for i, _ in found]
        return [
            Passage(chunk, self.index.articles[chunk.article_id], score, rank)
            for rank, (chunk, (_, score)) in enumerate(zip(chunks, found, strict=True), start=1)
        ]


def _rrf(score_lists: list[np.ndarray]) -> np.ndarray:
    # Reciprocal rank fusion; a -inf score is no match and adds nothing.
    fused = np.zeros_like(score_lists[0], dtype=np.float64)
    for scores in score_lists:
        ranks = np.empty(len(scores), dtype=np.int64)
        ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
        fused += np.where(np.isfinite(scores), 1.0 / (RRF_K + ranks), 0.0)
    return fused.astype(np.float32)
