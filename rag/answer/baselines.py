"""The two baselines kept for comparison: hand-weighted features (rules) and cosine similarity."""

from __future__ import annotations

import math
from dataclasses import replace

from rag.answer.features import Scored

# The rules' refusal threshold on the weighted score (`rag.answer.features.WEIGHTS`).
THRESHOLD = 0.75


CONFIDENCE_SLOPE = 12.0


def confidence_of(score: float, threshold: float = THRESHOLD) -> float:
    """Map a sentence score to a confidence in [0, 1] that is 0.5 at the threshold."""
    return 1.0 / (1.0 + math.exp(-CONFIDENCE_SLOPE * (score - threshold)))


def rank_by_cosine(scored: list[Scored]) -> list[Scored]:
    """The baseline: candidates ranked by the cosine similarity of sentence and question."""
    return sorted((replace(s, score=s.dense) for s in scored), key=lambda s: -s.score)
