"""Fit the answer selector and its refusal threshold on held-out SQuAD 2.0 articles and news.

`python -m eval.train_selector` runs the product's retrieval and sentence features over the
articles the reader never trained on (see `eval.train_reader.HELD_OUT_ARTICLES`) and, with
`--news N`, over every N-th week of the realtimeqa-news train split, reads the best candidates
with the reader, and fits two logistic models and a refusal model (`rag.answer.selection`).
Every choice (how many candidates to read, where spans come from, whether the hand checks still
refuse) is made on cross-validated predictions, grouped by article or news week, never on a
set that is reported. `python -m eval.calibrate` then sets the refusal threshold on news dev.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from eval.metrics import normalize_text, span_f1
from eval.squad import convert, write_jsonl
from eval.train_reader import SQUAD_DEV, SQUAD_TRAIN, read_squad, split_articles
from rag.answer.baselines import THRESHOLD as RULES_THRESHOLD
from rag.answer.baselines import rank_by_cosine
from rag.answer.compose import compose
from rag.answer.features import Scored
from rag.answer.question import Query, analyse
from rag.answer.reading import question_features, ranked_by, read_sentences, reader_rows
from rag.answer.selection import (
    AGREEMENT_FEATURES,
    CHEAP_FEATURES,
    READER_FEATURES,
    REFUSAL_FEATURES,
    SELECTOR_FILE,
    Logistic,
    Selector,
)
from rag.build.updates import open_index
from rag.engine import Engine
from rag.settings import Settings

MAX_CANDIDATES = 12
CANDIDATE_CHOICES = (4, 6, 8, 10, 12)
FALSE_REFUSALS = 0.04  # aim under the 5% bar, on questions the fit has not seen
FOLDS = 3
REMOVED_SHARE = 0.33
SPAN_SOURCES = ("patterns", "reader", "both")


@dataclass
class Example:
    """One held-out question with its candidates, their labels and the reader's readings."""

    engine: Engine
    query: Query
    group: str  # its source article, or its news week: the folds keep a group together
    answers: list[str]
    scored: list[Scored]
    labels: list[int]
    removed: bool = False  # unanswerable because its answer sentences were taken out
    weight: float = 1.0  # of each of its rows in every fit (see `--balance-news`)
    first: np.ndarray | None = None
    read: list[int] | None = None
    readings: list | None = None


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    """Whether a sentence holds a gold answer, as `eval.metrics.answer_hit` counts it."""
    folded = normalize_text(text)
    return any(g and g in folded for g in (normalize_text(a) for a in answers))


def _fit(
    rows: list[dict],
    labels: list[int],
    features: Sequence[str],
    weights: Sequence[float] | None = None,
    **kwargs,
) -> Logistic:
    from sklearn.linear_model import LogisticRegression

    matrix = np.array([[r[f] for f in features] for r in rows], dtype=np.float64)
    mean = matrix.mean(axis=0)
    scale = matrix.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=1.0, max_iter=2000, **kwargs)
    model.fit((matrix - mean) / scale, labels, sample_weight=weights)
    return Logistic(
        tuple(features),
        tuple(float(x) for x in mean),
        tuple(float(x) for x in scale),
        tuple(float(x) for x in model.coef_[0]),
        float(model.intercept_[0]),
    )


def collect(
    engine: Engine,
    qas: list[dict],
    group_of: dict[str, str],
    *,
    removed: bool = False,
    answers_in=None,
) -> list[Example]:
    """Retrieve and featurise every question's candidates, labelled by the gold answers.

    Args:
        engine: The engine over the collection the questions are asked of.
        qas: Q&A records (`eval.squad.convert`, `eval.news.week_set`).
        group_of: Each question id's group (its source article, or its news week), which
            keeps a group in one fold.
        removed: Whether these questions lost their answer sentences.
        answers_in: `(question, answers, sentence, sentence before) -> bool`, whether a
            candidate answers; by default, whether it holds an answer string.
    """
    examples = []
    for qa in qas:
        query = analyse(qa["question"], engine.index.lexicon)
        if query.kind == "metadata":
            continue
        scored = engine.candidates(query, engine.retriever.retrieve(query, 8))
        if not scored:
            continue
        labels = [int(bool(qa["answers"]) and _answers(engine, qa, s, answers_in)) for s in scored]
        group = group_of[qa["id"]]
        examples.append(Example(engine, query, group, qa["answers"], scored, labels, removed))
    return examples


def _answers(engine: Engine, qa: dict, s: Scored, answers_in) -> bool:
    text = _text(engine, s)
    if answers_in is None:
        return contains_answer(text, qa["answers"])
    before = engine.table.previous(s.number)
    context = "" if before is None else engine.index.sentence_text(engine.index.sentences[before])
    return answers_in(qa["question"], qa["answers"], text, context)


def news_answers_in(question: str, answers: Sequence[str], sentence: str, before: str) -> bool:
    """Whether a news sentence answers: it holds an answer and speaks of what is asked
    (`eval.news.answer_sentences`), since a news answer string alone is a noisy label."""
    from eval.news import answer_sentences

    return any(i == 1 for i, _ in answer_sentences(question, answers, [before, sentence]))


def news_examples(every: int, reader, encoder) -> list[Example]:
    """Examples from the news train split's weeks, each week's questions asked of its pooled
    articles (`eval.news.week_engines`), a week one group of the folds.

    Args:
        every: Keep every n-th week.
        reader: The reader the selector is fitted with.
        encoder: The embedding model.
    """
    from eval.news import week_engines

    examples = []
    for week, opened, qas in week_engines("train", every=every, encoder=encoder):
        engine = Engine(opened.index, encoder, answerer="rules", reader=reader)
        found = collect(
            engine, qas, {qa["id"]: f"news {week}" for qa in qas}, answers_in=news_answers_in
        )
        examples += found
        print(
            f"news {week}: {len(engine.index.articles)} articles, {len(found)} questions"
            f" ({sum(not ex.answers for ex in found)} unanswerable)",
            flush=True,
        )
    return examples


def _text(engine: Engine, s: Scored) -> str:
    return engine.index.articles[s.article_id].text[s.start : s.end]


def read_candidates(examples: list[Example], first: Logistic) -> None:
    """Rank each question's candidates with the first model and read the best of them."""
    for n, ex in enumerate(examples):
        ex.first = first.probabilities([s.features() for s in ex.scored])
        ex.read = list(np.argsort(-ex.first, kind="stable")[:MAX_CANDIDATES])
        chosen = [ex.scored[i] for i in ex.read]
        ex.readings = read_sentences(
            chosen, ex.query.text, ex.engine.reader, ex.engine.index, ex.engine.table
        )
        if n % 200 == 0:
            print(f"  read {n}/{len(examples)} questions", flush=True)


def second_rows(ex: Example, candidates: int) -> tuple[list[dict], list[int], list[int]]:
    """Selector rows of the first `candidates` read sentences: (rows, labels, indices)."""
    picked = ex.read[:candidates]
    rows = reader_rows([ex.scored[i] for i in picked], ex.readings[:candidates])
    return rows, [ex.labels[i] for i in picked], picked


def _folds(examples: list[Example]) -> list[int]:
    groups = sorted({ex.group for ex in examples})
    fold_of = {g: i % FOLDS for i, g in enumerate(groups)}
    return [fold_of[ex.group] for ex in examples]


def cross_validated(examples: list[Example], candidates: int) -> list[np.ndarray]:
    """Second-model probabilities of each question's read candidates, each predicted by a
    model fitted on the other articles."""
    folds = _folds(examples)
    out: list[np.ndarray] = [np.zeros(0)] * len(examples)
    for fold in range(FOLDS):
        rows, labels, weights = [], [], []
        for ex, f in zip(examples, folds, strict=True):
            if f != fold:
                r, y, _ = second_rows(ex, candidates)
                rows += r
                labels += y
                weights += [ex.weight] * len(y)
        model = _fit(rows, labels, CHEAP_FEATURES + READER_FEATURES, weights)
        for n, (ex, f) in enumerate(zip(examples, folds, strict=True)):
            if f == fold:
                out[n] = model.probabilities(second_rows(ex, candidates)[0])
    return out


def outcomes(
    examples: list[Example],
    ranked: list[list[Scored]],
    *,
    threshold: float,
    rules: bool,
    calibrated: bool,
    refuse: Sequence[bool] | None = None,
) -> dict[str, float]:
    """Answer hit@1, refusal of unanswerable questions and false refusals of ranked lists
    (`refuse`: questions a refusal model turns down whatever their sentences)."""
    hits = refused = false = answerable = unanswerable = 0
    removed = [0, 0]  # refused, asked: questions whose answer sentences were taken out
    f1 = []
    for n, (ex, candidates) in enumerate(zip(examples, ranked, strict=True)):
        reply = compose(
            candidates,
            ex.engine.index,
            ex.engine.table,
            threshold=threshold,
            kind=ex.query.kind,
            event=ex.query.event,
            checks=rules,
            calibrated=calibrated,
        )
        if refuse is not None and refuse[n]:
            reply = replace(reply, answered=False, sentences=())
        if ex.answers:
            answerable += 1
            false += not reply.answered
            if reply.answered:
                hits += contains_answer(reply.sentences[0].text, ex.answers)
                f1.append(span_f1(reply.sentences[0].span, ex.answers))
            else:
                f1.append(0.0)
        else:
            unanswerable += 1
            refused += not reply.answered
            if ex.removed:
                removed[0] += not reply.answered
                removed[1] += 1
    return {
        "answer_hit@1": round(hits / max(answerable, 1), 4),
        "abstention_recall": round(refused / max(unanswerable, 1), 4),
        "refused_answers_removed": round(removed[0] / max(removed[1], 1), 4),
        "false_refusal_rate": round(false / max(answerable, 1), 4),
        "span_f1": round(float(np.mean(f1)) if f1 else 0.0, 4),
    }


def threshold_for(best: Sequence[float], share: float = FALSE_REFUSALS) -> float:
    """The score under which `share` of answerable questions' best scores fall."""
    ordered = sorted(best)
    return float(ordered[int(share * len(ordered))]) if ordered else 0.0


def threshold_with_rules(
    examples: list[Example], ranked: list[list[Scored]], *, rules: bool
) -> float:
    """The highest threshold at which at most `FALSE_REFUSALS` of answerable questions are
    refused, counting those the hand checks refuse whatever the threshold."""
    best, checked = [], []
    for ex, candidates in zip(examples, ranked, strict=True):
        if not ex.answers or not candidates:
            continue
        reply = compose(
            candidates,
            ex.engine.index,
            ex.engine.table,
            threshold=-1.0,
            kind=ex.query.kind,
            event=ex.query.event,
            checks=rules,
            calibrated=True,
        )
        best.append(candidates[0].score)
        checked.append(not reply.answered)
    allowed = int(FALSE_REFUSALS * len(best)) - sum(checked)
    free = sorted(b for b, refused in zip(best, checked, strict=True) if not refused)
    return float(free[max(allowed, 0)]) if free else 0.0


def by_source(
    examples: list[Example], ranked: list[list[Scored]], refuse: Sequence[bool] | None, **kwargs
) -> dict[str, dict[str, float]]:
    """`outcomes` of the SQuAD questions and of the news questions apart."""
    figures = {}
    for source in ("squad", "news"):
        picked = [
            n for n, ex in enumerate(examples) if ex.group.startswith("news ") == (source == "news")
        ]
        if picked:
            figures[source] = outcomes(
                [examples[n] for n in picked],
                [ranked[n] for n in picked],
                refuse=None if refuse is None else [refuse[n] for n in picked],
                **kwargs,
            )
    return figures


def fit_refusal(
    examples: list[Example], ranked: list[list[Scored]], features: Sequence[str]
) -> tuple[Logistic, float, list[bool]]:
    """A model of whether a question is answered at all, from its ranked candidates.

    Returns:
        (the model fitted on every question, the threshold under which it refuses, set at
        `FALSE_REFUSALS` of answerable questions on cross-validated predictions, and which
        questions those predictions refuse).
    """
    rows = [
        question_features(r, ex.engine.index) if r else None
        for ex, r in zip(examples, ranked, strict=True)
    ]
    labels = [int(bool(ex.answers)) for ex in examples]
    folds = _folds(examples)
    predicted = np.ones(len(examples))
    for fold in range(FOLDS):
        train = [i for i, f in enumerate(folds) if f != fold and rows[i]]
        model = _fit(
            [rows[i] for i in train],
            [labels[i] for i in train],
            features,
            [examples[i].weight for i in train],
        )
        test = [i for i, f in enumerate(folds) if f == fold and rows[i]]
        predicted[test] = model.probabilities([rows[i] for i in test])
    threshold = threshold_for([p for p, y in zip(predicted, labels, strict=True) if y])
    kept = [i for i, r in enumerate(rows) if r]
    model = _fit(
        [rows[i] for i in kept],
        [labels[i] for i in kept],
        features,
        [examples[i].weight for i in kept],
    )
    return model, threshold, [bool(p < threshold) for p in predicted]


def _ranked(examples, probabilities, candidates: int, spans: str) -> list[list[Scored]]:
    return [
        ranked_by([ex.scored[i] for i in ex.read[:candidates]], ex.readings[:candidates], p, spans)
        for ex, p in zip(examples, probabilities, strict=True)
    ]


def fit(examples: list[Example]) -> tuple[Selector, dict[str, Any]]:
    """Make every choice on cross-validated predictions, then fit on all held-out questions."""
    rows = [s.features() for ex in examples for s in ex.scored]
    labels = [y for ex in examples for y in ex.labels]
    weights = [ex.weight for ex in examples for _ in ex.labels]
    first = _fit(rows, labels, CHEAP_FEATURES, weights)
    read_candidates(examples, first)
    answerable = [ex for ex in examples if ex.answers]
    recall = {
        n: round(
            sum(any(ex.labels[i] for i in ex.read[:n]) for ex in answerable) / len(answerable), 4
        )
        for n in CANDIDATE_CHOICES
    }
    print("first model, answer among the candidates read:", recall, flush=True)
    report: dict[str, Any] = {"recall_of_candidates": recall, "by_candidates": {}}
    best_n, best_hit = None, -1.0
    cv: dict[int, list[np.ndarray]] = {}
    for n in CANDIDATE_CHOICES:
        cv[n] = cross_validated(examples, n)
        ranked = _ranked(examples, cv[n], n, "patterns")
        best = [r[0].score for ex, r in zip(examples, ranked, strict=True) if ex.answers and r]
        figures = outcomes(
            examples, ranked, threshold=threshold_for(best), rules=False, calibrated=True
        )
        report["by_candidates"][n] = figures
        print(f"  read {n}: {figures}", flush=True)
        if figures["answer_hit@1"] > best_hit + 0.005:
            best_n, best_hit = n, figures["answer_hit@1"]
    choices: dict[str, Any] = {}
    for spans in SPAN_SOURCES:
        for rules in (False, True):
            ranked = _ranked(examples, cv[best_n], best_n, spans)
            threshold = threshold_with_rules(examples, ranked, rules=rules)
            choices[(spans, rules)] = (
                outcomes(examples, ranked, threshold=threshold, rules=rules, calibrated=True),
                threshold,
            )
            print(f"  spans={spans} rules={rules}: {choices[(spans, rules)][0]}", flush=True)
    spans = max(SPAN_SOURCES, key=lambda s: choices[(s, False)][0]["span_f1"])
    with_rules, without = choices[(spans, True)][0], choices[(spans, False)][0]
    # The hand checks stay only if they refuse more at no more than the allowed false refusals.
    rules = (
        with_rules["abstention_recall"] > without["abstention_recall"]
        and with_rules["false_refusal_rate"] <= 0.05
        and with_rules["answer_hit@1"] >= without["answer_hit@1"] - 0.005
    )
    threshold = choices[(spans, rules)][1]
    by_rules = [sorted(ex.scored, key=lambda s: -s.score) for ex in examples]
    report["rules"] = outcomes(
        examples, by_rules, threshold=RULES_THRESHOLD, rules=True, calibrated=False
    )
    cosine = [rank_by_cosine(ex.scored) for ex in examples]
    cosine_threshold = threshold_for(
        [r[0].score for ex, r in zip(examples, cosine, strict=True) if ex.answers]
    )
    report["cosine"] = outcomes(
        examples, cosine, threshold=cosine_threshold, rules=False, calibrated=False
    )
    plain = choices[(spans, rules)][0]
    ranked = _ranked(examples, cv[best_n], best_n, spans)
    kwargs = {"rules": rules, "calibrated": True}
    fitted = {}
    for name, features in (
        ("refusal_model", REFUSAL_FEATURES),
        ("refusal_model_with_agreement", REFUSAL_FEATURES + AGREEMENT_FEATURES),
    ):
        refusal, refusal_threshold, refuse = fit_refusal(examples, ranked, features)
        figures = outcomes(examples, ranked, threshold=-1.0, refuse=refuse, **kwargs)
        fitted[name] = (refusal, refusal_threshold, refuse, figures)
        report[name] = figures
        print(f"  {name}: {figures}", flush=True)
    # What the candidates say together is read only if it refuses more at the same aim.
    base, agreeing = fitted["refusal_model"], fitted["refusal_model_with_agreement"]
    agreement = (
        agreeing[3]["abstention_recall"] > base[3]["abstention_recall"] + 0.01
        and agreeing[3]["answer_hit@1"] >= base[3]["answer_hit@1"] - 0.005
    )
    refusal, refusal_threshold, refuse, with_refusal = agreeing if agreement else base
    # The refusal model is kept only if it refuses more at the same share of false refusals.
    use_refusal = (
        with_refusal["abstention_recall"] > plain["abstention_recall"] + 0.01
        and with_refusal["answer_hit@1"] >= plain["answer_hit@1"] - 0.005
    )
    report["chosen"] = {
        "candidates": best_n,
        "spans": spans,
        "rules": rules,
        "refusal_model": use_refusal,
        "agreement": use_refusal and agreement,
    }
    report["cross_validated"] = with_refusal if use_refusal else plain
    if use_refusal:
        report["cross_validated_by_source"] = by_source(
            examples, ranked, refuse, threshold=-1.0, **kwargs
        )
    else:
        report["cross_validated_by_source"] = by_source(
            examples, ranked, None, threshold=threshold, **kwargs
        )
    print("  chosen, by source:", json.dumps(report["cross_validated_by_source"]), flush=True)
    second_all, labels_all, weights_all = [], [], []
    for ex in examples:
        r, y, _ = second_rows(ex, best_n)
        second_all += r
        labels_all += y
        weights_all += [ex.weight] * len(y)
    second = _fit(second_all, labels_all, CHEAP_FEATURES + READER_FEATURES, weights_all)
    selector = Selector(
        first,
        second,
        best_n,
        round(threshold, 6),
        round(cosine_threshold, 6),
        spans,
        rules,
        refusal if use_refusal else None,
        round(refusal_threshold, 6) if use_refusal else 0.0,
        report,
    )
    return selector, report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.train_selector", description=__doc__)
    parser.add_argument("--output", type=Path, default=SELECTOR_FILE)
    parser.add_argument(
        "--limit", type=int, default=None, help="use only N questions (smoke tests)"
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--reader", type=Path, default=None, help="reader folder (default: shipped)"
    )
    parser.add_argument(
        "--removed-share",
        type=float,
        default=REMOVED_SHARE,
        help="share of paragraphs whose answer sentences are removed in a second copy of the"
        " articles, whose questions become unanswerable (0: native SQuAD 2.0 ones only)",
    )
    parser.add_argument(
        "--news",
        type=int,
        default=0,
        metavar="EVERY",
        help="also fit on every EVERY-th week of the realtimeqa-news train split, each week's"
        " questions asked of its pooled articles (indexed once under $RAG_NEWS_INDEX; 0: none)",
    )
    parser.add_argument(
        "--balance-news",
        action="store_true",
        help="weigh the news questions' rows so that news and SQuAD weigh the same in each fit",
    )
    args = parser.parse_args(argv)
    _, held = split_articles(read_squad(SQUAD_TRAIN), read_squad(SQUAD_DEV))
    articles, qas = convert({"data": held})
    article_of = {qa["id"]: qa["articles"][0] for qa in qas}
    shortened, removed = convert(
        {"data": held}, unanswerable_share=args.removed_share, seed=args.seed
    )
    # Only the questions whose answer sentences are gone: the rest are already in `qas`.
    removed = [qa for qa in removed if not qa["answers"] and not qa["articles"]]
    if args.limit:
        rng = random.Random(args.seed)
        qas = rng.sample(qas, min(args.limit, len(qas)))
        removed = rng.sample(removed, min(args.limit // 4, len(removed)))
    from embeddings import load_encoder, load_reader

    encoder = load_encoder()
    reader = load_reader(str(args.reader) if args.reader else None)
    examples = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, collection, questions in (
            ("held-out", articles, qas),
            ("answers-removed", shortened, removed),
        ):
            if not questions:
                continue
            path = Path(tmp) / f"{name}.jsonl"
            write_jsonl(path, collection)
            settings = Settings(collection=(path,), index_dir=Path(tmp) / name, answerer="rules")
            index, _ = open_index(settings, encoder)
            engine = Engine(index, encoder, answerer="rules", reader=reader)
            found = collect(engine, questions, article_of, removed=name == "answers-removed")
            print(
                f"{name}: {len(collection)} articles, {len(found)} questions"
                f" ({sum(not ex.answers for ex in found)} unanswerable),"
                f" {sum(len(ex.scored) for ex in found)} candidate sentences",
                flush=True,
            )
            examples += found
        if args.news:
            news = news_examples(args.news, reader, encoder)
            if args.balance_news and news:
                weight = len(examples) / len(news)
                news = [replace(ex, weight=weight) for ex in news]
            examples += news
        selector, report = fit(examples)
    about = {
        "fitted_on": "squad2/dev-half-v2.0.json, last 6 articles (never seen by the reader),"
        f" and a copy with the answer sentences of {args.removed_share:.0%} of paragraphs removed"
        + (f"; realtimeqa-news train, every {args.news} week(s), pooled" if args.news else ""),
        "articles": [a["title"] for a in articles],
        "questions": len(examples),
        "unanswerable": sum(not ex.answers for ex in examples),
        "answers_removed": sum(ex.removed for ex in examples),
        "news_questions": sum(ex.group.startswith("news ") for ex in examples),
        "news_balanced": args.balance_news,
        "false_refusals_aimed_at": FALSE_REFUSALS,
        **report,
    }
    selector = replace(selector, about=about)
    args.output.write_text(
        json.dumps(selector.to_json(), indent=2, default=str) + "\n", encoding="utf-8"
    )
    print(f"wrote {args.output}")
    print(json.dumps(report["chosen"]), json.dumps(report["cross_validated"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
