"""The model's tokenizer without torch, and its output as the models' int64 inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_tokenizer(base: str, max_tokens: int | None):
    """The model folder's fast tokenizer, unpadded, cut at `max_tokens` (None: never cut)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(base) / "tokenizer.json"))
    tokenizer.no_padding()
    if max_tokens:
        tokenizer.enable_truncation(max_tokens, strategy="longest_first")
    else:
        tokenizer.no_truncation()
    return tokenizer


def batch_arrays(encodings) -> dict[str, np.ndarray]:
    """Pad tokenizer encodings into the model's int64 inputs, plus offsets (batch, tokens, 2)."""
    width = max(len(e.ids) for e in encodings)
    out = {
        name: np.zeros((len(encodings), width), dtype=np.int64)
        for name in ("input_ids", "attention_mask", "token_type_ids")
    }
    offsets = np.zeros((len(encodings), width, 2), dtype=np.int64)
    for row, e in enumerate(encodings):
        n = len(e.ids)
        out["input_ids"][row, :n] = e.ids
        out["attention_mask"][row, :n] = 1
        out["token_type_ids"][row, :n] = e.type_ids
        offsets[row, :n] = e.offsets
    out["offset_mapping"] = offsets
    return out
