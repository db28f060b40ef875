"""The int8 encoder and reader against the float ones: `python -m eval.quantized`.

For each ONNX runtime (`onnx`, the float baseline, always measured in the same run; then
`onnx-int8` and `onnx-int8-static`, see `embeddings.quantize`), it prints:

- encoder: p50 time to embed one question, and the cosine of its vectors to the float ones
  (held-out questions and sentences);
- reader: p50 time of `Reader.read` on 12 sentences, and over held-out (question, sentence)
  pairs the largest change of a probability and how often the same sentence comes first;
- answers, through `Engine.ask` with the shipped selector, on the SQuAD 2.0 articles the reader
  never trained on (`eval.train_reader.HELD_OUT_ARTICLES`): answer hit@1, refusal of the
  unanswerable and false refusals; then, on a copy with the answer sentences of a third of the
  paragraphs removed (as `python -m eval.squad --unanswerable 0.33` does), refusal of the
  questions whose answers are gone.

These are dev sets (they chose the reader's threshold), not test sets. `--write-calibration`
writes the static quantization's calibration set from SQuAD training articles.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eval.harness import evaluate
from eval.squad import convert, write_jsonl
from eval.train_reader import (
    SQUAD_DEV,
    SQUAD_TRAIN,
    pairs_for,
    read_squad,
    split_articles,
    squad_questions,
)

VARIANTS = ("onnx-int8", "onnx-int8-static")
REMOVED_SHARE = 0.33
SEED = 13
CALIBRATION_QUESTIONS = 64
CALIBRATION_PARAGRAPHS = 24
READ_BATCH = 12
READS = 100  # reads of 12 sentences: 1,200 pairs


def write_calibration(path: Path, *, seed: int = SEED) -> dict:
    """Write the calibration set from SQuAD training articles (never the held-out ones).

    Pairs are made as the reader trains on them (`eval.train_reader.pairs_for`: the answer
    sentence and the closest non-answers, with the sentence before); sentences for the encoder
    are questions, sentences and whole paragraphs, as it embeds them.

    Args:
        path: Where the JSON goes.
        seed: Seed of the choice of questions.

    Returns:
        The set written.
    """
    articles = read_squad(SQUAD_TRAIN)
    rng = random.Random(seed)
    questions = squad_questions(articles)
    chosen = rng.sample(questions, CALIBRATION_QUESTIONS)
    pairs = [
        {"question": p.question, "sentence": p.sentence, "context": p.context}
        for q in chosen
        for p in pairs_for(q, rng)
    ]
    paragraphs = [p["context"] for a in articles for p in a["paragraphs"]]
    sentences = [q.question for q in chosen] + [p["sentence"] for p in pairs[::2]]
    sentences += rng.sample(paragraphs, CALIBRATION_PARAGRAPHS)
    data = {
        "about": f"SQuAD 2.0 {SQUAD_TRAIN.name}, {CALIBRATION_QUESTIONS} questions, seed {seed};"
        " written by python -m eval.quantized --write-calibration",
        "license": "CC BY-SA 4.0 (SQuAD 2.0)",
        "pairs": pairs,
        "sentences": sentences,
    }
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return data


def _p50(calls) -> float:
    times = []
    for call in calls:
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def encoder_figures(runtime: str, questions: Sequence[str], texts: Sequence[str], base):
    """(p50 ms to embed one question, mean and least cosine to the float vectors, vectors)."""
    from embeddings import load_encoder

    encoder = load_encoder(runtime=runtime)
    encoder.encode_query(questions[0])
    p50 = _p50([lambda q=q: encoder.encode_query(q) for q in questions])
    vectors = encoder.encode(list(questions) + list(texts))
    cosines = (vectors * (vectors if base is None else base)).sum(axis=1)
    return p50, float(cosines.mean()), float(cosines.min()), vectors


def reader_figures(runtime: str, batches: Sequence[tuple[str, list[str], list[str]]], base):
    """(p50 ms of one read of 12 sentences, largest and mean probability change, how often
    the same sentence comes first, probabilities), against the float probabilities `base`."""
    from embeddings import load_reader

    reader = load_reader(backend=runtime)
    reader.read(*batches[0])
    times, probabilities = [], []
    for batch in batches:
        started = time.perf_counter()
        readings = reader.read(*batch)
        times.append((time.perf_counter() - started) * 1000)
        probabilities.append(np.array([r.probability for r in readings]))
    p50 = statistics.median(times)
    if base is None:
        return p50, 0.0, 0.0, 1.0, probabilities
    gaps = np.concatenate([np.abs(p - b) for p, b in zip(probabilities, base, strict=True)])
    same = np.mean([p.argmax() == b.argmax() for p, b in zip(probabilities, base, strict=True)])
    return p50, float(gaps.max()), float(gaps.mean()), float(same), probabilities


def answer_figures(runtime: str, copies, encoder) -> dict[str, dict]:
    """Each copy's metrics (`eval.metrics.summarize`) asked through the product's engine."""
    from rag.service import open_engine
    from rag.settings import Settings

    figures = {}
    for name, (settings, qas) in copies.items():
        engine = open_engine(Settings(**{**settings, "runtime": runtime}), encoder=encoder)
        run = evaluate(engine, qas, "hybrid")
        # Per question, for paired counts against float: (refused, answer hit@1 or None).
        outcomes = {
            q["id"]: (q["scores"]["refused"], q["scores"].get("answer_hit@1"))
            for q in run["questions"]
        }
        figures[name] = {**run["metrics"], "outcomes": outcomes}
    return figures


def _held_out() -> list[dict]:
    return split_articles(read_squad(SQUAD_TRAIN), read_squad(SQUAD_DEV))[1]


def _pairs(held: list[dict], count: int, seed: int) -> list[tuple[str, list[str], list[str]]]:
    # (question, 12 sentences of its paragraph and article, the sentence before each).
    rng = random.Random(seed)
    questions = squad_questions(held)
    batches = []
    for q in rng.sample(questions, count):
        sentences = list(q.sentences[:READ_BATCH])
        contexts = [""] + sentences[:-1]
        extra = list(q.others[: READ_BATCH - len(sentences)])
        batches.append((q.question, sentences + extra, contexts + [""] * len(extra)))
    return batches


def run(variants: Sequence[str], *, limit: int | None, answers: bool, seed: int) -> list[dict]:
    """Measure float and each variant in one run (see the module's docstring).

    Args:
        variants: Runtimes to compare with `onnx`.
        limit: Ask at most this many questions of each copy (None: all).
        answers: Whether to ask the questions (the slow part).
        seed: Seed of the samples.

    Returns:
        One dict of figures per runtime, float first.
    """
    from embeddings import load_encoder

    held = _held_out()
    batches = _pairs(held, READS, seed)
    questions = [q.question for q in random.Random(seed).sample(squad_questions(held), 200)]
    texts = [s for _, sentences, _ in batches[:30] for s in sentences]
    copies = {}
    work = tempfile.TemporaryDirectory()
    if answers:
        articles, qas = convert({"data": held})
        cut, cut_qas = convert({"data": held}, unanswerable_share=REMOVED_SHARE, seed=seed)
        # Of the cut copy, the questions whose answer sentences are gone (the others are
        # asked of the whole articles).
        cut_qas = [qa for qa in cut_qas if not qa["answers"] and not qa["articles"]]
        rng = random.Random(seed)
        for name, collection, asked in (("held-out", articles, qas), ("cut", cut, cut_qas)):
            if limit:
                asked = rng.sample(asked, min(limit, len(asked)))
            path = Path(work.name) / f"{name}.jsonl"
            write_jsonl(path, collection)
            settings = {"collection": (path,), "index_dir": Path(work.name) / name}
            copies[name] = (settings, asked)
    rows = []
    enc_base = read_base = None
    float_encoder = load_encoder()
    for runtime in ("onnx", *variants):
        embed_ms, cosine, least, vectors = encoder_figures(runtime, questions, texts, enc_base)
        read_ms, worst, mean_gap, same, probabilities = reader_figures(runtime, batches, read_base)
        enc_base = vectors if enc_base is None else enc_base
        read_base = probabilities if read_base is None else read_base
        row = {
            "runtime": runtime,
            "embed_ms": embed_ms,
            "cosine_mean": cosine,
            "cosine_min": least,
            "read12_ms": read_ms,
            "probability_max_change": worst,
            "probability_mean_change": mean_gap,
            "same_first": same,
        }
        if answers:
            row["answers"] = answer_figures(runtime, copies, float_encoder)
        rows.append(row)
        print(json.dumps(row), flush=True)
    work.cleanup()
    return rows


def format_rows(rows: Sequence[dict]) -> str:
    """The figures as a table, each variant beside the float baseline."""
    lines = []
    keys = [
        ("embed one question, p50 ms", lambda r: r["embed_ms"], "{:.2f}"),
        ("encoder cosine to float, mean", lambda r: r["cosine_mean"], "{:.4f}"),
        ("encoder cosine to float, least", lambda r: r["cosine_min"], "{:.4f}"),
        ("read 12 sentences, p50 ms", lambda r: r["read12_ms"], "{:.1f}"),
        ("reader probability, largest change", lambda r: r["probability_max_change"], "{:.3f}"),
        ("reader probability, mean change", lambda r: r["probability_mean_change"], "{:.4f}"),
        ("reader: same sentence first", lambda r: r["same_first"], "{:.3f}"),
    ]
    if "answers" in rows[0]:
        for copy, metric, label in (
            ("held-out", "answer_hit@1", "held-out SQuAD answer hit@1"),
            ("held-out", "abstention_recall", "held-out SQuAD refusal of unanswerable"),
            ("held-out", "false_refusal_rate", "held-out SQuAD false refusals"),
            ("cut", "abstention_recall", "cut copy refusal of answers removed"),
            ("held-out", "latency_p50_ms", "held-out ask() p50 ms"),
        ):
            keys.append((label, lambda r, c=copy, m=metric: r["answers"][c][m], "{:.3f}"))
    width = max(len(k[0]) for k in keys) + 2
    lines.append("measure".ljust(width) + "".join(r["runtime"].rjust(18) for r in rows))
    for label, get, form in keys:
        base = get(rows[0])
        cells = []
        for r in rows:
            value = get(r)
            cell = form.format(value)
            if r is not rows[0] and isinstance(value, float) and "answers" in r:
                cell += f" ({value - base:+.3f})" if "SQuAD" in label or "cut" in label else ""
            cells.append(cell.rjust(18))
        lines.append(label.ljust(width) + "".join(cells))
    if "answers" in rows[0]:
        for r in rows[1:]:
            lines.append(
                f"{r['runtime']} against float, question by question: {_paired(rows[0], r)}"
            )
        counts = rows[0]["answers"]
        lines.append(
            "questions: "
            + "; ".join(
                f"{c}: {m['answerable']} answerable, {m['unanswerable']} unanswerable"
                for c, m in counts.items()
            )
        )
    return "\n".join(lines)


def _paired(base: dict, row: dict) -> str:
    # Answerable questions whose first answer sentence became right or wrong, and
    # unanswerable ones newly refused or newly answered.
    gained = lost = refused = answered = 0
    for copy, metrics in row["answers"].items():
        before = base["answers"][copy]["outcomes"]
        for qid, (was_refused, hit) in metrics["outcomes"].items():
            old_refused, old_hit = before[qid]
            if hit is not None:
                gained += bool(hit) and not old_hit
                lost += bool(old_hit) and not hit
            else:
                refused += was_refused and not old_refused
                answered += old_refused and not was_refused
    return (
        f"answer hit@1 +{gained} -{lost} questions; unanswerable refused +{refused}"
        f" -{answered} questions"
    )


def main(argv: Sequence[str] | None = None) -> int:
    from embeddings.quantize import CALIBRATION_FILE

    parser = argparse.ArgumentParser(prog="python -m eval.quantized", description=__doc__)
    parser.add_argument(
        "--variant",
        choices=(*VARIANTS, "all"),
        default="all",
        help="the int8 runtime to compare with float (default: both)",
    )
    parser.add_argument("--limit", type=int, default=None, help="ask at most N questions a copy")
    parser.add_argument("--no-answers", action="store_true", help="skip asking the questions")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--write-calibration",
        action="store_true",
        help=f"write the static calibration set to {CALIBRATION_FILE} and stop",
    )
    args = parser.parse_args(argv)
    if args.write_calibration:
        data = write_calibration(CALIBRATION_FILE, seed=args.seed)
        print(f"wrote {len(data['pairs'])} pairs, {len(data['sentences'])} texts")
        return 0
    variants = VARIANTS if args.variant == "all" else (args.variant,)
    rows = run(variants, limit=args.limit, answers=not args.no_answers, seed=args.seed)
    print(format_rows(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
