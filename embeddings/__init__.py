"""Sentence embeddings: the only package that imports torch or sentence-transformers."""

from embeddings.encoder import DEFAULT_MODEL, Encoder, load_encoder

__all__ = ["DEFAULT_MODEL", "Encoder", "load_encoder"]
