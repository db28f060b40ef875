"""Tests for eval.metrics."""

import json

import pytest

from eval.metrics import (
    Abstention,
    abstention,
    answer_hit,
    check_thresholds,
    citation_precision,
    hit_at_k,
    latency_summary,
    normalize_text,
    normalize_title,
    percentile,
    reciprocal_rank,
    score_question,
    span_exact_match,
    span_f1,
    squad_normalize,
    summarize,
)


def test_normalize_title_collapses_unicode_whitespace():
    assert normalize_title("  Super\u00a0Bowl \u2009\n 50 ") == "Super Bowl 50"


def test_normalize_text_straightens_quotes_and_casefolds():
    assert normalize_text(" Kita\u2019ib  \u201cHEZBOLLAH\u201d\u00a0\u2032x\u2033 ") == (
        'kita\'ib "hezbollah" \'x"'
    )
    assert normalize_text("Stra\u00dfe") == "strasse"


def test_squad_normalize_matches_official_rules():
    assert squad_normalize("The  \u201cBig\u201d Apple, an A-team!") == "big apple ateam"
    assert squad_normalize("Theatre") == "theatre"


def test_hit_at_k():
    retrieved = ["Warsaw", "Super\u00a0Bowl 50", "Normans"]
    assert hit_at_k(retrieved, ["Super Bowl 50"], 1) == 0.0
    assert hit_at_k(retrieved, ["Super Bowl 50"], 2) == 1.0
    assert hit_at_k(retrieved, ["Oxygen"], 5) == 0.0
    assert hit_at_k(retrieved, [], 5) == 0.0


def test_hit_at_k_counts_distinct_titles():
    assert hit_at_k(["a", "a", "a", "b"], ["b"], 2) == 1.0


def test_hit_at_k_rejects_non_positive_k():
    with pytest.raises(ValueError):
        hit_at_k(["a"], ["a"], 0)


def test_reciprocal_rank():
    assert reciprocal_rank(["b", "a"], ["a"]) == 0.5
    assert reciprocal_rank(["a", "b"], ["a"]) == 1.0
    assert reciprocal_rank(["c", "b"], ["a"]) == 0.0
    assert reciprocal_rank(["c", "b", "a"], ["a"], k=2) == 0.0
    assert reciprocal_rank(["c", "b", "a"], ["x", "a"], k=3) == pytest.approx(1 / 3)


def test_reciprocal_rank_deduplicates_before_ranking():
    assert reciprocal_rank(["b", "b", "b", "a"], ["a"]) == 0.5
    assert reciprocal_rank(["b", "b\u00a0", "a"], ["a"], k=2) == 0.5


def test_answer_hit_normalises_quotes_and_case():
    texts = ["Nothing here.", "The militia KITA\u2019IB Hezbollah fired rockets."]
    assert answer_hit(texts, ["Kita'ib Hezbollah"], 1) == 0.0
    assert answer_hit(texts, ["Kita'ib Hezbollah"], 2) == 1.0
    assert answer_hit(texts, ["missing", "kita\u2019ib\u00a0hezbollah"], 3) == 1.0


def test_answer_hit_without_gold_or_with_empty_gold_is_a_miss():
    assert answer_hit(["any text"], [], 1) == 0.0
    assert answer_hit(["any text"], ["  "], 1) == 0.0
    assert answer_hit([], ["text"], 3) == 0.0


def test_span_exact_match():
    assert span_exact_match("the Denver Broncos.", ["Carolina", "Denver Broncos"]) == 1.0
    assert span_exact_match("Denver", ["Denver Broncos"]) == 0.0
    assert span_exact_match("\u201cHello\u201d", ['"hello"']) == 1.0
    assert span_exact_match(None, ["Denver Broncos"]) == 0.0


def test_span_f1_hand_worked():
    # prediction tokens denver broncos won, gold denver broncos: P = 2/3, R = 1, F1 = 0.8
    assert span_f1("Denver Broncos won", ["Carolina", "the Denver Broncos"]) == pytest.approx(0.8)
    # prediction manning, gold peyton manning: P = 1, R = 1/2, F1 = 2/3
    assert span_f1("Manning", ["Peyton Manning"]) == pytest.approx(2 / 3)
    assert span_f1("Carolina", ["Denver Broncos"]) == 0.0
    assert span_f1(None, ["Denver Broncos"]) == 0.0
    assert span_f1("Denver", []) == 0.0


def test_citation_precision():
    assert citation_precision(["A", "A", "B"], ["A"]) == 0.5
    assert citation_precision(["Super\u00a0Bowl 50"], ["Super Bowl 50"]) == 1.0
    assert citation_precision(["B"], ["A"]) == 0.0
    assert citation_precision([], ["A"]) is None


def _qa(qid, answers, kind="factoid", articles=("A",)):
    return {
        "id": qid,
        "question": "?",
        "answers": answers,
        "articles": list(articles),
        "kind": kind,
    }


def _result(qid, answered, retrieved=(), sentences=(), latency_ms=10.0):
    return {
        "id": qid,
        "retrieved": list(retrieved),
        "answered": answered,
        "confidence": 0.5,
        "sentences": list(sentences),
        "latency_ms": latency_ms,
    }


def _sentence(text, title, span=None):
    return {"text": text, "title": title, "start": 0, "end": len(text), "span": span}


def test_abstention_four_questions():
    pairs = [
        (_qa("1", ["x"]), _result("1", answered=True)),
        (_qa("2", ["y"]), _result("2", answered=False)),
        (_qa("3", []), _result("3", answered=False)),
        (_qa("4", []), _result("4", answered=False)),
    ]
    got = abstention(pairs)
    assert got.precision == pytest.approx(2 / 3)
    assert got.recall == 1.0
    assert got.false_refusal_rate == 0.5


def test_abstention_undefined_ratios_are_none():
    pairs = [(_qa("1", ["x"]), _result("1", answered=True))]
    assert abstention(pairs) == Abstention(precision=None, recall=None, false_refusal_rate=0.0)


def test_percentile_interpolates_linearly():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([4, 1, 3, 2], 95) == pytest.approx(3.85)
    assert percentile([4, 1, 3, 2], 0) == 1
    assert percentile([4, 1, 3, 2], 100) == 4
    assert percentile([7.0], 95) == 7.0


def test_percentile_rejects_bad_input():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_summary():
    assert latency_summary([100.0, 300.0, 200.0]) == {
        "latency_p50_ms": 200.0,
        "latency_p95_ms": pytest.approx(290.0),
    }
    assert latency_summary([]) == {"latency_p50_ms": None, "latency_p95_ms": None}


def test_score_question_unanswerable_reports_only_refusal():
    assert score_question(_qa("u", [], kind="unanswerable"), _result("u", answered=False)) == {
        "id": "u",
        "kind": "unanswerable",
        "answerable": False,
        "refused": True,
    }


def test_score_question_refused_answerable_misses_answer_metrics():
    qa = _qa("q", ["1973"], kind="date", articles=["Oil"])
    result = _result("q", False, ["Oil"], [_sentence("It began in 1973.", "Oil", "1973")])
    scores = score_question(qa, result)
    assert scores["hit@1"] == 1.0
    assert scores["answer_hit@1"] == 0.0
    assert scores["span_em"] == 0.0
    assert scores["citation_precision"] is None
    assert scores["refused"] is True


def test_score_question_rejects_mismatched_ids():
    with pytest.raises(ValueError, match="'b'"):
        score_question(_qa("a", ["x"]), _result("b", answered=True))


QAS = [
    _qa("q1", ["Peyton Manning"], kind="person", articles=["Super Bowl 50"]),
    _qa("q2", ["1973"], kind="date", articles=["1973 oil crisis"]),
    _qa("q3", [], kind="unanswerable", articles=[]),
]
RESULTS = [
    _result("q3", answered=False, retrieved=["Warsaw"], latency_ms=200.0),
    _result(
        "q1",
        answered=True,
        retrieved=["Warsaw", "Super\u00a0Bowl 50"],
        sentences=[
            _sentence("Peyton Manning was the quarterback.", "Super Bowl 50", "Manning"),
            _sentence("Warsaw is a city.", "Warsaw"),
        ],
        latency_ms=100.0,
    ),
    _result(
        "q2",
        answered=False,
        retrieved=["1973 oil crisis"],
        sentences=[_sentence("The crisis began in 1973.", "1973 oil crisis", "1973")],
        latency_ms=300.0,
    ),
]


def test_summarize_three_questions():
    summary = summarize(QAS, RESULTS)
    per_kind = summary.pop("per_kind")
    assert summary.pop("per_band") == {}  # no result carries a band
    assert summary == pytest.approx(
        {
            "hit@1": 0.5,
            "hit@5": 1.0,
            "mrr@10": 0.75,
            "answer_hit@1": 0.5,
            "answer_hit@3": 0.5,
            "span_em": 0.0,
            "span_f1": 1 / 3,
            "citation_precision": 0.5,
            "first_citation_gold": 0.5,
            "abstention_precision": 0.5,
            "abstention_recall": 1.0,
            "false_refusal_rate": 0.5,
            "latency_p50_ms": 200.0,
            "latency_p95_ms": 290.0,
            "questions": 3,
            "answerable": 2,
            "unanswerable": 1,
        }
    )
    assert list(per_kind) == ["date", "person", "unanswerable"]
    assert per_kind["person"] == pytest.approx(
        {
            "questions": 1,
            "hit@1": 0.0,
            "hit@5": 1.0,
            "mrr@10": 0.5,
            "answer_hit@1": 1.0,
            "answer_hit@3": 1.0,
            "span_em": 0.0,
            "span_f1": 2 / 3,
            "citation_precision": 0.5,
            "first_citation_gold": 1.0,
            "false_refusal_rate": 0.0,
        }
    )
    assert per_kind["date"] == {
        "questions": 1,
        "hit@1": 1.0,
        "hit@5": 1.0,
        "mrr@10": 1.0,
        "answer_hit@1": 0.0,
        "answer_hit@3": 0.0,
        "span_em": 0.0,
        "span_f1": 0.0,
        "citation_precision": None,
        "first_citation_gold": 0.0,
        "false_refusal_rate": 1.0,
    }
    assert per_kind["unanswerable"] == {"questions": 1, "refusal_rate": 1.0}


def test_summarize_is_json_serialisable():
    summary = summarize(QAS, RESULTS)
    assert json.loads(json.dumps(summary)) == summary


def test_summarize_names_question_without_result():
    with pytest.raises(ValueError, match="q2"):
        summarize(QAS, [r for r in RESULTS if r["id"] != "q2"])


def test_summarize_ignores_results_for_other_questions():
    assert summarize(QAS[:1], RESULTS)["questions"] == 1


def test_summarize_without_answerable_questions_has_undefined_answer_metrics():
    summary = summarize(QAS[2:], RESULTS)
    assert summary["hit@5"] is None
    assert summary["false_refusal_rate"] is None
    assert summary["abstention_recall"] == 1.0


SUMMARY = {"hit@5": 0.96, "answer_hit@1": 0.8125, "false_refusal_rate": 0.08, "span_em": None}


def test_check_thresholds_pass():
    thresholds = {
        "min": {"hit@5": 0.95, "answer_hit@1": 0.8125},
        "max": {"false_refusal_rate": 0.1},
    }
    assert check_thresholds(SUMMARY, thresholds) == []
    assert check_thresholds(SUMMARY, {}) == []


def test_check_thresholds_fail_lines():
    thresholds = {
        "min": {"hit@5": 0.95, "answer_hit@1": 0.85, "abstention_recall": 0.8, "span_em": 0.5},
        "max": {"false_refusal_rate": 0.05},
    }
    assert check_thresholds(SUMMARY, thresholds) == [
        "answer_hit@1 0.812 < 0.850",
        "abstention_recall missing from summary (min 0.800)",
        "span_em undefined (min 0.500)",
        "false_refusal_rate 0.080 > 0.050",
    ]


def test_check_thresholds_rejects_unknown_section():
    with pytest.raises(ValueError, match="minimum"):
        check_thresholds(SUMMARY, {"minimum": {"hit@5": 0.9}})


def test_each_band_reports_what_it_stated_and_what_held():
    results = [
        {**r, "band": band, "confidence": c}
        for r, band, c in zip(
            RESULTS, ("not sure", "answered", "not sure"), (0.1, 0.8, 0.3), strict=True
        )
    ]
    per_band = summarize(QAS, results)["per_band"]
    # q1's first quote holds its answer; of the two refused, q3 had none to give, q2 had one.
    assert per_band == {
        "answered": {"questions": 1, "stated": 0.8, "right": 1.0},
        "not sure": {"questions": 2, "stated": 0.2, "right": 0.5},
    }
