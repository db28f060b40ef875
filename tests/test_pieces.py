"""Compact word-piece vectors and the build that streams them to disk."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rag.build import indexing
from rag.build.indexing import EmbeddingCache, build_index
from rag.build.updates import open_index
from rag.errors import IndexCorruptError
from rag.index.disk import SCRATCH_PREFIX
from rag.index.pieces import (
    CODES_FILE,
    OFFSETS_FILE,
    PieceCodec,
    PieceWriter,
    StoredRows,
    open_pieces,
)
from rag.index.store import content_tokens, load_index, save_index
from rag.ingest.files import load_collection
from rag.settings import DEFAULT_COLLECTION, ChunkSettings, Settings

QUERIES = ("who won the election", "the price of oil", "a rocket launch was delayed")


@pytest.fixture
def tiny_blocks(monkeypatch):
    # Blocks far smaller than the collection, so that a build streams through many of them.
    monkeypatch.setattr(indexing, "SENTENCE_BLOCK", 7)
    monkeypatch.setattr(indexing, "CHUNK_BLOCK", 3)


def test_a_streamed_build_in_tiny_blocks_equals_the_in_memory_build(
    tmp_path, fake_encoder, tiny_blocks
):
    collection = load_collection()
    whole = build_index(collection, fake_encoder, ChunkSettings())
    streamed = build_index(collection, fake_encoder, ChunkSettings(), form="int8")
    assert streamed.compact is not None and whole.compact is None
    save_index(streamed, tmp_path)
    loaded = load_index(tmp_path)
    assert loaded.manifest["pieces"] == {"form": "int8", "pieces": len(whole.token_vectors)}
    for index in (streamed, loaded):
        assert index.chunks == whole.chunks and index.sentences == whole.sentences
        assert np.array_equal(np.asarray(index.sentence_vectors), whole.sentence_vectors)
        for query in fake_encoder.encode(list(QUERIES)):
            for got, want in zip(
                index.chunk_vectors.search(query, 10),
                whole.chunk_vectors.search(query, 10),
                strict=True,
            ):
                assert np.array_equal(got, want)
        # The fake encoder's pieces are one-hot: 8-bit codes give them back exactly.
        for number in range(len(whole.sentences)):
            assert np.allclose(index.sentence_tokens(number), whole.sentence_tokens(number))


def test_the_streamed_build_writes_its_files_as_it_goes(tmp_path, fake_encoder, tiny_blocks):
    scratch = tmp_path / "scratch"
    seen = []

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "sentences" and done < total:
            # What is on disk now: the header and the rows of the blocks done, no more.
            vectors = (scratch / "sentences.npy").stat().st_size
            codes = (scratch / "pieces" / CODES_FILE).stat().st_size
            seen.append((done, vectors, codes))

    index = build_index(
        load_collection(),
        fake_encoder,
        ChunkSettings(),
        form="int8",
        scratch=scratch,
        progress=progress,
    )
    assert len(seen) > 10
    width = fake_encoder.dimension
    for done, vectors, codes in seen:
        assert vectors == 128 + done * width * 2
        assert codes == 128 + int(index.compact.offsets[done]) * width
    assert [c for _, _, c in seen] == sorted({c for _, _, c in seen})


def test_a_build_past_the_limit_keeps_compact_pieces(tmp_path, fake_encoder, monkeypatch):
    monkeypatch.setattr(indexing, "PIECES_LIMIT", 5)
    index = build_index(load_collection(), fake_encoder, ChunkSettings())
    # The fake encoder's 64 dimensions do not split into 48 parts: 8-bit codes.
    assert index.compact is not None and index.compact.codec.form == "int8"
    assert index.has_pieces and index.manifest["pieces"]["form"] == "int8"
    lean = build_index(load_collection(), fake_encoder, ChunkSettings(), pieces=False)
    assert not lean.has_pieces and lean.manifest["pieces"] is False


@pytest.mark.parametrize("damage", ["truncate", "offsets"])
def test_a_damaged_compact_pieces_file_is_named_on_load(tmp_path, fake_encoder, damage):
    index = build_index(load_collection(), fake_encoder, ChunkSettings(), form="int8")
    generation = save_index(index, tmp_path / "index")
    codes = generation / CODES_FILE
    if damage == "truncate":
        with codes.open("r+b") as f:
            f.truncate(codes.stat().st_size - 10)
        with pytest.raises(IndexCorruptError, match=str(codes)):
            load_index(tmp_path / "index")
        # Without the manifest's checksums, the file's own header gives it away.
        with pytest.raises(ValueError, match=str(codes)):
            open_pieces(generation, "int8", dimension=fake_encoder.dimension)
    else:
        offsets = np.load(generation / OFFSETS_FILE)
        offsets[-1] += 1
        np.save(generation / OFFSETS_FILE, offsets)
        with pytest.raises(ValueError, match=str(generation / OFFSETS_FILE)):
            open_pieces(generation, "int8", dimension=fake_encoder.dimension)


def test_a_codec_refuses_a_form_it_does_not_know():
    with pytest.raises(ValueError, match="pq7"):
        PieceCodec.train("pq7", np.ones((10, 64), np.float32))


@pytest.mark.model
def test_compact_pieces_give_back_the_late_interaction_feature(tmp_path, real_encoder):
    # Real sentences and questions of the shipped collection, through the real model.
    articles = load_collection().articles
    texts = [s.strip() for a in articles for s in a.text.split(". ") if len(s.split()) > 5][:150]
    _, tokens = real_encoder.encode_with_tokens(texts)
    sentences = [content_tokens(p, v) for p, v in tokens]
    questions = [
        content_tokens(*real_encoder.encode_query(q)[1:])
        for q in ("Who leads the party?", "When did the launch happen?", *QUERIES)
    ]
    for form, closeness, feature in (("int8", 0.9995, 0.002), ("pq48", 0.85, 0.05)):
        writer = PieceWriter(tmp_path / form, form=form, dimension=real_encoder.dimension)
        for first in range(0, len(sentences), 50):
            writer.add(sentences[first : first + 50])
        pieces = writer.close()
        assert len(pieces) == len(sentences)
        cosines, moved = [], []
        for number, exact in enumerate(sentences):
            coded = pieces.rows(number)
            assert coded.shape == exact.shape
            cosines += list((coded * exact).sum(axis=1))
            for q in questions:
                moved.append(
                    abs((exact @ q.T).max(axis=0).mean() - (coded @ q.T).max(axis=0).mean())
                )
        assert np.mean(cosines) >= closeness, form
        assert np.mean(moved) <= feature, form


def test_a_build_past_the_limit_serves_from_its_generation_and_leaves_no_scratch(
    tmp_path, fake_encoder, monkeypatch
):
    monkeypatch.setattr(indexing, "PIECES_LIMIT", 5)
    settings = Settings(collection=(DEFAULT_COLLECTION,), index_dir=tmp_path / "index")
    index, _ = open_index(settings, fake_encoder)
    assert index.compact is not None
    assert index.compact.directory.parent == tmp_path / "index"
    assert index.compact.directory.name.startswith("gen-")
    assert not list((tmp_path / "index").glob(f"{SCRATCH_PREFIX}*"))
    # A scratch folder left by a build that died is swept by the next one.
    (tmp_path / "index" / f"{SCRATCH_PREFIX}abc123").mkdir()
    open_index(dataclasses.replace(settings, rebuild="always"), fake_encoder)
    assert not list((tmp_path / "index").glob(f"{SCRATCH_PREFIX}*"))


def test_a_rebuild_reuses_compact_pieces_without_decoding_them_all(tmp_path, fake_encoder):
    first = build_index(load_collection(), fake_encoder, ChunkSettings(), form="int8")
    save_index(first, tmp_path)
    cache = EmbeddingCache.from_index(load_index(tmp_path))
    assert all(isinstance(rows, StoredRows) for _, rows in cache.sentences.values())
    again = build_index(load_collection(), fake_encoder, ChunkSettings(), form="int8", cache=cache)
    assert again.manifest["embedded"] == {"chunks": 0, "sentences": 0}
    for number in range(len(first.sentences)):
        assert np.array_equal(again.sentence_tokens(number), first.sentence_tokens(number))
    # Below the limit, the same cache gives float16 pieces.
    small = build_index(load_collection(), fake_encoder, ChunkSettings(), cache=cache)
    assert small.compact is None and np.allclose(small.sentence_tokens(3), first.sentence_tokens(3))
