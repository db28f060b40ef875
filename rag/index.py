"""The index: articles, chunk and sentence tables, vectors and BM25; saved atomically, read by row."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from rag.chunking import ChunkSettings, article_key, chunk_articles
from rag.duplicates import near_duplicates, twin_sentences
from rag.errors import IndexBusyError, IndexCorruptError, IndexMissingError, IndexStaleError
from rag.ingest import Collection
from rag.lexicon import FILES as LEXICON_FILES
from rag.lexicon import Lexicon
from rag.spans import place_names
from rag.store import (
    ARTICLES_FILE,
    CHUNKS_FILE,
    SENTENCES_FILE,
    Chunks,
    RowFile,
    SentenceRef,
    Sentences,
    read_articles,
    write_articles,
)
from rag.text import STOPWORDS
from rag.types import Article, Chunk, Section
from rag.vectors import Vectors, build_vectors, load_vectors, save_vectors, vector_files

FORMAT_VERSION = 5
CURRENT = "CURRENT"
# The chunk vectors' faiss index, and the float16 rows an approximate one re-ranks with.
CHUNK_INDEX_FILE, CHUNK_MATRIX_FILE = vector_files("chunks")
FILES = (
    "store.json",
    ARTICLES_FILE,
    CHUNKS_FILE,
    SENTENCES_FILE,
    CHUNK_INDEX_FILE,
    "sentences.npy",
    *LEXICON_FILES,
)
PIECE_FILES = ("tokens.npy", "token_offsets.npy")
# Past this many chunks the word-piece vectors of sentences (about 84 KB a chunk, 90% of an
# index) are not stored: the answer step encodes its candidate sentences when asked.
PIECES_LIMIT = 20_000
LOCK_WAIT_SECONDS = 900.0
SENTENCE_BLOCK = 2048
CHUNK_BLOCK = 256

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]


@dataclass
class Index:
    """Everything retrieval and answering need. A loaded index holds its chunk and sentence
    tables and the ids, authors and dates of its articles; articles, sentence vectors and
    BM25 scores stay on disk and a question reads the rows it needs."""

    manifest: dict[str, Any]
    articles: Mapping[str, Article]
    chunks: Chunks
    chunk_vectors: Vectors
    sentences: Sentences
    # float16 unit vectors, one row per sentence; read from disk by row once saved.
    sentence_vectors: np.ndarray | RowFile
    token_vectors: np.ndarray | None
    token_offsets: np.ndarray | None
    lexicon: Lexicon
    # Names some article uses as a place (see `rag.spans.place_names`).
    places: frozenset[str]
    # Sentences that say the same thing in near-duplicate articles, as groups of numbers.
    twins: list[tuple[int, ...]] = field(default_factory=list)

    @property
    def has_pieces(self) -> bool:
        """Whether the sentences' word-piece vectors are stored (see `PIECES_LIMIT`)."""
        return self.token_offsets is not None

    def sentence_tokens(self, number: int) -> np.ndarray:
        """The stored content word-piece vectors of a sentence (float16 rows of unit length)."""
        if self.token_vectors is None or self.token_offsets is None:
            raise ValueError("this index does not store word-piece vectors")
        return self.token_vectors[self.token_offsets[number] : self.token_offsets[number + 1]]

    def sentence_text(self, ref: SentenceRef) -> str:
        """The sentence as written."""
        return self.articles[ref.article_id].text[ref.start : ref.end]

    def article_sentences(self, article_id: str) -> list[tuple[int, int]]:
        """The (start, end) offsets of an article's sentences, in order."""
        numbers = self.sentences.of_article(self.sentences.row(article_id))
        return [
            (int(s), int(e)) for s, e in self.sentences.spans[numbers.start : numbers.stop, 1:3]
        ]


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
        sentences = {
            _key(index.sentence_text(ref)): (
                sentence_vectors[n],
                index.sentence_tokens(n) if index.has_pieces else None,
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
) -> Index:
    """Chunk and embed a collection, and find its near-duplicate articles.

    Args:
        collection: The articles.
        encoder: The embedding model (see `embeddings.Encoder`).
        settings: Chunking settings.
        cache: Vectors from an earlier build with the same model; only texts it lacks are
            embedded.
        progress: Called as `progress(stage, done, total)` as texts are embedded.
        pieces: Store the sentences' word-piece vectors; by default, up to `PIECES_LIMIT`
            chunks.

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
    store = len(chunks) <= PIECES_LIMIT if pieces is None else pieces
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
    texts: list[str],
    sentence_vectors: np.ndarray,
    pieces: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
    *,
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
        model, dimension, chunking, collection, embedded: What the manifest records.
        started: `time.perf_counter()` when the build started.
        duplicates: Look for near-duplicate articles.
        **more: More manifest entries.

    Returns:
        The index, not yet saved.
    """
    found = near_duplicates(list(articles.values())) if duplicates else []
    twins = twin_sentences(
        found, [(s.article_id, t) for s, t in zip(sentences, texts, strict=True)]
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
        "pieces": pieces[1] is not None,
        "duplicates": [asdict(d) for d in found],
        **more,
    }
    index = Index(
        manifest,
        articles,
        Chunks.of(chunks, articles, table),
        chunk_vectors,
        table,
        np.asarray(sentence_vectors, dtype=np.float16),
        *pieces,
        lexicon=Lexicon([c.text for c in chunks]),
        places=place_names(a.text for a in articles.values()),
        twins=twins,
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
        directory: A snapshot written by `rag.pipeline.build_snapshot`.
        embedded: The snapshot was just embedded for this index (its manifest then counts
            every chunk and sentence as embedded).

    Returns:
        The index, not yet saved.

    Raises:
        IndexMissingError, IndexCorruptError, IndexStaleError: As the messages say.
    """
    from rag.snapshot import read_snapshot, snapshot_digest

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


def content_tokens(pieces: list[str], vectors: np.ndarray) -> np.ndarray:
    """Keep the vectors of the word pieces that carry content (no punctuation, no stop words).

    Args:
        pieces: Word pieces of one text.
        vectors: Their vectors, one row each.

    Returns:
        The rows kept; all rows when none would be.
    """
    keep = [
        i
        for i, piece in enumerate(pieces)
        if any(c.isalnum() for c in piece) and (piece.startswith("##") or piece not in STOPWORDS)
    ]
    return vectors[keep] if keep else vectors


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


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def save_index(index: Index, directory: Path) -> Path:
    """Write the index atomically: a new generation folder, then a one-file switch to it.

    A crash at any point leaves the previous generation in use.

    Args:
        index: The index to save.
        directory: The index directory; created if missing.

    Returns:
        The folder of the new generation.
    """
    directory.mkdir(parents=True, exist_ok=True)
    generation = directory / f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    generation.mkdir()
    write_articles(index.articles, generation / ARTICLES_FILE)
    np.save(generation / CHUNKS_FILE, index.chunks.spans)
    np.save(generation / SENTENCES_FILE, index.sentences.spans)
    store = {"twins": [list(group) for group in index.twins], "places": sorted(index.places)}
    (generation / "store.json").write_text(json.dumps(store, ensure_ascii=False), encoding="utf-8")
    save_vectors(index.chunk_vectors, generation, name="chunks")
    np.save(generation / "sentences.npy", index.sentence_vectors)
    index.lexicon.save(generation)
    if index.has_pieces:
        np.save(generation / "tokens.npy", index.token_vectors)
        np.save(generation / "token_offsets.npy", index.token_offsets)
    manifest = {
        **index.manifest,
        "pieces": index.has_pieces,
        "vectors": "exact" if index.chunk_vectors.exact else "ivf-sq8",
    }
    manifest["files"] = {
        name: {
            "bytes": (generation / name).stat().st_size,
            "sha256": sha256_file(generation / name),
        }
        for name in _files(manifest)
    }
    (generation / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    for path in generation.iterdir():
        with path.open("rb") as f:
            os.fsync(f.fileno())
    pointer = directory / f".{CURRENT}.{uuid.uuid4().hex[:6]}"
    pointer.write_text(generation.name + "\n", encoding="utf-8")
    os.replace(pointer, directory / CURRENT)
    index.manifest = {**manifest, "generation": generation.name}
    for old in directory.glob("gen-*"):
        if old.name != generation.name:
            shutil.rmtree(old, ignore_errors=True)
    return generation


def _files(manifest: dict[str, Any]) -> tuple[str, ...]:
    return (
        FILES
        + (PIECE_FILES if manifest.get("pieces", True) else ())
        + ((CHUNK_MATRIX_FILE,) if manifest.get("vectors", "exact") != "exact" else ())
    )


def _fix(directory: Path) -> str:
    return f"rebuild it with: rag index --index {directory}"


def read_manifest(directory: Path) -> tuple[Path, dict[str, Any]]:
    """Find the current generation of an index and read its manifest.

    Args:
        directory: The index directory.

    Returns:
        (generation folder, manifest).

    Raises:
        IndexMissingError: Nothing has been built there.
        IndexCorruptError: The pointer or the manifest cannot be read.
    """
    pointer = directory / CURRENT
    if not pointer.is_file():
        raise IndexMissingError(
            f"No index in {directory}: build one with: rag index --index {directory}"
        )
    generation = directory / pointer.read_text(encoding="utf-8").strip()
    manifest_path = generation / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexCorruptError(
            f"Index file {manifest_path} is unreadable ({e}); {_fix(directory)}"
        ) from e
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexStaleError(
            f"Index in {directory} has format {manifest.get('format_version')}, this version reads"
            f" {FORMAT_VERSION}; {_fix(directory)}"
        )
    return generation, manifest


def saved_articles(directory: Path) -> dict[str, Article]:
    """The articles of the index saved in a directory, without loading the rest of it; none
    when there is no readable index there."""
    try:
        generation, _ = read_manifest(directory)
        return dict(read_articles(generation / ARTICLES_FILE))
    except (
        IndexMissingError,
        IndexCorruptError,
        IndexStaleError,
        OSError,
        ValueError,
        KeyError,
        pa.ArrowException,
    ):
        return {}


def load_index(directory: Path) -> Index:
    """Load a saved index, checking every file against the manifest first.

    Args:
        directory: The index directory.

    Returns:
        The index.

    Raises:
        IndexMissingError: Nothing has been built there.
        IndexCorruptError: A file is missing, truncated or altered; the message names it.
    """
    generation, manifest = read_manifest(directory)
    for name in _files(manifest):
        path = generation / name
        expected = manifest.get("files", {}).get(name)
        if expected is None or not path.is_file():
            raise IndexCorruptError(f"Index file {path} is missing; {_fix(directory)}")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise IndexCorruptError(
                f"Index file {path} is truncated or altered ({size} bytes, expected"
                f" {expected['bytes']}); {_fix(directory)}"
            )
        if sha256_file(path) != expected["sha256"]:
            raise IndexCorruptError(
                f"Index file {path} is altered (checksum differs); {_fix(directory)}"
            )
    try:
        store = json.loads((generation / "store.json").read_text(encoding="utf-8"))
        articles = read_articles(generation / ARTICLES_FILE)
        sentences = Sentences(np.load(generation / SENTENCES_FILE), articles.ids, articles.rows)
        chunks = Chunks(np.load(generation / CHUNKS_FILE), articles, sentences)
        twins = [tuple(int(n) for n in group) for group in store["twins"]]
        places = frozenset(store["places"])
        chunk_vectors = load_vectors(generation, name="chunks")
        sentence_vectors = RowFile(generation / "sentences.npy")
        lexicon = Lexicon.load(generation)
        token_vectors = token_offsets = None
        if manifest.get("pieces", True):
            token_vectors = np.load(generation / "tokens.npy")
            token_offsets = np.load(generation / "token_offsets.npy")
    except (ValueError, KeyError, TypeError, RuntimeError, OSError, pa.ArrowException) as e:
        raise IndexCorruptError(
            f"Index in {generation} cannot be read ({e}); {_fix(directory)}"
        ) from e
    if (
        sentences.spans.ndim != 2
        or sentences.spans.shape[1] != 4
        or chunks.spans.ndim != 2
        or chunks.spans.shape[1] != 7
        or len(chunk_vectors) != len(chunks)
        or lexicon.documents != len(chunks)
        # Rows are in article order: the first and last bound them all.
        or (
            len(sentences)
            and not 0 <= sentences.spans[0, 0] <= sentences.spans[-1, 0] < len(articles)
        )
        or (len(chunks) and not 0 <= chunks.spans[0, 0] <= chunks.spans[-1, 0] < len(articles))
        or (chunk_vectors.matrix is not None and len(chunk_vectors.matrix) != len(chunks))
        or len(sentence_vectors) != len(sentences)
        or (
            token_offsets is not None
            and token_vectors is not None
            and (
                len(token_offsets) != len(sentences) + 1 or token_offsets[-1] != len(token_vectors)
            )
        )
        or any(not 0 <= n < len(sentences) for group in twins for n in group)
    ):
        raise IndexCorruptError(f"Index in {generation} is inconsistent; {_fix(directory)}")
    dimension = manifest.get("dimension")
    widths = {
        CHUNK_INDEX_FILE: chunk_vectors.dimension,
        "sentences.npy": sentence_vectors.shape[1] if sentence_vectors.ndim == 2 else -1,
    }
    if token_vectors is not None:
        widths["tokens.npy"] = token_vectors.shape[1] if token_vectors.ndim == 2 else -1
    for name, width in widths.items():
        if width != dimension:
            raise IndexCorruptError(
                f"Index file {generation / name} holds vectors of {width} dimensions, but the"
                f" manifest says {dimension}; {_fix(directory)}"
            )
    return Index(
        {**manifest, "generation": generation.name},
        articles,
        chunks,
        chunk_vectors,
        sentences,
        sentence_vectors,
        token_vectors,
        token_offsets,
        lexicon=lexicon,
        places=places,
        twins=twins,
    )


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


class SentenceTable:
    """Look-ups over the sentences of an index: by position, by chunk, and their neighbours."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.twins = {n: group for group in index.twins for n in group}
        self.places = index.places

    def section_of(self, number: int) -> Section:
        """The section a sentence stands in."""
        ref = self.index.sentences[number]
        sections = self.index.articles[ref.article_id].sections
        return next((s for s in sections if s.start <= ref.start < s.end), sections[0])

    def is_heading(self, number: int) -> bool:
        """Whether a sentence is the title of its section (a digest item's headline)."""
        section = self.section_of(number)
        return section.title is not None and self.index.sentences[number].start == section.start

    def of_chunk(self, chunk: Chunk) -> list[int]:
        """Sentence numbers of a chunk, in order."""
        return list(self.index.chunks.sentence_numbers(chunk.id))

    def previous(self, number: int) -> int | None:
        """The sentence before, if it is in the same paragraph of the same article."""
        if number == 0:
            return None
        ref, before = self.index.sentences[number], self.index.sentences[number - 1]
        article = self.index.articles[ref.article_id]
        if before.article_id != ref.article_id or "\n" in article.text[before.end : ref.start]:
            return None
        return number - 1
