"""The lexical index: BM25 over chunk terms, saved with the index and read from disk by term."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import bm25s
import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

from rag.index.tables import RowFile
from rag.text import terms

logging.getLogger("bm25s").setLevel(logging.WARNING)

# The score matrix in compressed columns, one column per term: the scores of the chunks
# that hold term t are DATA[INDPTR[t]:INDPTR[t + 1]], for the chunks INDICES[same].
DATA, INDICES, INDPTR = "bm25-data.npy", "bm25-indices.npy", "bm25-indptr.npy"
VOCABULARY, PARAMS = "bm25-vocab.json", "bm25-params.json"
FILES = (DATA, INDICES, INDPTR, VOCABULARY, PARAMS)


class Lexicon:
    """BM25 over chunk terms (bm25s's Lucene variant), with typo-tolerant mapping of unknown
    query terms.

    A built lexicon holds its score matrix in memory; a loaded one reads the columns of a
    question's terms from disk when asked (see `load`).
    """

    def __init__(self, texts: list[str]) -> None:
        """Index the terms of the texts (chunks), one document each."""
        bm25 = bm25s.BM25()
        bm25.index(_term_ids(texts), show_progress=False)
        self._setup(
            bm25.scores["data"],
            bm25.scores["indices"],
            np.asarray(bm25.scores["indptr"], dtype=np.int64),
            bm25.vocab_dict,
            int(bm25.scores["num_docs"]),
        )

    def _setup(self, data, indices, indptr: np.ndarray, vocabulary: dict[str, int], documents: int):
        self._data, self._indices, self._indptr = data, indices, indptr
        self._ids = vocabulary
        self.documents = documents
        # A term's document frequency is the length of its column.
        counts = np.diff(indptr)
        self.document_frequency = {t: int(counts[i]) for t, i in vocabulary.items() if t}
        self.vocabulary = set(self.document_frequency)
        # Close spellings share their first letter: candidates are looked up by it.
        self._by_letter: dict[str, list[str]] = {}
        for word in sorted(self.vocabulary):
            self._by_letter.setdefault(word[:1], []).append(word)
        # Cached per lexicon: a class-level cache would keep replaced indexes alive.
        self.resolve = functools.lru_cache(maxsize=4096)(self._resolve)

    @property
    def nbytes(self) -> int:
        """The bytes of the score matrix."""
        return sum(np.asarray(a).nbytes for a in (self._data, self._indices, self._indptr))

    def save(self, directory: Path) -> None:
        """Write the lexicon into a folder (the files in `FILES`)."""
        np.save(directory / DATA, np.asarray(self._data))
        np.save(directory / INDICES, np.asarray(self._indices))
        np.save(directory / INDPTR, self._indptr)
        (directory / VOCABULARY).write_text(json.dumps(self._ids), encoding="utf-8")
        (directory / PARAMS).write_text(json.dumps({"documents": self.documents}), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> Lexicon:
        """The lexicon `save` wrote; the scores stay on disk and a question reads its terms'.

        Raises:
            ValueError, KeyError, OSError: A file is unreadable or does not fit the others.
        """
        lexicon = cls.__new__(cls)
        data, indices = RowFile(directory / DATA), RowFile(directory / INDICES)
        indptr = np.load(directory / INDPTR)
        vocabulary = json.loads((directory / VOCABULARY).read_text(encoding="utf-8"))
        documents = int(json.loads((directory / PARAMS).read_text(encoding="utf-8"))["documents"])
        if not (len(data) == len(indices) == indptr[-1]) or len(indptr) != len(vocabulary) + 1:
            raise ValueError(f"the BM25 files in {directory} do not fit together")
        lexicon._setup(data, indices, indptr, vocabulary, documents)
        return lexicon

    def idf(self, term: str) -> float:
        """Inverse document frequency over the chunks (0 for a term that is nowhere)."""
        df = self.document_frequency.get(term, 0)
        return float(np.log(1 + (self.documents - df + 0.5) / (df + 0.5))) if df else 0.0

    def _resolve(self, term: str) -> tuple[str, ...]:
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

    def term_scores(self, query: list[str]) -> np.ndarray:
        """BM25 score of every chunk for terms already resolved (see `query_terms`): the sum,
        term by term, of each chunk's score for the term."""
        scores = np.zeros(self.documents, dtype=np.float32)
        for term in query:
            column = self._ids.get(term)
            if column is None:
                continue
            start, end = int(self._indptr[column]), int(self._indptr[column + 1])
            scores[self._indices[start:end]] += self._data[start:end]
        return scores


def _term_ids(texts: list[str]) -> tuple[list[np.ndarray], dict[str, int]]:
    # Each text's terms as an array of vocabulary ids: a million chunks' terms as strings
    # would take gigabytes. A text without terms gets the empty term, as bm25s gives it, and
    # the vocabulary always holds it, as bm25s would add it after the matrix is made.
    vocabulary: dict[str, int] = {}
    ids = []
    for text in texts:
        found = terms(text) or [""]
        ids.append(
            np.fromiter(
                (vocabulary.setdefault(t, len(vocabulary)) for t in found), np.int32, len(found)
            )
        )
    vocabulary.setdefault("", len(vocabulary))
    return ids, vocabulary
