"""Choose the refusal threshold on the news dev split: `python -m eval.calibrate`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from eval.news import week_engines
from rag.answer.question import analyse
from rag.answer.selection import SELECTOR_FILE, Selector, load_selector
from rag.engine import CANDIDATE_PASSAGES, Engine

# The share of answerable dev questions that may be refused.
FALSE_REFUSALS = 0.04
# An answer told as `answered` (`rag.answer.bands`) quotes the answer this often on dev, over
# at least this many questions; the rest of what is let through is told as `probably`.
ANSWERED_SHARE = 0.75
MIN_BAND = 10


def readings(engine: Engine, qas: Sequence[dict[str, Any]], selector: Selector) -> list[dict]:
    """What the refusal step sees of each question, and whether its best sentence answers.

    Args:
        engine: An engine over the question's collection.
        qas: Q&A records (`answers` empty for an unanswerable question).
        selector: The selector whose refusal model is read.

    Returns:
        Per question: `answerable`, `refusal` (the refusal model's probability that the
        articles answer, or the best sentence's where the selector has no refusal model),
        `best` (the best sentence's probability) and `hit` (the best sentence holds an answer).
    """
    rows = []
    for qa in qas:
        query = analyse(qa["question"], engine.index.lexicon)
        passages = engine.retriever.retrieve(query, CANDIDATE_PASSAGES)
        ranked, answered = engine.read(query, engine.candidates(query, passages), selector)
        row = {"id": qa["id"], "answerable": bool(qa["answers"]), "hit": False, "best": 0.0}
        if ranked:
            best = ranked[0]
            text = engine.index.articles[best.article_id].text[best.start : best.end].casefold()
            row["hit"] = any(a.casefold() in text for a in qa["answers"])
            row["best"] = best.score
        row["refusal"] = row["best"] if answered is None else answered
        rows.append(row)
    return rows


def threshold_at(rows: Sequence[dict], share: float = FALSE_REFUSALS) -> float:
    """The refusal threshold under which `share` of the answerable questions fall."""
    kept = sorted(r["refusal"] for r in rows if r["answerable"])
    return kept[int(share * len(kept))] if kept else 0.0


def figures(rows: Sequence[dict], threshold: float) -> dict[str, float]:
    """Answer hit@1, false refusals and refusals of unanswerable questions at a threshold."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    refused = [r["refusal"] < threshold for r in rows]
    return {
        "questions": len(rows),
        "unanswerable": len(unanswerable),
        "answer_hit@1": round(
            sum(r["hit"] and r["refusal"] >= threshold for r in answerable) / len(answerable), 4
        ),
        "false_refusal_rate": round(
            sum(x for x, r in zip(refused, rows, strict=True) if r["answerable"]) / len(answerable),
            4,
        ),
        "abstention_recall": round(
            sum(x for x, r in zip(refused, rows, strict=True) if not r["answerable"])
            / max(len(unanswerable), 1),
            4,
        ),
    }


def answered_edge(rows: Sequence[dict], threshold: float) -> float:
    """The lowest best-sentence probability from which the answers let through at `threshold`
    quote the answer `ANSWERED_SHARE` of the time (1.0 when none does).

    Args:
        rows: `readings` of the dev questions.
        threshold: The refusal threshold.
    """
    let = sorted((r for r in rows if r["refusal"] >= threshold), key=lambda r: -r["best"])
    edge, right = 1.0, 0
    for n, row in enumerate(let, start=1):
        right += row["answerable"] and row["hit"]
        if n >= MIN_BAND and right >= ANSWERED_SHARE * n:
            edge = row["best"]
    return edge


def band_figures(rows: Sequence[dict], threshold: float, edge: float) -> dict[str, dict]:
    """How many dev questions fall in each band, and how often each band's first quote holds
    the answer (for `not sure`: how often the articles did not answer)."""
    bands: dict[str, list[bool]] = {"answered": [], "probably": [], "not sure": []}
    for r in rows:
        if r["refusal"] < threshold:
            bands["not sure"].append(not r["answerable"])
        else:
            band = "answered" if r["best"] >= edge else "probably"
            bands[band].append(r["answerable"] and r["hit"])
    return {
        b: {"questions": len(v), "right": round(sum(v) / len(v), 4) if v else None}
        for b, v in bands.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Read the dev weeks, choose the threshold, and write it into the selector."""
    parser = argparse.ArgumentParser(prog="python -m eval.calibrate", description=__doc__)
    parser.add_argument("--split", default="dev", choices=("dev",))
    parser.add_argument("--every", type=int, default=1, help="keep every n-th week")
    parser.add_argument("--selector", type=Path, default=SELECTOR_FILE)
    parser.add_argument("--output", type=Path, default=None, help="default: --selector")
    parser.add_argument("--rows", type=Path, default=None, help="also write the readings here")
    parser.add_argument(
        "--reader", type=Path, default=None, help="reader folder (default: shipped)"
    )
    parser.add_argument(
        "--keep-threshold",
        action="store_true",
        help="keep the selector's refusal threshold; choose only where `answered` starts",
    )
    args = parser.parse_args(argv)
    selector = load_selector(args.selector)
    reader = None
    if args.reader:
        from embeddings import load_reader

        reader = load_reader(str(args.reader))
    rows: list[dict] = []
    for week, engine, qas in week_engines(args.split, every=args.every):
        if reader is not None:
            engine = Engine(engine.index, engine.encoder, reader=reader)
        rows += readings(engine, qas, selector)
        print(f"{week}: {len(qas)} questions, {len(rows)} in all", flush=True)
    shipped = selector.refusal_threshold if selector.refusal else selector.threshold
    threshold = shipped if args.keep_threshold else threshold_at(rows)
    before = figures(rows, shipped)
    after = figures(rows, threshold)
    print("as shipped:", json.dumps(before))
    aim = "kept" if args.keep_threshold else f"at {FALSE_REFUSALS:.0%} false refusals"
    print(f"{aim} on {args.split}:", json.dumps(after))
    edge = answered_edge(rows, threshold)
    bands = band_figures(rows, threshold, edge)
    print(f"answered from {edge:.3f}:", json.dumps(bands))
    if args.rows:
        args.rows.write_text(json.dumps(rows), encoding="utf-8")
    dev = f"realtimeqa-news {args.split} split, every {args.every} week(s), {len(rows)} questions"
    about = {**selector.about, "news_dev": after, "news_dev_bands": bands}
    about["answered_at_chosen_on"] = f"{dev}, {ANSWERED_SHARE:.0%} of answers right"
    if not args.keep_threshold:
        about["refusal_threshold_chosen_on"] = f"{dev}, at {FALSE_REFUSALS:.0%} false refusals"
    field = "refusal_threshold" if selector.refusal else "threshold"
    calibrated = replace(
        selector, **{field: round(threshold, 6)}, answered_at=round(edge, 6), about=about
    )
    output = args.output or args.selector
    output.write_text(json.dumps(calibrated.to_json(), indent=2, default=str) + "\n", "utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
