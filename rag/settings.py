"""One settings object, built at the edges (command line, web app) from flags and environment."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from embeddings import DEFAULT_MODEL, RUNTIMES, Runtime

INDEX_ENV = "RAG_INDEX_DIR"
DEFAULT_COLLECTION = Path(__file__).parent / "data" / "articles.txt"

# How passages are found: embeddings (FAISS), BM25, or both fused by reciprocal rank.
Method = Literal["dense", "bm25", "hybrid"]
# How answer sentences are chosen: the learned selector with the reader, or one of the two
# baselines, the hand-weighted features of earlier versions and cosine similarity alone.
Answerer = Literal["reader", "rules", "cosine"]
# When the index is built: when the collection or settings changed, every time, or never
# (a missing or stale index is then an error).
Rebuild = Literal["auto", "always", "never"]

METHODS: tuple[Method, ...] = get_args(Method)
ANSWERERS: tuple[Answerer, ...] = get_args(Answerer)
REBUILDS: tuple[Rebuild, ...] = get_args(Rebuild)

__all__ = ["DEFAULT_MODEL", "RUNTIMES", "Runtime"]  # re-exported: one definition, in embeddings


@dataclass(frozen=True)
class ChunkSettings:
    """How articles are cut: the token budget of a chunk and the sentences shared by neighbours."""

    max_tokens: int = 256
    overlap_sentences: int = 1


def default_index_dir(collection: tuple[Path, ...]) -> Path:
    """Where an index lives when no directory is given: `$RAG_INDEX_DIR`, or one folder per
    collection under the user's cache, so that collections never overwrite each other."""
    if os.environ.get(INDEX_ENV):
        return Path(os.environ[INDEX_ENV])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag"
    if collection == (DEFAULT_COLLECTION,):
        return cache / "default"
    key = "\n".join(sorted(str(p.resolve()) for p in collection))
    return cache / f"{collection[0].stem}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"Unknown {what} {value!r}: use one of {', '.join(allowed)}.")


@dataclass(frozen=True)
class Settings:
    """Where the collection and its index are, and how to build and search it."""

    collection: tuple[Path, ...] = (DEFAULT_COLLECTION,)
    index_dir: Path | None = None
    model: str = DEFAULT_MODEL
    chunking: ChunkSettings = field(default_factory=ChunkSettings)
    retriever: Method = "hybrid"
    answerer: Answerer = "reader"
    rebuild: Rebuild = "auto"
    # Where the reader runs (and the encoder, unless `encoder_runtime` says otherwise).
    runtime: Runtime = "onnx"
    # Where the encoder runs; None: the float model of `runtime`'s kind (`torch` with torch,
    # else `onnx`), as an int8 encoder's vectors differ and its index is built again.
    encoder_runtime: Runtime | None = None
    # A Milvus server (http://HOST:PORT) that searches the chunks; None: FAISS and BM25 here.
    milvus: str | None = None

    def __post_init__(self) -> None:
        _check(self.retriever, METHODS, "retrieval method")
        _check(self.answerer, ANSWERERS, "answerer")
        _check(self.rebuild, REBUILDS, "rebuild setting")
        _check(self.runtime, RUNTIMES, "runtime")
        if self.encoder_runtime is not None:
            _check(self.encoder_runtime, RUNTIMES, "encoder runtime")

    @property
    def encoder_backend(self) -> Runtime:
        """Where the encoder runs (see `encoder_runtime`)."""
        if self.encoder_runtime is not None:
            return self.encoder_runtime
        return "torch" if self.runtime == "torch" else "onnx"

    @property
    def index_path(self) -> Path:
        """The index directory in use."""
        return self.index_dir or default_index_dir(self.collection)
