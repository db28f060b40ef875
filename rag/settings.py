"""One settings object, built at the edges (command line, web app) from flags and environment."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from rag.chunking import ChunkSettings
from rag.ingest import DEFAULT_COLLECTION

INDEX_ENV = "RAG_INDEX_DIR"
DEFAULT_MODEL = "all-MiniLM-L6-v2"
# How answer sentences are chosen: the learned selector with the reader, the hand-weighted
# features of earlier versions, or cosine similarity alone (the two baselines).
ANSWERERS = ("reader", "rules", "cosine")


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


@dataclass(frozen=True)
class Settings:
    """Where the collection and its index are, and how to build and search it."""

    collection: tuple[Path, ...] = (DEFAULT_COLLECTION,)
    index_dir: Path | None = None
    model: str = DEFAULT_MODEL
    chunking: ChunkSettings = field(default_factory=ChunkSettings)
    retriever: str = "hybrid"
    answerer: str = "reader"
    rebuild: str = "auto"
    runtime: str = "onnx"
    # A Milvus server (http://HOST:PORT) that searches the chunks; None: FAISS and BM25 here.
    milvus: str | None = None

    @property
    def index_path(self) -> Path:
        """The index directory in use."""
        return self.index_dir or default_index_dir(self.collection)
