"""The index's column tables and lexicon: tiny inline data, exact rows."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import pytest

from rag.answer.question import analyse
from rag.build.indexing import build_index
from rag.index.lexicon import Lexicon
from rag.index.store import load_index, save_index
from rag.index.tables import (
    ArticleTable,
    Chunks,
    RowFile,
    SentenceRef,
    Sentences,
    bylines,
    read_articles,
    write_articles,
)
from rag.ingest.files import load_collection
from rag.settings import ChunkSettings
from rag.text import terms
from rag.types import Article, Chunk, Section

TEXT_A = "Rain fell. Roads shut. Schools stayed open."
TEXT_B = "The port reopened on Monday."


def _article(article_id: str, text: str, **more) -> Article:
    return Article(
        id=article_id,
        title=article_id.upper(),
        text=text,
        body_end=len(text),
        paragraphs=((0, len(text)),),
        sections=(Section(None, 0, len(text)),),
        **more,
    )


ARTICLES = {
    "a": _article("a", TEXT_A, author="Ana Ruiz", date=dt.date(2024, 5, 1)),
    "b": _article("b", TEXT_B, byline=(0, 3), url="https://example.org/b"),
}
REFS = [
    SentenceRef("a", 0, 10, 0),
    SentenceRef("a", 11, 22, 0),
    SentenceRef("a", 23, 43, 1),
    SentenceRef("b", 0, 28, 2),
]
CHUNKS = [
    Chunk(0, "a", 0, 0, 0, 22, TEXT_A[0:22], ((0, 10), (11, 22))),
    Chunk(1, "a", 0, 0, 11, 43, TEXT_A[11:43], ((11, 22), (23, 43))),
    Chunk(2, "b", 0, 0, 0, 28, TEXT_B, ((0, 28),)),
]


def test_sentence_and_chunk_tables_give_back_what_they_were_made_of():
    sentences = Sentences.of(REFS, list(ARTICLES))
    chunks = Chunks.of(CHUNKS, ARTICLES, sentences)
    assert list(sentences) == REFS and sentences[2] == REFS[2] and sentences[-1] == REFS[-1]
    assert list(chunks) == CHUNKS and chunks[1] == CHUNKS[1]
    assert list(chunks.sentence_numbers(1)) == [1, 2]
    assert list(chunks.article_rows) == [0, 0, 1]
    assert sentences.of_article(0) == range(0, 3) and sentences.of_article(1) == range(3, 4)
    assert sentences.number(0, 23) == 2
    with pytest.raises(KeyError):
        sentences.number(0, 5)


def test_tables_refuse_what_they_cannot_hold():
    with pytest.raises(ValueError, match="article order"):
        Sentences.of([REFS[1], REFS[0]], list(ARTICLES))
    sentences = Sentences.of(REFS, list(ARTICLES))
    renumbered = [CHUNKS[0], CHUNKS[2]]
    with pytest.raises(ValueError, match="numbered"):
        Chunks.of(renumbered, ARTICLES, sentences)


def test_articles_are_read_in_place_unchanged(tmp_path):
    path = tmp_path / "articles.arrow"
    many = {f"x{n}": _article(f"x{n}", TEXT_B) for n in range(70)}
    write_articles({**ARTICLES, **many}, path)
    table = read_articles(path)
    assert table["x69"] == many["x69"] and table["x31"] == many["x31"] and len(table) == 72
    write_articles(ARTICLES, path)
    table = read_articles(path)
    assert list(table) == ["a", "b"] and len(table) == 2 and "b" in table and "c" not in table
    assert table["a"] == ARTICLES["a"] and table["b"] == ARTICLES["b"]
    assert dict(table) == ARTICLES
    expected = [("a", "Ana Ruiz", dt.date(2024, 5, 1)), ("b", None, None)]
    assert list(bylines(table)) == expected == list(bylines(ARTICLES))


def test_a_row_file_reads_the_rows_asked_for(tmp_path, monkeypatch):
    matrix = np.arange(60, dtype=np.float16).reshape(20, 3)
    np.save(tmp_path / "m.npy", matrix)
    rows = RowFile(tmp_path / "m.npy")
    assert rows.shape == (20, 3) and len(rows) == 20 and rows.dtype == np.float16
    assert rows[4].tolist() == matrix[4].tolist() and rows[-1].tolist() == matrix[-1].tolist()
    picked = [7, 2, 3, 3, 19, -2]
    assert rows[picked].tolist() == matrix[picked].tolist()
    assert rows[5:9].tolist() == matrix[5:9].tolist() and rows[::4].tolist() == matrix[::4].tolist()
    assert np.asarray(rows).tolist() == matrix.tolist()
    monkeypatch.setattr("rag.index.tables.READ_BYTES", 7)  # reads longer than one call returns
    assert rows[2:9].tolist() == matrix[2:9].tolist()
    with pytest.raises(IndexError):
        rows[[1, 20]]
    with (tmp_path / "m.npy").open("r+b") as f:
        f.truncate(150)
    with pytest.raises(ValueError, match="not as long"):
        RowFile(tmp_path / "m.npy")
    (tmp_path / "m.npy").write_bytes(b"\x00" * 200)
    with pytest.raises(ValueError, match="not a .npy file"):
        RowFile(tmp_path / "m.npy")


def test_a_saved_lexicon_scores_as_the_built_one(tmp_path):
    texts = ["Rain fell on Basra.", "Basra port reopened.", "", "Schools stayed open."]
    built = Lexicon(texts)
    expected = Counter(t for text in texts for t in set(terms(text)))
    assert built.document_frequency == dict(expected) and built.documents == 4
    built.save(tmp_path)
    loaded = Lexicon.load(tmp_path)
    query = list(analyse("Basra port", loaded).terms)
    assert query == ["basra", "port"]
    assert np.allclose(loaded.term_scores(query), built.term_scores(query))
    assert loaded.term_scores(query)[1] > loaded.term_scores(query)[0] > 0
    assert loaded.idf("basra") == built.idf("basra") > 0


def test_a_loaded_index_leaves_its_large_parts_on_disk(tmp_path, fake_encoder):
    index = build_index(load_collection(), fake_encoder, ChunkSettings(), pieces=False)
    save_index(index, tmp_path)
    loaded = load_index(tmp_path)
    # Vectors and BM25 scores are read by row; articles by batch; only the tables are held.
    assert isinstance(loaded.sentence_vectors, RowFile)
    assert loaded.sentence_vectors.dtype == np.float16
    assert isinstance(loaded.lexicon._data, RowFile) and isinstance(
        loaded.lexicon._indices, RowFile
    )
    assert isinstance(loaded.articles, ArticleTable) and loaded.articles == index.articles
    assert loaded.sentences.spans.dtype == np.int32 == loaded.chunks.spans.dtype
    assert loaded.sentences.spans[:, 0].flags["C_CONTIGUOUS"]
    assert loaded.places == index.places and loaded.places
    first = index.sentences[0]
    assert loaded.article_sentences(first.article_id)[0] == (first.start, first.end)
