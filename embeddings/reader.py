"""The reader: a cross-encoder that reads a question with a sentence and says if it answers."""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from embeddings.errors import ReaderLoadError
from embeddings.files import model_path, sha256_file
from embeddings.sessions import run_session
from embeddings.tokens import batch_arrays, load_tokenizer

log = logging.getLogger(__name__)

READER_DIR = Path(__file__).parent / "reader"
WEIGHTS_FILE = "reader.safetensors"
CONFIG_FILE = "reader.json"
# Layers below this one keep the embedding model's weights; only the layers above, the
# segment embeddings and the heads are trained and shipped. This is training's default; a
# reader's own count is in its reader.json ("frozen_layers").
FROZEN_LAYERS = 3
MAX_TOKENS = 160
RETRAIN = "python -m eval.train_reader"
# Where the models run: ONNX Runtime (float, or an int8 copy quantized dynamically or
# statically, see `embeddings.quantize`), or torch.
Runtime = Literal["onnx", "onnx-int8", "onnx-int8-static", "torch"]
RUNTIMES: tuple[Runtime, ...] = get_args(Runtime)
# What runs a Reader's network: a session (of any ONNX file), or torch.
BACKENDS = ("onnx", "torch")


@dataclass(frozen=True)
class Reading:
    """What the reader makes of one (question, sentence) pair.

    Attributes:
        probability: How likely the sentence answers the question, in [0, 1].
        span: (start, end) characters of the short answer inside the sentence, or None.
        span_probability: The span head's confidence in that span, in [0, 1].
    """

    probability: float
    span: tuple[int, int] | None
    span_probability: float


def _torch():
    import torch

    return torch


def build_model(base_path: str):
    """The embedding model's transformer with a relevance head and a span head on top.

    Args:
        base_path: Folder of the all-MiniLM-L6-v2 weights.

    Returns:
        A torch module whose forward gives (relevance logits, start logits, end logits).
    """
    torch = _torch()
    from transformers import BertModel
    from transformers.utils import logging as transformers_logging

    # The base model's unused pooler weights are reported at load; they are not needed here.
    transformers_logging.set_verbosity_error()

    class CrossReader(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = BertModel.from_pretrained(
                base_path, local_files_only=True, add_pooling_layer=False
            )
            hidden = self.bert.config.hidden_size
            self.relevance = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(hidden, 1))
            self.span = torch.nn.Linear(hidden, 2)

        def forward(self, input_ids, attention_mask, token_type_ids):
            states = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            relevance = self.relevance(states[:, 0]).squeeze(-1)
            start, end = self.span(states).unbind(-1)
            return relevance, start, end

    return CrossReader()


def trainable_names(model, frozen_layers: int) -> list[str]:
    """The parameters training changes: layers from `frozen_layers` up, segment embeddings
    and the heads."""
    keep = ("relevance.", "span.", "bert.embeddings.token_type_embeddings.")
    top = tuple(
        f"bert.encoder.layer.{i}."
        for i in range(frozen_layers, model.bert.config.num_hidden_layers)
    )
    return [name for name, _ in model.named_parameters() if name.startswith(keep + top)]


def second_segments(sentences: Sequence[str], contexts: Sequence[str]) -> list[str]:
    """Each candidate sentence, then `[SEP]` and the sentence before it when there is one."""
    return [s if not c else f"{s} [SEP] {c}" for s, c in zip(sentences, contexts, strict=True)]


def encode_pairs(tokenizer, questions: Sequence[str], sentences: Sequence[str], contexts):
    """Tokenise (question, sentence + the sentence before it) pairs the way the reader reads them.

    The candidate sentence comes first in the second segment, so that truncation to the
    model's window cuts the context sentence, then the sentence's tail, never the question.

    Args:
        tokenizer: The model's tokenizer.
        questions: Questions.
        sentences: Candidate sentences, one per question.
        contexts: The sentence before each candidate ("" when there is none).

    Returns:
        The tokenizer's batch, with offsets mapping into the candidate sentence.
    """
    return tokenizer(
        list(questions),
        second_segments(sentences, contexts),
        truncation="longest_first",
        max_length=MAX_TOKENS,
        padding=True,
        return_offsets_mapping=True,
        return_tensors="pt",
    )


class Reader:
    """The trained reader, ready to score candidate sentences.

    The network runs in ONNX Runtime (`backend="onnx"`, the default: no torch on the answer
    path) or in torch (`backend="torch"`, which also offers PyTorch's int8 matrix products);
    the tokenizer and the choice of span are the same for both.
    """

    def __init__(
        self,
        directory: Path = READER_DIR,
        *,
        backend: str = "onnx",
        session=None,
        threads: int | None = None,
        int8: bool | None = None,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        self.config = self.check_files(directory)
        config = directory / CONFIG_FILE
        self.backend = backend
        self.int8 = bool(self.config.get("int8", False)) if int8 is None else int8
        if self.int8 and backend == "onnx":
            raise ReaderLoadError(
                'The reader\'s int8 mode runs in torch only: set "int8": false in'
                f" {config}, or load it with backend='torch'."
            )
        if backend == "onnx" and session is None:
            raise ValueError(
                "An ONNX reader runs in a session: load it with embeddings.load_reader."
            )
        base = model_path(self.config.get("base", "all-MiniLM-L6-v2"))
        self._tokenizer = load_tokenizer(base, MAX_TOKENS)
        self._sep = self._tokenizer.token_to_id("[SEP]")
        self.max_span_tokens = int(self.config.get("max_span_tokens", 30))
        # A reader trained with null spans puts the mass of "no short answer here" on [CLS].
        self.null_span = bool(self.config.get("null_span", False))
        if backend == "onnx":
            self._session = session
        else:
            self._model = self._torch_model(base, directory / WEIGHTS_FILE, threads)

    @staticmethod
    def check_files(directory: Path) -> dict:
        """Check a reader's folder: its files are there and its weights match their digest.

        Args:
            directory: The reader's folder.

        Returns:
            Its configuration (`reader.json`).

        Raises:
            ReaderLoadError: A file is missing, not valid, or altered; the message says the fix.
        """
        weights, config = directory / WEIGHTS_FILE, directory / CONFIG_FILE
        for path in (weights, config):
            if not path.is_file():
                raise ReaderLoadError(
                    f"The reader's file {path} is missing. Reinstall the package, or train it"
                    f" again with: {RETRAIN}"
                )
        try:
            settings = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ReaderLoadError(
                f"The reader's file {config} is not valid JSON ({e}). Reinstall the package, or"
                f" train it again with: {RETRAIN}"
            ) from e
        expected = settings.get("sha256")
        actual = sha256_file(weights)
        if actual != expected:
            raise ReaderLoadError(
                f"The reader's weights {weights} do not match their SHA-256 in {config}"
                f" (expected {expected}, found {actual}): the file is truncated or altered."
                f" Reinstall the package, or train it again with: {RETRAIN}"
            )
        return settings

    def _torch_model(self, base: str, weights: Path, threads: int | None):
        torch = _torch()
        from safetensors.torch import load_file
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        model = build_model(base)
        state = {k: v.float() for k, v in load_file(str(weights)).items()}
        wanted = set(trainable_names(model, int(self.config.get("frozen_layers", FROZEN_LAYERS))))
        if set(state) != wanted:
            raise ReaderLoadError(
                f"The reader's weights {weights} do not fit the embedding model: they hold"
                f" {len(set(state) - wanted)} unknown and lack {len(wanted - set(state))}"
                f" expected tensors. Train it again with: {RETRAIN}"
            )
        model.load_state_dict(state, strict=False)
        model.eval()
        if threads:
            torch.set_num_threads(threads)
        if not self.int8:
            return model
        # int8 matrix products: about twice as fast on a CPU, but they move the
        # probabilities (see the model card). PyTorch marks this API for a later move to
        # torchao; the pinned release has it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear}, dtype=torch.qint8
            )

    def tokenize(
        self, questions: Sequence[str], sentences: Sequence[str], contexts: Sequence[str] | None
    ) -> dict[str, np.ndarray]:
        """Pairs as the reader reads them (see `encode_pairs`), as padded int64 arrays."""
        contexts = list(contexts) if contexts is not None else [""] * len(sentences)
        seconds = second_segments(sentences, contexts)
        return batch_arrays(
            self._tokenizer.encode_batch(list(zip(questions, seconds, strict=True)))
        )

    def shortened(self, texts: Sequence[str], tokens: int) -> list[str]:
        """Each text cut after its first `tokens` word pieces (whole texts when shorter)."""
        if tokens <= 0:
            return ["" for _ in texts]
        cut = []
        for text, encoding in zip(
            texts, self._tokenizer.encode_batch(list(texts), add_special_tokens=False), strict=True
        ):
            offsets = encoding.offsets
            cut.append(text if len(offsets) <= tokens else text[: offsets[tokens - 1][1]])
        return cut

    def _forward(self, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        if self.backend == "onnx":
            return tuple(run_session(self._session, inputs))
        torch = _torch()
        with torch.inference_mode():
            outputs = self._model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
        return tuple(o.float().numpy() for o in outputs)

    def read(
        self,
        question: str,
        sentences: Sequence[str],
        contexts: Sequence[str] | None = None,
        *,
        context_tokens: int | None = None,
    ) -> list[Reading]:
        """Read a question with each candidate sentence, in one batch.

        Args:
            question: The question.
            sentences: Candidate sentences.
            contexts: The sentence before each candidate, or "" (default: none).
            context_tokens: Read at most this many word pieces of each context, from its
                start (None: as many as the model's window holds).

        Returns:
            One reading per sentence, in order. Text past the model's window is cut, the
            context sentence first.
        """
        if not sentences:
            return []
        if contexts is not None and context_tokens is not None:
            contexts = self.shortened(contexts, context_tokens)
        batch = self.tokenize([question] * len(sentences), sentences, contexts)
        relevance, start, end = self._forward(batch)
        probabilities = 1.0 / (1.0 + np.exp(-relevance.astype(np.float64)))
        # Spans run forward and are at most `max_span_tokens` word pieces long.
        n = batch["input_ids"].shape[1]
        band = np.triu(np.ones((n, n), dtype=bool)) & ~np.triu(
            np.ones((n, n), dtype=bool), k=self.max_span_tokens
        )
        readings = []
        for row, sentence in enumerate(sentences):
            span, span_p = self._best_span(batch, start[row], end[row], band, row, len(sentence))
            readings.append(Reading(float(probabilities[row]), span, span_p))
        return readings

    def _best_span(self, batch, start, end, band, row, length):
        # Only word pieces of the candidate sentence itself (segment 1, before any [SEP]
        # inside it) may hold the short answer.
        ids = batch["input_ids"][row]
        inside = (batch["token_type_ids"][row] == 1) & (batch["attention_mask"][row] == 1)
        spans = batch["offset_mapping"][row]
        allowed = inside & (spans[:, 1] <= length) & (spans[:, 1] > spans[:, 0])
        positions = np.flatnonzero(inside & (ids == self._sep))
        if positions.size:
            allowed[positions[0] :] = False
        if not allowed.any():
            return None, 0.0
        support = inside.copy()
        support[0] = self.null_span
        s_log = _log_softmax(np.where(support, start, -1e4))
        e_log = _log_softmax(np.where(support, end, -1e4))
        s_log = np.where(allowed, s_log, -1e4)
        e_log = np.where(allowed, e_log, -1e4)
        pair = np.where(band, s_log[:, None] + e_log[None, :], -1e4)
        i, j = divmod(int(np.argmax(pair)), pair.shape[0])
        return (int(spans[i, 0]), int(spans[j, 1])), float(np.exp(pair[i, j]))


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32)
    shifted = x - x.max()
    return shifted - np.log(np.exp(shifted).sum())
