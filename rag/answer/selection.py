"""The learned answer selector: which candidate sentences answer, and whether any does."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.errors import RagError

SELECTOR_FILE = Path(__file__).parents[1] / "data" / "selector.json"
RETRAIN = "python -m eval.train_selector"
# A selector that was never calibrated tells every answer as `probably`.
ANSWERED_AT = 1.0
# A first-model probability no candidate reaches: the reader always reads `candidates`.
NEVER = 2.0
# What retrieval and the sentence features know, before the reader reads anything.
CHEAP_FEATURES = ("dense", "tokens", "lexical", "context", "typed", "prior", "short_kind")
# The reader's say: its log-odds, its lead over the best other candidate, its span's confidence.
READER_FEATURES = ("reader", "reader_gap", "span_probability")
# What the refusal model reads of a question's ranked candidates (`rag.answer.reading.question_features`).
REFUSAL_FEATURES = (
    "best",
    "second",
    "reader_best",
    "dense",
    "tokens",
    "lexical",
    "context",
    "typed",
    "short_kind",
)
# What the read candidates say together: the best sentence's short answer found again in the
# other read sentences (their summed probability), and in how many other articles.
AGREEMENT_FEATURES = ("agree", "agree_articles")


class SelectorLoadError(RagError):
    """The selector's file is missing or does not hold a selector."""


@dataclass(frozen=True)
class Logistic:
    """A logistic regression over standardised features."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def probabilities(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """The probability of each row (a mapping of feature name to value)."""
        if not rows:
            return np.zeros(0)
        matrix = np.array([[row[f] for f in self.features] for row in rows], dtype=np.float64)
        z = ((matrix - self.mean) / self.scale) @ np.asarray(self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    @classmethod
    def from_json(cls, data: Mapping) -> Logistic:
        return cls(
            tuple(data["features"]),
            tuple(data["mean"]),
            tuple(data["scale"]),
            tuple(data["coef"]),
            float(data["intercept"]),
        )

    def to_json(self) -> dict:
        return {
            "features": list(self.features),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "coef": list(self.coef),
            "intercept": self.intercept,
        }


@dataclass(frozen=True)
class Selector:
    """Two logistic models and the thresholds fitted with them.

    Attributes:
        first: Ranks every candidate on cheap features; its best `candidates` go to the reader.
        second: Ranks what the reader read, with the reader's features added.
        candidates: How many sentences the reader reads per question.
        threshold: Under this probability for the best sentence, the articles do not answer.
        cosine_threshold: The same for the cosine baseline (best sentence by similarity alone).
        spans: Where the short answer comes from: `reader` (its span head), `patterns`, or
            `both` (see `rag.answer.compose.choose_span`).
        refusal: When fitted, a model of whether the question is answered at all, read from
            its ranked candidates; under `refusal_threshold` the articles do not answer, and
            `threshold` is not used.
        answered_at: From this probability of the best sentence up, an answer is told as
            `answered`, under it as `probably` (`rag.answer.bands`); set on news dev.
        context_tokens: How many word pieces of the sentence before each candidate the reader
            reads, from its start (None: as many as its window holds).
        sure_at: From this first-model probability of the best candidate up, the reader reads
            only `sure_candidates` sentences (above 1: always `candidates`).
        sure_candidates: How many sentences are read when the first model is sure.
        rules: Whether the hand checks of `rag.answer.compose.compose` (a date for "when"...) still
            refuse on top of the threshold; kept only where held-out figures show they help.
    """

    first: Logistic
    second: Logistic
    candidates: int
    threshold: float
    cosine_threshold: float
    spans: str
    rules: bool = False
    refusal: Logistic | None = None
    refusal_threshold: float = 0.0
    about: Mapping = field(default_factory=dict)
    answered_at: float = ANSWERED_AT
    context_tokens: int | None = None
    sure_at: float = NEVER
    sure_candidates: int = 2

    def reads(self, best_first: float) -> int:
        """How many candidates the reader reads, given the first model's best probability."""
        return self.sure_candidates if best_first >= self.sure_at else self.candidates

    def to_json(self) -> dict:
        return {
            "first": self.first.to_json(),
            "second": self.second.to_json(),
            "candidates": self.candidates,
            "threshold": self.threshold,
            "cosine_threshold": self.cosine_threshold,
            "spans": self.spans,
            "rules": self.rules,
            "refusal": self.refusal.to_json() if self.refusal else None,
            "refusal_threshold": self.refusal_threshold,
            "answered_at": self.answered_at,
            "context_tokens": self.context_tokens,
            "sure_at": self.sure_at,
            "sure_candidates": self.sure_candidates,
            "about": dict(self.about),
        }


def load_selector(path: Path = SELECTOR_FILE) -> Selector:
    """Read the selector fitted by `python -m eval.train_selector`.

    Args:
        path: The selector's JSON file.

    Returns:
        The selector.

    Raises:
        SelectorLoadError: The file is missing or not a selector; the message says how to fix it.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return Selector(
            Logistic.from_json(data["first"]),
            Logistic.from_json(data["second"]),
            int(data["candidates"]),
            float(data["threshold"]),
            float(data["cosine_threshold"]),
            str(data["spans"]),
            bool(data.get("rules", False)),
            Logistic.from_json(data["refusal"]) if data.get("refusal") else None,
            float(data.get("refusal_threshold", 0.0)),
            data.get("about", {}),
            float(data.get("answered_at", ANSWERED_AT)),
            _optional_int(data.get("context_tokens")),
            float(data.get("sure_at", NEVER)),
            int(data.get("sure_candidates", 2)),
        )
    except FileNotFoundError as e:
        raise SelectorLoadError(
            f"The answer selector {path} is missing. Reinstall the package, or fit it with: {RETRAIN}"
        ) from e
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SelectorLoadError(
            f"The answer selector {path} is damaged ({type(e).__name__}: {e}). Reinstall the"
            f" package, or fit it again with: {RETRAIN}"
        ) from e


def _optional_int(value) -> int | None:
    return None if value is None else int(value)


def log_odds(probability: float) -> float:
    """The log-odds of a probability, kept finite."""
    p = min(max(probability, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))
