"""The lexical index: BM25 over chunk terms, saved with the index and read in place."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import bm25s
import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

from rag.text import terms

logging.getLogger("bm25s").setLevel(logging.WARNING)

# bm25s's files, named for the index folder they share with the other index files.
FILES = {
    "data_name": "bm25-data.npy",
    "indices_name": "bm25-indices.npy",
    "indptr_name": "bm25-indptr.npy",
    "vocab_name": "bm25-vocab.json",
    "params_name": "bm25-params.json",
}


class Lexicon:
    """BM25 over chunk terms, with typo-tolerant mapping of unknown query terms."""

    def __init__(self, texts: list[str] | None = None, *, bm25: bm25s.BM25 | None = None) -> None:
        """Index the texts' terms, or wrap a BM25 index already made (see `load`)."""
        if bm25 is None:
            bm25 = bm25s.BM25()
            bm25.index(_term_ids(texts or []), show_progress=False)
        self._bm25 = bm25
        # A term's document frequency is the length of its column of the score matrix.
        counts = np.diff(np.asarray(bm25.scores["indptr"]))
        self.document_frequency = {
            term: int(counts[i]) for term, i in bm25.vocab_dict.items() if term
        }
        self.vocabulary = set(self.document_frequency)
        # Close spellings share their first letter: candidates are looked up by it.
        self._by_letter: dict[str, list[str]] = {}
        for word in sorted(self.vocabulary):
            self._by_letter.setdefault(word[:1], []).append(word)
        self.documents = int(bm25.scores["num_docs"])

    def save(self, directory: Path) -> tuple[str, ...]:
        """Write the BM25 index into a folder; returns the names of the files written."""
        self._bm25.save(str(directory), show_progress=False, **FILES)
        return tuple(FILES.values())

    @classmethod
    def load(cls, directory: Path) -> Lexicon:
        """The lexicon `save` wrote, its score matrix memory-mapped rather than read."""
        return cls(bm25=bm25s.BM25.load(str(directory), mmap=True, show_progress=False, **FILES))

    def idf(self, term: str) -> float:
        """Inverse document frequency over the chunks (0 for a term that is nowhere)."""
        df = self.document_frequency.get(term, 0)
        return float(np.log(1 + (self.documents - df + 0.5) / (df + 0.5))) if df else 0.0

    @functools.lru_cache(maxsize=4096)
    def resolve(self, term: str) -> tuple[str, ...]:
        """Map a query term to the collection's terms: itself, or close spellings of it.

        A close spelling is one or two edits away (two for words of eight letters or more)
        with the same first letter: `kataib` finds `kitaib`, `soliemani` finds `soleimani`,
        but `population` does not become `popular`.
        """
        if term in self.vocabulary or len(term) < 5 or term.isdigit():
            return (term,) if term in self.vocabulary else ()
        limit = 2 if len(term) >= 8 else 1
        found = process.extract(
            term,
            self._by_letter.get(term[:1], []),
            scorer=OSA.distance,
            score_cutoff=limit,
            limit=None,
        )
        close = sorted((int(distance), word) for word, distance, _ in found)
        return tuple(word for _, word in close[:2])

    def query_terms(self, question: str) -> list[str]:
        """The question's terms as they are spelled in the collection."""
        return [t for term in terms(question) for t in self.resolve(term)]

    def term_scores(self, query: list[str]) -> np.ndarray:
        """BM25 score of every chunk for terms already resolved (see `query_terms`)."""
        if not query:
            return np.zeros(self.documents, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(query), dtype=np.float32)


def _term_ids(texts: list[str]) -> tuple[list[np.ndarray], dict[str, int]]:
    # Each text's terms as an array of vocabulary ids: a million chunks' terms as strings
    # would take gigabytes. A text without terms gets the empty term, as bm25s gives it.
    vocabulary: dict[str, int] = {}
    ids = []
    for text in texts:
        found = terms(text) or [""]
        ids.append(
            np.fromiter(
                (vocabulary.setdefault(t, len(vocabulary)) for t in found), np.int32, len(found)
            )
        )
    return ids, vocabulary
