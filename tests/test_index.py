"""Chunking, saving and loading the index, with a fake encoder (fast plumbing tests)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import faiss
import numpy as np
import pytest

from rag.answer.question import analyse
from rag.build.chunking import chunk_articles
from rag.build.indexing import build_index
from rag.build.updates import open_index
from rag.errors import IndexCorruptError, IndexStaleError
from rag.index.store import load_index, save_index
from rag.index.tables import RowFile
from rag.ingest.files import load_collection
from rag.search.retrieval import Retriever
from rag.settings import DEFAULT_COLLECTION, ChunkSettings, Settings
from tests.conftest import FakeEncoder


def test_every_sentence_offset_slices_back_to_its_sentence(fake_encoder):
    articles = load_collection().articles
    chunks = chunk_articles(articles, fake_encoder.count_tokens, ChunkSettings())
    by_id = {a.id: a for a in articles}
    covered = {a.id: set() for a in articles}
    for chunk in chunks:
        article = by_id[chunk.article_id]
        assert article.text[chunk.start : chunk.end] == chunk.text
        for start, end in chunk.sentences:
            sentence = article.text[start:end]
            assert sentence == sentence.strip() and sentence
            assert chunk.start <= start < end <= chunk.end <= article.body_end
            covered[article.id].add((start, end))
    for article in articles:
        # every sentence of the body is in some chunk
        assert sum(e - s for s, e in covered[article.id]) >= 0.9 * len(
            article.body.replace("\n\n", "")
        )


def test_chunks_fit_the_window_and_overlap_by_one_sentence(fake_encoder):
    articles = load_collection().articles
    chunks = chunk_articles(articles, fake_encoder.count_tokens, ChunkSettings(max_tokens=80))
    for chunk in chunks:
        if len(chunk.sentences) > 1:
            assert fake_encoder.count_tokens([chunk.text])[0] <= 80 + 2 * len(chunk.sentences)
    same_section = [
        (a, b)
        for a, b in zip(chunks, chunks[1:], strict=False)
        if a.article_id == b.article_id and a.section == b.section and len(a.sentences) > 1
    ]
    assert same_section
    for a, b in same_section:
        assert a.sentences[-1] == b.sentences[0]


def test_digest_chunks_never_cross_items(fake_encoder):
    articles = load_collection().articles
    digest = next(a for a in articles if a.title.startswith("News you may have missed"))
    for chunk in chunk_articles([digest], fake_encoder.count_tokens, ChunkSettings()):
        section = digest.sections[chunk.section]
        assert section.start <= chunk.start and chunk.end <= section.end


@pytest.fixture
def saved(tmp_path, fake_encoder):
    collection = load_collection()
    index = build_index(collection, fake_encoder, ChunkSettings())
    save_index(index, tmp_path / "idx")
    return tmp_path / "idx", index


def test_saved_index_loads_with_the_same_results(saved, fake_encoder):
    directory, index = saved
    loaded = load_index(directory)
    assert loaded.chunks == index.chunks and loaded.articles == index.articles
    question = "Who shot Hisham al-Hashimi?"
    before = [
        (p.chunk.id, round(p.score, 5))
        for p in Retriever(index, fake_encoder).retrieve(analyse(question, index.lexicon), 5)
    ]
    after = [
        (p.chunk.id, round(p.score, 5))
        for p in Retriever(loaded, fake_encoder).retrieve(analyse(question, loaded.lexicon), 5)
    ]
    assert before == after
    assert loaded.manifest["model"] == "fake-hashing" and loaded.manifest["chunks"] == len(
        index.chunks
    )


@pytest.mark.parametrize("name", ["chunks.faiss", "store.json", "sentences.npy"])
def test_truncated_file_gives_a_clear_error(saved, name):
    directory, _ = saved
    generation = next(directory.glob("gen-*"))
    path = generation / name
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(IndexCorruptError) as error:
        load_index(directory)
    assert str(path) in str(error.value) and "rag index --index" in str(error.value)


def test_a_zeroed_file_gives_a_clear_error(saved):
    directory, _ = saved
    path = next(directory.glob("gen-*")) / "tokens.npy"
    path.write_bytes(bytes(path.stat().st_size))
    with pytest.raises(IndexCorruptError, match="tokens.npy is altered"):
        load_index(directory)


def test_vectors_of_another_width_are_named(saved):
    import hashlib
    import json

    import numpy as np

    directory, _ = saved
    generation = next(directory.glob("gen-*"))
    path = generation / "sentences.npy"
    vectors = np.load(path)
    np.save(path, np.zeros((len(vectors), 8), dtype=np.float32))
    manifest_path = generation / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["sentences.npy"] = {
        "bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="sentences.npy holds vectors of 8 dimensions"):
        load_index(directory)


def test_a_crash_while_saving_leaves_the_old_index(saved, fake_encoder, monkeypatch):
    directory, index = saved

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", crash)
    with pytest.raises(OSError):
        save_index(index, directory)
    assert load_index(directory).chunks == index.chunks


def test_changed_collection_is_detected(tmp_path, fake_encoder):
    source = tmp_path / "articles.txt"
    source.write_text(DEFAULT_COLLECTION.read_text(encoding="utf-8"), encoding="utf-8")
    settings = Settings(collection=(source,), index_dir=tmp_path / "idx")
    index, _ = open_index(settings, fake_encoder)
    with source.open("a", encoding="utf-8") as f:
        f.write(
            "\n\nA new article\n\nIt says something new.\n\nAuthor: X | Date: 01 May 2021 | Permalink\n"
        )
    with pytest.raises(IndexStaleError, match="collection has changed"):
        open_index(dataclasses.replace(settings, rebuild="never"), fake_encoder)
    rebuilt, _ = open_index(settings, fake_encoder)
    assert len(rebuilt.articles) == len(index.articles) + 1


def test_changed_chunking_is_detected(tmp_path, fake_encoder):
    settings = Settings(index_dir=tmp_path / "idx")
    open_index(settings, fake_encoder)
    other = dataclasses.replace(settings, chunking=ChunkSettings(max_tokens=128), rebuild="never")
    with pytest.raises(IndexStaleError, match="chunking"):
        open_index(other, fake_encoder)


def test_a_second_indexer_waits_then_refuses_and_a_killed_one_frees_the_lock(tmp_path):
    import signal
    import subprocess
    import sys

    from rag.build.indexing import build_lock
    from rag.errors import IndexBusyError

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from rag.build.indexing import build_lock\n"
            f"with build_lock(Path({str(tmp_path)!r})):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(IndexBusyError, match="Another process has been building"),
            build_lock(tmp_path, wait_seconds=0.5),
        ):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        with build_lock(tmp_path, wait_seconds=5):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_a_rebuild_embeds_only_new_text_and_equals_a_full_build(tmp_path, fake_encoder):
    from tests.conftest import Counting

    source = tmp_path / "articles.txt"
    source.write_text(DEFAULT_COLLECTION.read_text(encoding="utf-8"), encoding="utf-8")
    added = tmp_path / "added.txt"
    settings = Settings(collection=(source, added), index_dir=tmp_path / "idx")
    added.write_text("Old news\n\nNothing happened on Monday.", encoding="utf-8")
    open_index(settings, Counting())
    added.write_text(
        "Drone strike near Baghdad\n\nA drone strike killed a militia commander near Baghdad"
        " airport on Tuesday. The militia vowed revenge.",
        encoding="utf-8",
    )
    counting = Counting()
    incremental, _ = open_index(settings, counting)
    assert counting.texts and all(
        "drone strike" in t.lower() or "militia" in t.lower() for t in counting.texts
    )
    assert incremental.manifest["embedded"]["chunks"] == 1
    assert not any("Nothing happened" in t for t in (c.text for c in incremental.chunks))
    full = build_index(load_collection([source, added]), fake_encoder, ChunkSettings())
    assert incremental.chunks == full.chunks and incremental.sentences == full.sentences
    assert np.array_equal(incremental.sentence_vectors, full.sentence_vectors)
    assert np.array_equal(incremental.token_vectors, full.token_vectors)
    assert np.array_equal(incremental.token_offsets, full.token_offsets)
    for question in ("Who vowed revenge?", "Who shot Hisham al-Hashimi?"):
        a = [
            (p.chunk.id, p.score)
            for p in Retriever(incremental, fake_encoder).retrieve(
                analyse(question, incremental.lexicon), 5
            )
        ]
        b = [
            (p.chunk.id, p.score)
            for p in Retriever(full, fake_encoder).retrieve(analyse(question, full.lexicon), 5)
        ]
        assert a == b


def test_an_index_without_piece_vectors_saves_loads_and_is_checked(tmp_path, fake_encoder):
    collection = load_collection([DEFAULT_COLLECTION])
    index = build_index(collection, fake_encoder, ChunkSettings(), pieces=False)
    assert not index.has_pieces and index.manifest["pieces"] is False
    save_index(index, tmp_path)
    generation = next(tmp_path.glob("gen-*"))
    assert sorted(p.name for p in generation.iterdir()) == [
        "articles.arrow",
        "bm25-data.npy",
        "bm25-indices.npy",
        "bm25-indptr.npy",
        "bm25-params.json",
        "bm25-vocab.json",
        "chunk_spans.npy",
        "chunks.faiss",
        "manifest.json",
        "sentence_spans.npy",
        "sentences.npy",
        "store.json",
    ]
    loaded = load_index(tmp_path)
    assert not loaded.has_pieces and loaded.chunks == index.chunks
    with pytest.raises(ValueError, match="does not store"):
        loaded.sentence_tokens(0)
    with (generation / "sentences.npy").open("r+b") as f:
        f.seek(300)
        f.write(b"\xff" * 8)
    with pytest.raises(IndexCorruptError, match="sentences.npy"):
        load_index(tmp_path)


def _approximate(index):
    """The same index with its chunk vectors in an IVF index, as past `EXACT_LIMIT` chunks."""
    from rag.index.vectors import build_vectors

    rows = index.chunk_vectors.reconstruct(np.arange(len(index.chunks)))
    return dataclasses.replace(index, chunk_vectors=build_vectors(rows, exact_limit=0))


def test_an_approximate_chunk_index_fuses_shortlists_and_survives_a_reload(tmp_path):
    from rag.index.vectors import Vectors

    exact = build_index(load_collection(), FakeEncoder(), ChunkSettings())
    approximate = _approximate(exact)
    assert not approximate.chunk_vectors.exact
    questions = [
        "Who killed Soleimani?",
        "Who shot Hisham al-Hashimi?",
        "What did the UN report say?",
    ]

    def top(index, question, method):
        found = Retriever(index, FakeEncoder()).retrieve(
            analyse(question, index.lexicon), 5, method=method
        )
        # a chunk without a word of the question is no BM25 match, whatever its rank
        return [p.chunk.id for p in found if method != "bm25" or p.score > 0]

    for question in questions:
        for method in ("dense", "bm25", "hybrid"):
            a, b = top(exact, question, method), top(approximate, question, method)
            assert len(set(a) & set(b)) >= min(4, len(a)), (question, method, a, b)
    article = exact.chunks[0].article_id
    filtered = Retriever(approximate, FakeEncoder()).retrieve(
        analyse("Iraq", approximate.lexicon), 5, articles={article}
    )
    assert filtered and {p.article.id for p in filtered} == {article}
    save_index(approximate, tmp_path)
    generation = tmp_path / (tmp_path / "CURRENT").read_text().strip()
    assert (generation / "chunks.npy").is_file()
    loaded = load_index(tmp_path)
    assert isinstance(loaded.chunk_vectors, Vectors) and not loaded.chunk_vectors.exact
    assert isinstance(loaded.chunk_vectors.matrix, RowFile)
    question = questions[0]
    assert [
        p.chunk.id
        for p in Retriever(loaded, FakeEncoder()).retrieve(analyse(question, loaded.lexicon), 5)
    ] == [
        p.chunk.id
        for p in Retriever(approximate, FakeEncoder()).retrieve(
            analyse(question, approximate.lexicon), 5
        )
    ]
    (generation / "chunks.npy").unlink()
    with pytest.raises(IndexCorruptError, match="chunks.npy is missing"):
        load_index(tmp_path)
