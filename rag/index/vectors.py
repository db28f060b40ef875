"""Dense vectors searched by inner product: exact when few, an IVF index re-ranked when many."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from rag.index.tables import RowFile


def vector_files(name: str) -> tuple[str, str]:
    """The files `save_vectors` writes under a name: the faiss index, the float16 rows."""
    return f"{name}.faiss", f"{name}.npy"


FILES = vector_files("vectors")
# A flat scan of 100k float32 rows takes ~7 ms a query on one core: up to here exact search costs
# nothing worth saving; past it the scan grows towards ~70 ms at 1M rows.
EXACT_LIMIT = 100_000
# Candidates from the IVF index re-scored against the float16 rows: its 8-bit codes rank so
# nearly exactly that 30 gave the same recall@10 as 100 or 200 on synthetic 1M-row data.
RERANK = 50
# Lists scanned per query: a quarter of them, and at least NPROBE. Real chunks among a
# million others (SQuAD's training articles among distractors made of its sentences, its
# questions as queries) need that many: recall@10 against exact search was 0.94 with 64 of
# 1,000 lists, 0.972 with 128 and 0.991 with 256 (10 ms a query on one core); at 100k rows
# 0.966 with 64 of 316 lists and 0.992 with 128.
NPROBE = 128
NPROBE_SHARE = 4
# Rows per list in the k-means training sample (faiss warns below 39).
TRAIN_PER_LIST = 64
ADD_BLOCK = 65_536


def nlist_for(rows: int) -> int:
    """The number of IVF lists for `rows` vectors.

    About sqrt(rows) (1,000 at 1M): with `nprobe_for` lists scanned, as good a recall as 4 * sqrt(rows)
    lists for a few ms more a query, and its k-means trains in seconds rather than minutes.

    Args:
        rows: How many vectors the index holds.

    Returns:
        The number of lists, at least 1.
    """
    return max(1, min(round(math.sqrt(rows)), rows // TRAIN_PER_LIST))


def nprobe_for(nlist: int) -> int:
    """How many of `nlist` lists a query scans (see `NPROBE`)."""
    return min(nlist, max(NPROBE, nlist // NPROBE_SHARE))


@dataclass
class Vectors:
    """Unit-length vectors, searchable by inner product; ids are row numbers."""

    index: faiss.Index
    # float16 copies of the rows, which an approximate index's candidates are re-scored
    # with; None for an exact (flat) index, which holds the rows itself
    matrix: np.ndarray | RowFile | None = None

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dimension(self) -> int:
        """The vectors' width."""
        return int(self.index.d)

    @property
    def exact(self) -> bool:
        """Whether search scans every row (a flat index) rather than an IVF index."""
        return not isinstance(self.index, faiss.IndexIVF)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` rows of highest inner product with each query, best first.

        Args:
            query: One query of shape (d,) or a batch of shape (n, d), float32.
            k: How many rows to return; fewer only when there are fewer rows.

        Returns:
            Row numbers (int64) and their inner products (float32), each of shape (k,) for one
            query or (n, k) for a batch.
        """
        queries = np.ascontiguousarray(np.atleast_2d(query), dtype=np.float32)
        k = min(k, len(self))
        if k <= 0:
            ids, scores = np.zeros((len(queries), 0), np.int64), np.zeros((len(queries), 0))
        elif self.exact:
            scores, ids = self.index.search(queries, k)
        else:
            ids, scores = self._reranked(queries, k)
        scores = scores.astype(np.float32, copy=False)
        return (ids[0], scores[0]) if np.ndim(query) == 1 else (ids, scores)

    def _reranked(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        depth = max(RERANK, k)
        _, candidates = self.index.search(
            queries, depth, params=faiss.SearchParametersIVF(nprobe=nprobe_for(self.index.nlist))
        )
        # The probed lists can hold fewer than k rows; scanning all lists always finds k.
        short = (candidates >= 0).sum(axis=1) < k
        if short.any():
            everything = faiss.SearchParametersIVF(nprobe=self.index.nlist)
            _, candidates[short] = self.index.search(queries[short], depth, params=everything)
        ids = np.empty((len(queries), k), dtype=np.int64)
        scores = np.empty((len(queries), k), dtype=np.float32)
        for row, (query, found) in enumerate(zip(queries, candidates, strict=True)):
            found = np.sort(found[found >= 0])
            exact = self.matrix[found].astype(np.float32) @ query
            best = np.argsort(-exact, kind="stable")[:k]
            ids[row], scores[row] = found[best], exact[best]
        return ids, scores

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of some rows.

        Args:
            ids: Row numbers.

        Returns:
            float32 rows: the vectors as given when exact, their float16 copies otherwise.
        """
        ids = np.asarray(ids, dtype=np.int64)
        if self.matrix is None:
            return self.index.reconstruct_batch(ids)
        return self.matrix[ids].astype(np.float32)


def build_vectors(vectors: np.ndarray, *, exact_limit: int = EXACT_LIMIT, seed: int = 0) -> Vectors:
    """Index vectors for inner-product search.

    Args:
        vectors: Unit-length rows, float32 or float16 (a memory map is read in blocks).
        exact_limit: Up to this many rows the index is flat and exact; past it, IVF with
            8-bit scalar codes whose candidates are re-ranked exactly.
        seed: Seeds the k-means of the lists and its training sample.

    Returns:
        The searchable vectors.
    """
    rows, dimension = vectors.shape
    matrix = None
    if rows <= exact_limit:
        index = faiss.IndexFlatIP(dimension)
    else:
        matrix = vectors if vectors.dtype == np.float16 else vectors.astype(np.float16)
        nlist = nlist_for(rows)
        index = faiss.index_factory(dimension, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        size = min(rows, TRAIN_PER_LIST * nlist)
        sample = np.random.default_rng(seed).choice(rows, size, replace=False)
        index.train(np.asarray(vectors[np.sort(sample)], dtype=np.float32))
    for start in range(0, rows, ADD_BLOCK):
        index.add(np.ascontiguousarray(vectors[start : start + ADD_BLOCK], dtype=np.float32))
    return Vectors(index, matrix)


def save_vectors(vectors: Vectors, directory: str | Path, *, name: str = "vectors") -> None:
    """Write the index and, for an approximate one, the float16 rows (see `vector_files`).

    Args:
        vectors: What to save.
        directory: Where; made if missing.
        name: What the files are called.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    index_file, matrix_file = vector_files(name)
    faiss.write_index(vectors.index, str(directory / index_file))
    if vectors.matrix is not None:
        np.save(directory / matrix_file, vectors.matrix)


def load_vectors(directory: str | Path, *, name: str = "vectors", on_disk: bool = True) -> Vectors:
    """Read what `save_vectors` wrote.

    Args:
        directory: Where it was saved.
        name: What the files are called.
        on_disk: Leave the float16 rows on disk rather than read them into memory; only the
            rows re-ranked are then read.

    Returns:
        The searchable vectors.
    """
    directory = Path(directory)
    index_file, matrix_file = vector_files(name)
    index = faiss.read_index(str(directory / index_file))
    if not isinstance(index, faiss.IndexIVF):
        return Vectors(index)
    matrix = directory / matrix_file
    return Vectors(index, RowFile(matrix) if on_disk else np.load(matrix))
