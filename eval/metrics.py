"""Pure metric functions scoring system results against Q&A records."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_QUOTES = str.maketrans(
    {
        "\N{LEFT SINGLE QUOTATION MARK}": "'",
        "\N{RIGHT SINGLE QUOTATION MARK}": "'",
        "\N{SINGLE LOW-9 QUOTATION MARK}": "'",
        "\N{SINGLE HIGH-REVERSED-9 QUOTATION MARK}": "'",
        "\N{PRIME}": "'",
        "\N{REVERSED PRIME}": "'",
        "\N{MODIFIER LETTER APOSTROPHE}": "'",
        "\N{FULLWIDTH APOSTROPHE}": "'",
        "\N{LEFT DOUBLE QUOTATION MARK}": '"',
        "\N{RIGHT DOUBLE QUOTATION MARK}": '"',
        "\N{DOUBLE LOW-9 QUOTATION MARK}": '"',
        "\N{DOUBLE HIGH-REVERSED-9 QUOTATION MARK}": '"',
        "\N{DOUBLE PRIME}": '"',
        "\N{REVERSED DOUBLE PRIME}": '"',
        "\N{FULLWIDTH QUOTATION MARK}": '"',
    }
)
_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")

ANSWER_METRICS = (
    "hit@1",
    "hit@5",
    "mrr@10",
    "answer_hit@1",
    "answer_hit@3",
    "span_em",
    "span_f1",
    "citation_precision",
    "first_citation_gold",
)
_PER_QUESTION_KEYS = {"mrr@10": "rr@10"}


def normalize_title(s: str) -> str:
    """Collapse every run of Unicode whitespace in a title to one space.

    Args:
        s: An article title.

    Returns:
        The title with whitespace runs (including non-breaking spaces) collapsed and stripped.
    """
    return " ".join(s.split())


def straighten_quotes(s: str) -> str:
    """Replace curly quotes, apostrophes and primes by their ASCII counterparts.

    Args:
        s: Any text.

    Returns:
        The text with single-quote-like marks as ``'`` and double-quote-like marks as ``"``.
    """
    return s.translate(_QUOTES)


def normalize_text(s: str) -> str:
    """Normalise text for containment tests.

    Args:
        s: Any text.

    Returns:
        The text with straight quotes, casefolded, whitespace runs collapsed and stripped.
    """
    return " ".join(straighten_quotes(s).casefold().split())


def squad_normalize(s: str) -> str:
    """Normalise an answer as the official SQuAD v1.1 script does, after straightening quotes.

    Args:
        s: An answer text.

    Returns:
        The text lowercased, without punctuation or the articles a/an/the, whitespace fixed.
    """
    text = straighten_quotes(s).lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _distinct_titles(titles: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(normalize_title(t) for t in titles))


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def hit_at_k(retrieved: Sequence[str], gold: Iterable[str], k: int) -> float:
    """Score whether a gold article is among the first k distinct retrieved titles.

    Args:
        retrieved: Retrieved article titles in rank order.
        gold: Titles of the gold articles.
        k: Cut-off rank, at least 1.

    Returns:
        1.0 on a hit, else 0.0 (also 0.0 when there is no gold title).
    """
    _check_k(k)
    gold_titles = {normalize_title(t) for t in gold}
    return float(any(t in gold_titles for t in _distinct_titles(retrieved)[:k]))


def reciprocal_rank(retrieved: Sequence[str], gold: Iterable[str], k: int = 10) -> float:
    """Score the reciprocal rank of the first gold article among the distinct retrieved titles.

    Args:
        retrieved: Retrieved article titles in rank order; repeats keep their first rank.
        gold: Titles of the gold articles.
        k: Cut-off rank, at least 1.

    Returns:
        1/rank of the first gold title within the first k, else 0.0.
    """
    _check_k(k)
    gold_titles = {normalize_title(t) for t in gold}
    for rank, title in enumerate(_distinct_titles(retrieved)[:k], start=1):
        if title in gold_titles:
            return 1.0 / rank
    return 0.0


def answer_hit(sentence_texts: Sequence[str], gold_answers: Iterable[str], k: int) -> float:
    """Score whether any of the first k sentences contains a gold answer.

    Args:
        sentence_texts: Answer sentence texts in rank order.
        gold_answers: Gold answer texts.
        k: Cut-off rank, at least 1.

    Returns:
        1.0 if some sentence contains some gold answer after normalize_text, else 0.0.
    """
    _check_k(k)
    golds = [g for g in (normalize_text(a) for a in gold_answers) if g]
    texts = [normalize_text(t) for t in sentence_texts[:k]]
    return float(any(g in t for t in texts for g in golds))


def _span_f1_one(prediction: str, gold: str) -> float:
    pred_tokens = squad_normalize(prediction).split()
    gold_tokens = squad_normalize(gold).split()
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def span_exact_match(prediction: str | None, gold_answers: Iterable[str]) -> float:
    """Score SQuAD exact match of a predicted span against the best gold answer.

    Args:
        prediction: The predicted answer span, or None when there is none.
        gold_answers: Gold answer texts.

    Returns:
        1.0 if the normalised prediction equals some normalised gold answer, else 0.0.
    """
    if prediction is None:
        return 0.0
    pred = squad_normalize(prediction)
    return float(any(pred == squad_normalize(g) for g in gold_answers))


def span_f1(prediction: str | None, gold_answers: Iterable[str]) -> float:
    """Score SQuAD token F1 of a predicted span against the best gold answer.

    Args:
        prediction: The predicted answer span, or None when there is none.
        gold_answers: Gold answer texts.

    Returns:
        The maximum token F1 over the gold answers, 0.0 without a prediction or gold answers.
    """
    if prediction is None:
        return 0.0
    return max((_span_f1_one(prediction, g) for g in gold_answers), default=0.0)


def citation_precision(cited_titles: Iterable[str], gold_titles: Iterable[str]) -> float | None:
    """Score the share of distinct cited article titles that are gold.

    Args:
        cited_titles: Titles of the articles the answer cites.
        gold_titles: Titles of the gold articles.

    Returns:
        The share of distinct cited titles that are gold, or None if nothing is cited.
    """
    cited = _distinct_titles(cited_titles)
    if not cited:
        return None
    gold = {normalize_title(t) for t in gold_titles}
    return sum(t in gold for t in cited) / len(cited)


@dataclass(frozen=True)
class Abstention:
    """Abstention quality, with "unanswerable" as the positive class."""

    precision: float | None
    recall: float | None
    false_refusal_rate: float | None


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def abstention(pairs: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> Abstention:
    """Compute abstention precision, recall and false-refusal rate.

    Args:
        pairs: (Q&A record, result record) pairs; a Q&A record with no answers is unanswerable
            and a result with ``answered`` false is a refusal.

    Returns:
        Precision (refused unanswerable / refused), recall (refused unanswerable / unanswerable)
        and false-refusal rate (refused answerable / answerable), each None when undefined.
    """
    counts = Counter((not qa["answers"], not result["answered"]) for qa, result in pairs)
    refused_unanswerable = counts[(True, True)]
    refused_answerable = counts[(False, True)]
    unanswerable = refused_unanswerable + counts[(True, False)]
    answerable = refused_answerable + counts[(False, False)]
    return Abstention(
        precision=_ratio(refused_unanswerable, refused_unanswerable + refused_answerable),
        recall=_ratio(refused_unanswerable, unanswerable),
        false_refusal_rate=_ratio(refused_answerable, answerable),
    )


def percentile(values: Iterable[float], p: float) -> float:
    """Compute a percentile with linear interpolation between order statistics.

    Args:
        values: The sample, not empty.
        p: The percentile, from 0 to 100.

    Returns:
        The percentile, as numpy.percentile computes it by default.
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of an empty sample")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {p}")
    position = (len(ordered) - 1) * p / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float | None]:
    """Summarise latencies by their median and 95th percentile.

    Args:
        latencies_ms: Per-question latencies in milliseconds.

    Returns:
        ``latency_p50_ms`` and ``latency_p95_ms``, None for an empty sample.
    """
    if not latencies_ms:
        return {"latency_p50_ms": None, "latency_p95_ms": None}
    return {
        "latency_p50_ms": percentile(latencies_ms, 50),
        "latency_p95_ms": percentile(latencies_ms, 95),
    }


def score_question(qa: Mapping[str, Any], result: Mapping[str, Any]) -> dict[str, Any]:
    """Score one system result against its Q&A record.

    A refused answerable question keeps its retrieval scores but scores 0 on answer and span
    metrics and has no citation precision, since the reader gave no answer.

    Args:
        qa: The Q&A record.
        result: The system's result record for the same question.

    Returns:
        ``id``, ``kind``, ``answerable`` and ``refused``; for answerable questions also
        ``hit@1``, ``hit@5``, ``rr@10``, ``answer_hit@1``, ``answer_hit@3``, ``span_em``,
        ``span_f1``, ``citation_precision`` (None when nothing is cited) and
        ``first_citation_gold`` (the first answer sentence's article is a gold one).
    """
    if qa["id"] != result["id"]:
        raise ValueError(f"result {result['id']!r} does not belong to question {qa['id']!r}")
    refused = not result["answered"]
    scores: dict[str, Any] = {
        "id": qa["id"],
        "kind": qa["kind"],
        "answerable": bool(qa["answers"]),
        "refused": refused,
    }
    if not qa["answers"]:
        return scores
    retrieved, gold = result["retrieved"], qa["articles"]
    answers = qa["answers"]
    sentences = [] if refused else result["sentences"]
    texts = [s["text"] for s in sentences]
    span = sentences[0]["span"] if sentences else None
    scores.update(
        {
            "hit@1": hit_at_k(retrieved, gold, 1),
            "hit@5": hit_at_k(retrieved, gold, 5),
            "rr@10": reciprocal_rank(retrieved, gold, 10),
            "answer_hit@1": answer_hit(texts, answers, 1),
            "answer_hit@3": answer_hit(texts, answers, 3),
            "span_em": span_exact_match(span, answers),
            "span_f1": span_f1(span, answers),
            "citation_precision": citation_precision([s["title"] for s in sentences], gold),
            "first_citation_gold": hit_at_k([s["title"] for s in sentences[:1]], gold, 1),
        }
    )
    return scores


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _answer_metrics(scores: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    answerable = [s for s in scores if s["answerable"]]
    metrics = {
        name: _mean(s[_PER_QUESTION_KEYS.get(name, name)] for s in answerable)
        for name in ANSWER_METRICS
    }
    metrics["false_refusal_rate"] = _mean(float(s["refused"]) for s in answerable)
    return metrics


def _kind_summary(scores: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    answerable = sum(s["answerable"] for s in scores)
    summary: dict[str, Any] = {"questions": len(scores)}
    if answerable:
        summary.update(_answer_metrics(scores))
    if answerable < len(scores):
        summary["refusal_rate"] = _mean(float(s["refused"]) for s in scores if not s["answerable"])
    return summary


def _join(
    qas: Sequence[Mapping[str, Any]], results: Iterable[Mapping[str, Any]]
) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    by_id: dict[str, Mapping[str, Any]] = {}
    for result in results:
        if result["id"] in by_id:
            raise ValueError(f"duplicate result for question {result['id']!r}")
        by_id[result["id"]] = result
    seen: set[str] = set()
    pairs = []
    for qa in qas:
        if qa["id"] in seen:
            raise ValueError(f"duplicate question id {qa['id']!r}")
        seen.add(qa["id"])
        if qa["id"] not in by_id:
            raise ValueError(f"no result for question {qa['id']!r}")
        pairs.append((qa, by_id[qa["id"]]))
    return pairs


def summarize(
    qas: Sequence[Mapping[str, Any]], results: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """Summarise results over a Q&A set.

    Answer metrics are means over the answerable questions (citation precision over those that
    cite something), abstention figures and latency cover all questions. Results for questions
    not in ``qas`` are ignored. Undefined figures are None.

    Args:
        qas: The Q&A records.
        results: One result record per Q&A record, matched by ``id``.

    Returns:
        A flat JSON-serialisable dict with the metrics named in ANSWER_METRICS,
        ``abstention_precision``, ``abstention_recall``, ``false_refusal_rate``,
        ``latency_p50_ms``, ``latency_p95_ms``, the counts ``questions``, ``answerable`` and
        ``unanswerable``, and ``per_kind`` mapping each kind to its question count, its answer
        metrics and false-refusal rate (if it has answerable questions) and its
        ``refusal_rate`` (if it has unanswerable ones).
    """
    pairs = _join(qas, results)
    scores = [score_question(qa, result) for qa, result in pairs]
    answer_metrics = _answer_metrics(scores)
    abstained = abstention(pairs)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for s in scores:
        by_kind.setdefault(s["kind"], []).append(s)
    answerable = sum(s["answerable"] for s in scores)
    return {
        **{name: answer_metrics[name] for name in ANSWER_METRICS},
        "abstention_precision": abstained.precision,
        "abstention_recall": abstained.recall,
        "false_refusal_rate": abstained.false_refusal_rate,
        **latency_summary([float(result["latency_ms"]) for _, result in pairs]),
        "questions": len(scores),
        "answerable": answerable,
        "unanswerable": len(scores) - answerable,
        "per_kind": {kind: _kind_summary(by_kind[kind]) for kind in sorted(by_kind)},
        "per_band": per_band(pairs, scores),
    }


def per_band(
    pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], scores: Sequence[Mapping]
) -> dict[str, dict[str, float | int]]:
    """How each confidence band (`rag.answer.bands`) fared: what it stated and what held.

    Args:
        pairs: (Q&A record, result) pairs.
        scores: `score_question` of each pair.

    Returns:
        Per band present: ``questions``, ``stated`` (the mean confidence shown) and ``right``:
        for an answer, the share whose first quote holds a gold answer; for `not sure`, the
        share the articles did not answer.
    """
    found: dict[str, list[tuple[float, bool]]] = {}
    for (qa, result), score in zip(pairs, scores, strict=True):
        band = result.get("band")
        if band is None:
            continue
        if band == "not sure":
            right = not qa["answers"]
        else:
            right = bool(qa["answers"]) and bool(score.get("answer_hit@1"))
        found.setdefault(band, []).append((float(result["confidence"]), right))
    return {
        band: {
            "questions": len(rows),
            "stated": round(sum(c for c, _ in rows) / len(rows), 4),
            "right": round(sum(r for _, r in rows) / len(rows), 4),
        }
        for band, rows in found.items()
    }


def check_thresholds(
    summary: Mapping[str, Any], thresholds: Mapping[str, Mapping[str, float]]
) -> list[str]:
    """List the thresholds a summary fails.

    Args:
        summary: A summary from summarize.
        thresholds: ``{"min": {metric: lowest allowed}, "max": {metric: highest allowed}}``;
            either section may be left out.

    Returns:
        One line per failed threshold, such as ``"answer_hit@1 0.812 < 0.850"``; a metric
        missing from the summary or undefined there fails too. Empty when all pass.
    """
    unknown = set(thresholds) - {"min", "max"}
    if unknown:
        raise ValueError(f"unknown threshold sections: {sorted(unknown)}")
    failures = []
    for section, fails, symbol in (
        ("min", lambda v, t: v < t, "<"),
        ("max", lambda v, t: v > t, ">"),
    ):
        for name, limit in thresholds.get(section, {}).items():
            if name not in summary:
                failures.append(f"{name} missing from summary ({section} {limit:.3f})")
            elif summary[name] is None:
                failures.append(f"{name} undefined ({section} {limit:.3f})")
            elif fails(summary[name], limit):
                failures.append(f"{name} {summary[name]:.3f} {symbol} {limit:.3f}")
    return failures
