"""Confidence a person can read: the band an answer falls in, and what each band tells."""

from __future__ import annotations

from typing import Literal

Band = Literal["answered", "probably", "not sure"]
BANDS: tuple[Band, ...] = ("answered", "probably", "not sure")
# What each band tells the reader; the edges that make it true are chosen on the news dev
# split (`python -m eval.calibrate`, README "How answers are chosen").
WORDING: dict[Band, str] = {
    "answered": "Answered.",
    "probably": "Probably: check the quote against its article before you rely on it.",
    "not sure": "Not sure: these are the closest passages, not an answer.",
}


def band_of(answered: bool, confidence: float, answered_at: float) -> Band:
    """The band of a reader's answer.

    Args:
        answered: Whether the refusal step let the question through.
        confidence: The probability that the first quoted sentence answers.
        answered_at: From this confidence up, an answer is `answered`; under it, `probably`.

    Returns:
        `not sure` for a refusal, else `answered` or `probably`.
    """
    if not answered:
        return "not sure"
    return "answered" if confidence >= answered_at else "probably"
