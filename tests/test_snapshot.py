"""The Parquet snapshot and the in-process batch build, with a fake encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.answer.question import analyse
from rag.build.indexing import build_index, index_from_snapshot
from rag.build.pipeline import build_snapshot, shard_size
from rag.build.snapshot import milvus_terms, read_snapshot
from rag.build.updates import index_in_batch
from rag.errors import IndexCorruptError, IndexMissingError, IndexStaleError
from rag.index.store import load_index
from rag.ingest.articles import Collection
from rag.ingest.files import load_collection
from rag.search.retrieval import Retriever
from rag.settings import DEFAULT_COLLECTION, ChunkSettings, Settings
from tests.conftest import FakeEncoder

QUESTIONS = ["Who killed Soleimani?", "Which port reopened?", "What did the parliament vote?"]


def _snapshot(path: Path, collection: Collection | None = None, **options) -> dict:
    return build_snapshot(
        collection or load_collection(),
        path,
        model=FakeEncoder.name,
        chunking=ChunkSettings(),
        encoder=FakeEncoder(),
        **options,
    )


def test_snapshot_round_trips_with_global_ids_across_shards(tmp_path):
    collection = load_collection()
    manifest = _snapshot(tmp_path / "snap", shard_articles=4)
    snapshot = read_snapshot(tmp_path / "snap")
    written = json.loads((tmp_path / "snap" / "manifest.json").read_text())
    assert manifest["build"]["shard_articles"] == 4
    assert written["counts"]["articles"] == len(collection.articles) == 15
    assert [s["file"] for s in written["shards"][:3]] == [
        "articles-00000.parquet",
        "chunks-00000.parquet",
        "sentences-00000.parquet",
    ]
    assert len(written["shards"]) == 3 * 4  # 15 articles in shards of 4
    assert snapshot.articles == list(collection.articles)
    assert [c.id for c in snapshot.chunks] == list(range(len(snapshot.chunks)))
    first_ids = [s["first_id"] for s in written["shards"] if s["table"] == "chunks"]
    assert first_ids[0] == 0 and first_ids == sorted(first_ids) and first_ids[1] > 0
    # every sentence names the chunk (global id) that holds it
    for ref in snapshot.sentences:
        chunk = snapshot.chunks[ref.chunk_id]
        assert chunk.article_id == ref.article_id and (ref.start, ref.end) in chunk.sentences
    assert snapshot.chunk_vectors.dtype == np.float16
    expected = FakeEncoder().encode([c.text for c in snapshot.chunks]).astype(np.float16)
    assert np.array_equal(snapshot.chunk_vectors, expected)
    for key in ("model", "model_revision", "dimension", "chunking", "lexical", "vectors"):
        assert key in written
    assert written["dimension"] == FakeEncoder.dimension


def test_shard_count_does_not_change_the_snapshot(tmp_path):
    _snapshot(tmp_path / "a", shard_articles=4)
    _snapshot(tmp_path / "b", shard_articles=15)
    a, b = read_snapshot(tmp_path / "a"), read_snapshot(tmp_path / "b")
    assert a.chunks == b.chunks and a.sentences == b.sentences
    assert np.array_equal(a.sentence_vectors, b.sentence_vectors)


def test_shard_size_depends_on_the_collection_alone():
    assert shard_size(15) == 8
    assert shard_size(64 * 100) == 100
    assert shard_size(10_000_000) == 512


def test_index_from_a_snapshot_matches_an_index_built_in_process(tmp_path):
    collection = load_collection()
    _snapshot(tmp_path / "snap")
    from_snapshot = index_from_snapshot(tmp_path / "snap")
    built = build_index(collection, FakeEncoder(), ChunkSettings())
    assert from_snapshot.chunks == built.chunks
    assert from_snapshot.sentences == built.sentences
    assert from_snapshot.articles == built.articles
    assert from_snapshot.twins == built.twins
    assert not from_snapshot.has_pieces
    for question in QUESTIONS:
        a = Retriever(from_snapshot, FakeEncoder()).retrieve(
            analyse(question, from_snapshot.lexicon), 5
        )
        b = Retriever(built, FakeEncoder()).retrieve(analyse(question, built.lexicon), 5)
        assert [p.chunk.id for p in a] == [p.chunk.id for p in b]


def test_an_altered_or_missing_shard_is_named(tmp_path):
    _snapshot(tmp_path / "snap")
    shard = tmp_path / "snap" / "chunks-00000.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="chunks-00000.parquet is altered"):
        read_snapshot(tmp_path / "snap")
    shard.unlink()
    with pytest.raises(IndexCorruptError, match="chunks-00000.parquet is missing"):
        read_snapshot(tmp_path / "snap")


def test_no_snapshot_or_another_format_is_a_clear_error(tmp_path):
    with pytest.raises(IndexMissingError, match="rag snapshot"):
        read_snapshot(tmp_path / "nothing")
    _snapshot(tmp_path / "snap")
    manifest = tmp_path / "snap" / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format_version": 99}))
    with pytest.raises(IndexStaleError, match="format 99"):
        read_snapshot(tmp_path / "snap")


class Failing(FakeEncoder):
    def __init__(self, after: int) -> None:
        self.calls = 0
        self.after = after

    def encode(self, texts, *, batch_size: int = 64):
        self.calls += 1
        if self.calls > self.after:
            raise RuntimeError("the model stopped")
        return super().encode(texts, batch_size=batch_size)


def test_a_failed_build_keeps_the_snapshot_before_and_leaves_nothing_else(tmp_path):
    _snapshot(tmp_path / "snap")
    before = (tmp_path / "snap" / "manifest.json").read_text()
    with pytest.raises(RuntimeError, match="stopped"):
        build_snapshot(
            load_collection(),
            tmp_path / "snap",
            model=FakeEncoder.name,
            chunking=ChunkSettings(),
            encoder=Failing(after=3),
            shard_articles=4,
        )
    assert (tmp_path / "snap" / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snap"]


def test_milvus_terms_split_back_into_the_bm25_terms():
    from rag.text import terms

    text = "Iraq's parliament voted 170-0 on the U.S. troops; 3.5 million people marched."
    joined = milvus_terms(text)
    assert len(joined.split()) == len(terms(text))
    assert all(t.replace("_", "").isalnum() for t in joined.split())


def test_rag_index_from_a_snapshot_serves_and_refuses_a_foreign_one(tmp_path):
    settings = Settings(
        collection=(DEFAULT_COLLECTION,), index_dir=tmp_path / "index", model=FakeEncoder.name
    )
    _snapshot(tmp_path / "snap")
    index, update = index_in_batch(settings, snapshot=tmp_path / "snap")
    assert update.built and update.articles == 15 and update.embedded_chunks == 0
    assert update.snapshot == tmp_path / "snap"
    from rag.cli.output import format_update

    assert f"index made from the snapshot in {tmp_path / 'snap'}" in format_update(update, {})
    loaded = load_index(tmp_path / "index")
    assert loaded.chunks == index.chunks and not loaded.has_pieces
    other = Settings(collection=(DEFAULT_COLLECTION,), index_dir=tmp_path / "other")
    with pytest.raises(IndexStaleError, match="built with model fake-hashing"):
        index_in_batch(other, snapshot=tmp_path / "snap")
    assert not (tmp_path / "other" / "CURRENT").exists()
