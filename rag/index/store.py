"""The index: articles, chunk and sentence tables, vectors and BM25; saved atomically, read by row."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from embeddings.files import sha256_file
from rag.errors import IndexCorruptError, IndexMissingError, IndexStaleError
from rag.index.disk import CURRENT, storage_error
from rag.index.lexicon import FILES as LEXICON_FILES
from rag.index.lexicon import Lexicon
from rag.index.pieces import CompactPieces, open_pieces
from rag.index.pieces import files as compact_files
from rag.index.tables import (
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
from rag.index.vectors import Vectors, load_vectors, save_vectors, vector_files
from rag.text import STOPWORDS
from rag.types import Article, Chunk, Section

FORMAT_VERSION = 5
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
# Past this many chunks the word-piece vectors of sentences (about 84 KB a chunk as float16,
# 90% of an index) are stored compact (`rag.index.pieces`, about 48 bytes a piece rather than
# 768), memory-mapped from disk.
PIECES_LIMIT = 20_000

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
    # Names some article uses as a place (see `rag.patterns.place_names`).
    places: frozenset[str]
    # Sentences that say the same thing in near-duplicate articles, as groups of numbers.
    twins: list[tuple[int, ...]] = field(default_factory=list)
    # The word-piece vectors as codes on disk, in place of `token_vectors` (past `PIECES_LIMIT`).
    compact: CompactPieces | None = None

    @property
    def has_pieces(self) -> bool:
        """Whether the sentences' word-piece vectors are stored (see `PIECES_LIMIT`)."""
        return self.token_offsets is not None or self.compact is not None

    def sentence_tokens(self, number: int) -> np.ndarray:
        """The stored content word-piece vectors of a sentence (rows of unit length: float16
        as stored, or float32 decoded from compact codes)."""
        if self.compact is not None:
            return self.compact.rows(number)
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


def save_index(index: Index, directory: Path, records: Mapping[str, bytes] | None = None) -> Path:
    """Write the index atomically: a new generation folder, then a one-file switch to it.

    A crash at any point leaves the previous generation in use; a write that fails removes
    its partial generation at once.

    Args:
        index: The index to save.
        directory: The index directory; created if missing.
        records: Files to keep in the generation beside the index (by name), committed with
            it by the same switch, their sizes and SHA-256 in the manifest's `records`.

    Returns:
        The folder of the new generation.

    Raises:
        StorageError: The disk is full, or the directory read-only or not writable.
    """
    generation = directory / f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        generation.mkdir()
        _write_generation(index, generation, records or {})
        pointer = directory / f".{CURRENT}.{uuid.uuid4().hex[:6]}"
        pointer.write_text(generation.name + "\n", encoding="utf-8")
        os.replace(pointer, directory / CURRENT)
    except BaseException as e:
        shutil.rmtree(generation, ignore_errors=True)
        for pointer in directory.glob(f".{CURRENT}.*"):
            with contextlib.suppress(OSError):
                pointer.unlink(missing_ok=True)
        error = storage_error(e, directory, _size(index)) if isinstance(e, OSError) else None
        if error is None:
            raise
        log.info("removed the partial generation %s: %s", generation.name, e)
        raise error from e
    index.manifest = {**index.manifest, "generation": generation.name}
    for old in directory.glob("gen-*"):
        if old.name != generation.name:
            shutil.rmtree(old, ignore_errors=True)
    return generation


def _write_generation(index: Index, generation: Path, records: Mapping[str, bytes]) -> None:
    write_articles(index.articles, generation / ARTICLES_FILE)
    np.save(generation / CHUNKS_FILE, index.chunks.spans)
    np.save(generation / SENTENCES_FILE, index.sentences.spans)
    store = {"twins": [list(group) for group in index.twins], "places": sorted(index.places)}
    (generation / "store.json").write_text(json.dumps(store, ensure_ascii=False), encoding="utf-8")
    save_vectors(index.chunk_vectors, generation, name="chunks")
    if isinstance(index.sentence_vectors, RowFile):
        # Written to disk by a streaming build (or loaded): copied, never read into memory.
        shutil.copyfile(index.sentence_vectors.path, generation / "sentences.npy")
    else:
        np.save(generation / "sentences.npy", index.sentence_vectors)
    index.lexicon.save(generation)
    if index.compact is not None:
        for name in index.compact.files:
            shutil.copyfile(index.compact.directory / name, generation / name)
    elif index.has_pieces:
        np.save(generation / "tokens.npy", index.token_vectors)
        np.save(generation / "token_offsets.npy", index.token_offsets)
    for name, data in records.items():
        (generation / name).write_bytes(data)
    manifest = {
        **index.manifest,
        "pieces": index.compact.record if index.compact is not None else index.has_pieces,
        "vectors": "exact" if index.chunk_vectors.exact else "ivf-sq8",
    }
    manifest["files"] = {name: _checksum(generation / name) for name in _files(manifest)}
    manifest["records"] = {name: _checksum(generation / name) for name in records}
    (generation / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    for path in generation.iterdir():
        with path.open("rb") as f:
            os.fsync(f.fileno())
    index.manifest = manifest


def _checksum(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}


def _size(index: Index) -> int | None:
    # About how many bytes a generation of this index takes: its arrays, vectors and text.
    try:
        arrays = (index.chunks.spans, index.sentences.spans, index.token_vectors)
        size = sum(a.nbytes for a in (*arrays, index.token_offsets) if a is not None)
        if index.compact is not None:
            size += index.compact.codes.nbytes + index.compact.offsets.nbytes
        size += len(index.sentences) * index.manifest["dimension"] * 2
        size += len(index.chunks) * index.manifest["dimension"] * 4
        size += sum(len(a.text) + len(a.title) for a in index.articles.values())
        return size + index.lexicon.nbytes
    except (AttributeError, KeyError, TypeError, OSError):
        return None


def _files(manifest: dict[str, Any]) -> tuple[str, ...]:
    pieces = manifest.get("pieces", True)
    return (
        FILES
        + (compact_files(str(pieces.get("form"))) if isinstance(pieces, dict) else ())
        + (PIECE_FILES if pieces is True else ())
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
        token_vectors = token_offsets = compact = None
        pieces = manifest.get("pieces", True)
        if isinstance(pieces, dict):
            compact = open_pieces(
                generation, str(pieces.get("form")), dimension=int(manifest["dimension"])
            )
        elif pieces:
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
        or (compact is not None and len(compact) != len(sentences))
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
        compact=compact,
    )


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
