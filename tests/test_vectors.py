"""The dense vector store: exact and approximate search, saving and loading."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from rag.index.tables import RowFile
from rag.index.vectors import FILES, build_vectors, load_vectors, save_vectors


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    centres = _unit(rng.standard_normal((200, 32)))
    rows = _unit(centres[rng.integers(200, size=20_000)] + 0.25 * rng.standard_normal((20_000, 32)))
    queries = _unit(centres[rng.integers(200, size=100)] + 0.25 * rng.standard_normal((100, 32)))
    return rows, queries


@pytest.fixture(scope="module")
def approximate(clustered):
    return build_vectors(clustered[0], exact_limit=2_000)


def test_exact_search_on_a_hand_made_set():
    rows = _unit(np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], dtype=np.float32))
    vectors = build_vectors(rows)
    ids, scores = vectors.search(np.array([1, 0], dtype=np.float32), 3)
    assert vectors.exact
    assert ids.tolist() == [0, 2, 1]
    np.testing.assert_allclose(scores, [1, np.sqrt(0.5), 0], atol=1e-6)


def test_exact_search_returns_the_true_top_k():
    rng = np.random.default_rng(0)
    rows, queries = _unit(rng.standard_normal((500, 16))), _unit(rng.standard_normal((5, 16)))
    vectors = build_vectors(rows)
    for query in queries:
        ids, scores = vectors.search(query, 10)
        truth = np.argsort(-(rows @ query), kind="stable")[:10]
        assert ids.tolist() == truth.tolist()
        np.testing.assert_allclose(scores, rows[truth] @ query, rtol=1e-5)
    np.testing.assert_array_equal(vectors.reconstruct(np.array([3, 1])), rows[[3, 1]])


def test_approximate_search_recalls_the_top_10_with_exact_float16_scores(clustered, approximate):
    rows, queries = clustered
    stored = rows.astype(np.float16).astype(np.float32)
    assert not approximate.exact and len(approximate) == 20_000
    ids, scores = approximate.search(queries, 10)
    truth = np.argsort(-(queries @ stored.T), axis=1, kind="stable")[:, :10]
    recall = np.mean([len(set(a) & set(t)) / 10 for a, t in zip(ids, truth, strict=True)])
    assert recall >= 0.95
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", queries, stored[ids]), rtol=1e-6)
    assert (np.diff(scores, axis=1) <= 0).all()
    np.testing.assert_array_equal(approximate.reconstruct(ids[0]), stored[ids[0]])


def test_a_batch_gives_what_single_queries_give(clustered, approximate):
    queries = clustered[1][:3]
    ids, scores = approximate.search(queries, 5)
    assert ids.shape == scores.shape == (3, 5) and ids.dtype == np.int64
    assert scores.dtype == np.float32
    for query, row_ids, row_scores in zip(queries, ids, scores, strict=True):
        one_ids, one_scores = approximate.search(query, 5)
        np.testing.assert_array_equal(one_ids, row_ids)
        np.testing.assert_array_equal(one_scores, row_scores)


@pytest.mark.parametrize("exact_limit", [10_000, 0])
def test_k_larger_than_the_rows_returns_every_row(exact_limit):
    rows = _unit(np.random.default_rng(1).standard_normal((300, 16)))
    vectors = build_vectors(rows, exact_limit=exact_limit)
    ids, scores = vectors.search(rows[0], 500)
    assert sorted(ids.tolist()) == list(range(300))
    assert ids[0] == 0 and (np.diff(scores) <= 0).all()


@pytest.mark.parametrize("exact_limit", [100_000, 2_000])
def test_save_and_load_give_the_same_results(tmp_path, clustered, exact_limit):
    rows, queries = clustered
    vectors = build_vectors(rows[:5_000], exact_limit=exact_limit)
    save_vectors(vectors, tmp_path / "v")
    written = sorted(p.name for p in (tmp_path / "v").iterdir())
    assert written == (["vectors.faiss"] if vectors.exact else sorted(FILES))
    loaded = load_vectors(tmp_path / "v")
    assert len(loaded) == 5_000
    assert loaded.matrix is None if vectors.exact else isinstance(loaded.matrix, RowFile)
    assert loaded.exact == vectors.exact
    for a, b in zip(vectors.search(queries, 10), loaded.search(queries, 10), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_same_seed_builds_the_same_index(clustered):
    rows = clustered[0][:5_000]
    first, second = (build_vectors(rows, exact_limit=0, seed=3) for _ in range(2))
    other = build_vectors(rows, exact_limit=0, seed=4)
    assert (faiss.serialize_index(first.index) == faiss.serialize_index(second.index)).all()
    assert not np.array_equal(
        faiss.serialize_index(first.index), faiss.serialize_index(other.index)
    )


def test_k_beyond_the_probed_lists_still_returns_k_rows(monkeypatch, clustered):
    monkeypatch.setattr("rag.index.vectors.nprobe_for", lambda nlist: 1)
    rows, queries = clustered[0][:5_000], clustered[1][:2]
    ids, scores = build_vectors(rows, exact_limit=0).search(queries, 300)
    stored = rows.astype(np.float16).astype(np.float32)
    assert ids.shape == (2, 300) and (ids >= 0).all()
    assert all(len(set(row)) == 300 for row in ids.tolist())
    truth = np.argsort(-(queries @ stored.T), axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(ids[:, :10], truth)
