"""Build an index from a collection or a snapshot: chunked, embedded (reusing what is known), de-duplicated."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import shutil
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.build.chunking import article_key, chunk_articles
from rag.build.duplicates import near_duplicates, twin_sentences
from rag.errors import IndexBusyError
from rag.index.lexicon import Lexicon
from rag.index.pieces import CompactPieces, PieceWriter, RowWriter, StoredRows, default_form
from rag.index.store import (
    FORMAT_VERSION,
    PIECES_LIMIT,
    Index,
    Progress,
    content_tokens,
)
from rag.index.tables import (
    Chunks,
    RowFile,
    SentenceRef,
    Sentences,
)
from rag.index.vectors import Vectors, build_vectors
from rag.ingest.articles import Collection
from rag.patterns import place_names
from rag.settings import ChunkSettings
from rag.types import Article, Chunk

log = logging.getLogger(__name__)


LOCK_WAIT_SECONDS = 900.0


SENTENCE_BLOCK = 2048


CHUNK_BLOCK = 256


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class EmbeddingCache:
    """Vectors of texts embedded before, by the SHA-256 of the text: a rebuild embeds only
    what is new or changed."""

    chunks: dict[str, np.ndarray]
    # vector, content-token rows (None when the index did not store them)
    sentences: dict[str, tuple[np.ndarray, np.ndarray | None]]
    # The chunks of each article, by `article_key`, when made with the settings asked for.
    layouts: dict[str, list[Chunk]] = field(default_factory=dict)

    @classmethod
    def from_index(cls, index: Index, *, settings: ChunkSettings | None = None) -> EmbeddingCache:
        """The vectors of a saved index, by text, and its articles' chunks when it was cut
        with `settings` (an article left as it was is not split again)."""
        ids = np.arange(len(index.chunk_vectors), dtype=np.int64)
        chunk_vectors = index.chunk_vectors.reconstruct(ids) if len(ids) else []
        chunks = {_key(c.text): v for c, v in zip(index.chunks, chunk_vectors, strict=True)}
        sentence_vectors = np.asarray(index.sentence_vectors)
        compact = index.compact
        sentences = {
            _key(index.sentence_text(ref)): (
                sentence_vectors[n],
                # Compact pieces stay coded until a build uses them: decoded, all of them
                # would take 1.5 KB a piece.
                StoredRows(compact, n)
                if compact is not None
                else index.sentence_tokens(n)
                if index.has_pieces
                else None,
            )
            for n, ref in enumerate(index.sentences)
        }
        layouts: dict[str, list[Chunk]] = {}
        if settings is not None and index.manifest.get("chunking") == asdict(settings):
            by_article: dict[str, list[Chunk]] = {}
            for chunk in index.chunks:
                by_article.setdefault(chunk.article_id, []).append(chunk)
            layouts = {article_key(index.articles[a]): c for a, c in by_article.items()}
        return cls(chunks, sentences, layouts)


def build_index(
    collection: Collection,
    encoder,
    settings: ChunkSettings,
    *,
    cache: EmbeddingCache | None = None,
    progress: Progress | None = None,
    pieces: bool | None = None,
    form: str | None = None,
    scratch: Path | None = None,
) -> Index:
    """Chunk and embed a collection, and find its near-duplicate articles.

    Up to `PIECES_LIMIT` chunks (unless a `form` is given), everything is held in memory and
    word pieces are stored as float16. Past it the build streams: chunk vectors, sentence
    vectors and word pieces coded in `form` (`rag.index.pieces`) are written to files a block
    at a time, and the index reads them from there.

    Args:
        collection: The articles.
        encoder: The embedding model (see `embeddings.Encoder`).
        settings: Chunking settings.
        cache: Vectors from an earlier build with the same model; only texts it lacks are
            embedded.
        progress: Called as `progress(stage, done, total)` as texts are embedded.
        pieces: Store the sentences' word-piece vectors (by default, yes).
        form: How word pieces are coded (`int8` or `pqM`); by default float16 up to
            `PIECES_LIMIT` chunks and `rag.index.pieces.DEFAULT_FORM` past it.
        scratch: Where a streaming build writes its files (a new temporary folder by
            default, removed when the index is no longer used; saving copies them).

    Returns:
        The index, not yet saved; its manifest's `embedded` says how many chunks and
        sentences went through the model, and `duplicates` lists the near-duplicate pairs.
    """
    started = time.perf_counter()
    cache = cache or EmbeddingCache({}, {})
    dimension = int(encoder.dimension)
    chunks = chunk_articles(
        collection.articles, encoder.count_tokens, settings, known=cache.layouts
    )
    if form is None and len(chunks) > PIECES_LIMIT:
        form = default_form(dimension)
    if form is not None:
        return _streamed(
            collection,
            chunks,
            encoder,
            settings,
            cache=cache,
            progress=progress,
            form=form if pieces is not False else None,
            scratch=scratch,
            started=started,
        )
    chunk_keys = [_key(c.text) for c in chunks]
    new_chunks = list(
        {
            k: c.text for k, c in zip(chunk_keys, chunks, strict=True) if k not in cache.chunks
        }.items()
    )
    log.info(
        "embedding %d of %d chunks of %d articles",
        len(new_chunks),
        len(chunks),
        len(collection.articles),
    )
    known = dict(cache.chunks)
    for first in range(0, len(new_chunks), CHUNK_BLOCK):
        block = new_chunks[first : first + CHUNK_BLOCK]
        vectors = encoder.encode([text for _, text in block])
        known.update((key, vector) for (key, _), vector in zip(block, vectors, strict=True))
        if progress:
            progress("chunks", first + len(block), len(new_chunks))
    chunk_vectors = np.array([known[k] for k in chunk_keys], dtype=np.float32).reshape(
        len(chunks), dimension
    )
    sentences = sentence_refs(chunks)
    articles = {a.id: a for a in collection.articles}
    texts = [articles[s.article_id].text[s.start : s.end] for s in sentences]
    keys = [_key(t) for t in texts]
    store = pieces is not False
    new_sentences = list(
        {
            k: t
            for k, t in zip(keys, texts, strict=True)
            if k not in cache.sentences or (store and cache.sentences[k][1] is None)
        }.items()
    )
    log.info("embedding %d of %d sentences", len(new_sentences), len(sentences))
    # One pass of the model gives each sentence its vector and its word-piece vectors; in
    # blocks, so that only one block's full-precision piece vectors are held at a time.
    found = dict(cache.sentences)
    for first in range(0, len(new_sentences), SENTENCE_BLOCK):
        block = new_sentences[first : first + SENTENCE_BLOCK]
        if store:
            vectors, found_pieces = encoder.encode_with_tokens([text for _, text in block])
            for (key, _), vector, (p, v) in zip(block, vectors, found_pieces, strict=True):
                found[key] = (vector, content_tokens(p, v).astype(np.float16))
        else:
            vectors = encoder.encode([text for _, text in block])
            found.update(
                (key, (vector, None)) for (key, _), vector in zip(block, vectors, strict=True)
            )
        if progress:
            progress("sentences", first + len(block), len(new_sentences))
    sentence_vectors = np.array([found[k][0] for k in keys], dtype=np.float32).reshape(
        len(sentences), dimension
    )
    token_vectors, token_offsets = (
        content_token_matrix([found[k][1] for k in keys], dimension) if store else (None, None)
    )
    return assemble_index(
        articles,
        chunks,
        build_vectors(chunk_vectors),
        sentences,
        texts,
        sentence_vectors,
        (token_vectors, token_offsets),
        model=encoder.name,
        dimension=dimension,
        chunking=asdict(settings),
        collection=collection_record(collection),
        embedded={"chunks": len(new_chunks), "sentences": len(new_sentences)},
        started=started,
    )


def _streamed(
    collection: Collection,
    chunks: list[Chunk],
    encoder,
    settings: ChunkSettings,
    *,
    cache: EmbeddingCache,
    progress: Progress | None,
    form: str | None,
    scratch: Path | None,
    started: float,
) -> Index:
    # Chunks, then sentences, in order, a block at a time: each block's vectors and coded
    # word pieces go to files and are not held. A text repeated in two blocks is embedded
    # twice (once a block); one repeated inside a block once.
    dimension = int(encoder.dimension)
    owned = scratch is None
    scratch = Path(tempfile.mkdtemp(prefix="rag-build-")) if scratch is None else Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    articles = {a.id: a for a in collection.articles}
    embedded = {"chunks": 0, "sentences": 0}
    try:
        chunk_file = RowWriter(scratch / "chunk_vectors.npy", dimension, np.float32)
        for first in range(0, len(chunks), CHUNK_BLOCK):
            block = [c.text for c in chunks[first : first + CHUNK_BLOCK]]
            keys = [_key(t) for t in block]
            new = {k: t for k, t in zip(keys, block, strict=True) if k not in cache.chunks}
            found = dict(zip(new, encoder.encode(list(new.values())), strict=True)) if new else {}
            embedded["chunks"] += len(new)
            chunk_file.append(np.array([found.get(k, cache.chunks.get(k)) for k in keys]))
            if progress:
                progress("chunks", first + len(block), len(chunks))
        chunk_file.close()
        sentences = sentence_refs(chunks)
        vector_file = RowWriter(scratch / "sentences.npy", dimension, np.float16)
        writer = PieceWriter(scratch / "pieces", form=form, dimension=dimension) if form else None
        for first in range(0, len(sentences), SENTENCE_BLOCK):
            refs = sentences[first : first + SENTENCE_BLOCK]
            texts = [articles[r.article_id].text[r.start : r.end] for r in refs]
            keys = [_key(t) for t in texts]
            new = {
                k: t
                for k, t in zip(keys, texts, strict=True)
                if k not in cache.sentences or (writer and cache.sentences[k][1] is None)
            }
            found = {}
            if new and writer:
                vectors, tokens = encoder.encode_with_tokens(list(new.values()))
                found = {
                    k: (v, content_tokens(p, t))
                    for k, v, (p, t) in zip(new, vectors, tokens, strict=True)
                }
            elif new:
                found = {
                    k: (v, None)
                    for k, v in zip(new, encoder.encode(list(new.values())), strict=True)
                }
            embedded["sentences"] += len(new)
            rows = [found[k] if k in found else cache.sentences[k] for k in keys]
            vector_file.append(np.array([r[0] for r in rows]))
            if writer:
                writer.add([np.asarray(r[1], np.float32) for r in rows])
            if progress:
                progress("sentences", first + len(refs), len(sentences))
        vector_file.close()
        compact = writer.close() if writer else None
        chunk_vectors = np.load(scratch / "chunk_vectors.npy", mmap_mode="r")
        index = assemble_index(
            articles,
            chunks,
            build_vectors(chunk_vectors),
            sentences,
            _SentenceTexts(articles, sentences),
            RowFile(scratch / "sentences.npy"),
            compact=compact,
            model=encoder.name,
            dimension=dimension,
            chunking=asdict(settings),
            collection=collection_record(collection),
            embedded=embedded,
            started=started,
        )
    except BaseException:
        if owned:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    if owned:
        # The files stay while the index (or its pieces) is in use, and go with them.
        weakref.finalize(index, shutil.rmtree, scratch, True)
        if compact is not None:
            weakref.finalize(compact, shutil.rmtree, scratch, True)
    return index


class _SentenceTexts(Sequence):
    """The texts of sentences, cut from their articles when asked for."""

    def __init__(self, articles: dict[str, Article], refs: list[SentenceRef]) -> None:
        self.articles, self.refs = articles, refs

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, number):  # type: ignore[override]
        if isinstance(number, slice):
            return [self[n] for n in range(*number.indices(len(self)))]
        ref = self.refs[number]
        return self.articles[ref.article_id].text[ref.start : ref.end]


def collection_record(collection: Collection) -> dict[str, Any]:
    """What a manifest records of the collection an index or snapshot was made from."""
    return {
        "fingerprint": collection.fingerprint,
        "sources": list(collection.sources),
        "articles": len(collection.articles),
    }


def assemble_index(
    articles: dict[str, Article],
    chunks: list[Chunk],
    chunk_vectors: Vectors,
    sentences: list[SentenceRef],
    texts: Sequence[str],
    sentence_vectors: np.ndarray | RowFile,
    pieces: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
    *,
    compact: CompactPieces | None = None,
    model: str,
    dimension: int,
    chunking: dict[str, Any],
    collection: dict[str, Any],
    embedded: dict[str, int],
    started: float,
    duplicates: bool = True,
    **more: Any,
) -> Index:
    """Put an index together from embedded chunks and sentences: the chunk and sentence
    tables, BM25, place names, near-duplicate articles and their twin sentences, the manifest.

    Args:
        articles: The articles by id, in collection order.
        chunks: Their chunks, numbered from 0 in article order.
        chunk_vectors: The chunks' vector index.
        sentences: The chunks' sentences (see `sentence_refs`).
        texts: The sentences' text.
        sentence_vectors: One unit vector per sentence.
        pieces: Stored word-piece vectors and offsets, or (None, None).
        compact: Or the word pieces coded on disk.
        model, dimension, chunking, collection, embedded: What the manifest records.
        started: `time.perf_counter()` when the build started.
        duplicates: Look for near-duplicate articles.
        **more: More manifest entries.

    Returns:
        The index, not yet saved.
    """
    found = near_duplicates(list(articles.values())) if duplicates else []
    twins = twin_sentences(
        found, [(s.article_id, t) for s, t in zip(sentences, texts, strict=True)] if found else []
    )
    table = Sentences.of(sentences, list(articles))
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": model,
        "dimension": dimension,
        "chunking": chunking,
        "collection": collection,
        "chunks": len(chunks),
        "sentences": len(sentences),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "embedded": embedded,
        "pieces": compact.record if compact is not None else pieces[1] is not None,
        "duplicates": [asdict(d) for d in found],
        **more,
    }
    index = Index(
        manifest,
        articles,
        Chunks.of(chunks, articles, table),
        chunk_vectors,
        table,
        sentence_vectors
        if isinstance(sentence_vectors, RowFile)
        else np.asarray(sentence_vectors, dtype=np.float16),
        *pieces,
        lexicon=Lexicon([c.text for c in chunks]),
        places=place_names(a.text for a in articles.values()),
        twins=twins,
        compact=compact,
    )
    manifest["build_seconds"] = round(time.perf_counter() - started, 2)
    return index


def sentence_refs(chunks: list[Chunk]) -> list[SentenceRef]:
    """Every sentence of the chunks once (neighbouring chunks share one), with the chunk it
    first appears in.

    Args:
        chunks: Chunks in order.

    Returns:
        The sentences in order.
    """
    sentences, seen = [], set()
    for chunk in chunks:
        for start, end in chunk.sentences:
            if (chunk.article_id, start) not in seen:
                seen.add((chunk.article_id, start))
                sentences.append(SentenceRef(chunk.article_id, start, end, chunk.id))
    return sentences


def index_from_snapshot(directory: Path, *, embedded: bool = False) -> Index:
    """Build an index (FAISS, the sentence table, near-duplicates) from a snapshot.

    A snapshot holds no word-piece vectors: the answer step encodes its candidate sentences
    when asked (see `rag.engine.SentencePieces`).

    Args:
        directory: A snapshot written by `rag.build.pipeline.build_snapshot`.
        embedded: The snapshot was just embedded for this index (its manifest then counts
            every chunk and sentence as embedded).

    Returns:
        The index, not yet saved.

    Raises:
        IndexMissingError, IndexCorruptError, IndexStaleError: As the messages say.
    """
    from rag.build.snapshot import read_snapshot, snapshot_digest

    started = time.perf_counter()
    snapshot = read_snapshot(directory)
    meta = snapshot.manifest
    articles = {a.id: a for a in snapshot.articles}
    sentences = snapshot.sentences
    return assemble_index(
        articles,
        snapshot.chunks,
        build_vectors(snapshot.chunk_vectors),
        sentences,
        [articles[s.article_id].text[s.start : s.end] for s in sentences],
        snapshot.sentence_vectors,
        (None, None),
        model=meta["model"],
        dimension=int(meta["dimension"]),
        chunking=meta["chunking"],
        collection=meta["collection"],
        embedded=(
            {"chunks": len(snapshot.chunks), "sentences": len(sentences)}
            if embedded
            else {"chunks": 0, "sentences": 0}
        ),
        started=started,
        snapshot={
            "path": str(directory),
            "digest": snapshot_digest(meta),
            "build": meta.get("build", {}),
        },
    )


def content_token_matrix(
    matrices: list[np.ndarray], dimension: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stack texts' content word-piece vectors (see `content_tokens`) into one matrix.

    Args:
        matrices: Per text (sentence), its content word-piece vectors.
        dimension: The vectors' width.

    Returns:
        (float16 matrix of all rows, offsets where each text's rows start, plus the end).
    """
    offsets = np.zeros(len(matrices) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(m) for m in matrices])
    stacked = np.concatenate(matrices) if matrices else np.zeros((0, dimension))
    return stacked.astype(np.float16, copy=False), offsets


@contextlib.contextmanager
def build_lock(directory: Path, *, wait_seconds: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold the index directory's build lock, so that two indexers never write at once.

    The lock is the operating system's (`flock`) on `DIR/.lock`: it is released when its
    holder exits, even when killed.

    Args:
        directory: The index directory; created if missing.
        wait_seconds: How long to wait for another holder before giving up.

    Raises:
        IndexBusyError: Another process held the lock all that time.
    """
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a+") as handle:
        deadline = time.monotonic() + wait_seconds
        waiting = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexBusyError(
                        f"Another process has been building the index in {directory} for"
                        f" over {wait_seconds:.0f} s. Wait for it to finish, or stop it, then"
                        " try again."
                    ) from None
                if not waiting:
                    log.warning("another process is building the index in %s; waiting", directory)
                    waiting = True
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def stale_reasons(
    manifest: dict[str, Any], collection: Collection, model: str, settings: ChunkSettings
) -> list[str]:
    """What differs between a saved index and what is asked for now.

    Args:
        manifest: The saved manifest.
        collection: The collection as it is now.
        model: The embedding model asked for.
        settings: The chunking settings asked for.

    Returns:
        One line per difference; empty when the index is current.
    """
    reasons = []
    if manifest["collection"]["fingerprint"] != collection.fingerprint:
        reasons.append("the collection has changed since the index was built")
    if manifest["model"] != model:
        reasons.append(f"the index was built with model {manifest['model']}, not {model}")
    if manifest["chunking"] != asdict(settings):
        reasons.append(
            f"the index was built with chunking {manifest['chunking']}, not {asdict(settings)}"
        )
    return reasons
