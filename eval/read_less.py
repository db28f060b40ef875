"""How much the reader may skip: shorter contexts and fewer sentences, judged on dev data.

`python -m eval.read_less` asks the held-out SQuAD articles (the six of
`squad2/dev-half-v2.0.json` the reader never trained on, and a copy with the answer
sentences of a third of their paragraphs removed) and the news dev split's weeks through
`Engine.ask`, once per setting of the shipped selector's `context_tokens`, `sure_at` and
`sure_candidates` (with `--runtimes`, once per copy of the reader instead), and prints
answer hit@1, refusal and false refusals beside the word pieces the reader read and its
time, the shipped setting first. Nothing here is a test set.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from embeddings import load_reader
from eval.harness import evaluate
from eval.squad import convert, write_jsonl
from eval.train_reader import SQUAD_DEV, SQUAD_TRAIN, read_squad, split_articles
from eval.train_selector import REMOVED_SHARE
from rag.engine import Engine
from rag.service import open_engine
from rag.settings import Settings

SEED = 5
# (label, changes to the shipped selector)
VARIANTS: tuple[tuple[str, dict], ...] = (
    ("shipped", {}),
    ("context 32", {"context_tokens": 32}),
    ("context 16", {"context_tokens": 16}),
    ("context 8", {"context_tokens": 8}),
    ("no context", {"context_tokens": 0}),
    ("2 read from 0.9", {"sure_at": 0.9, "sure_candidates": 2}),
    ("2 read from 0.8", {"sure_at": 0.8, "sure_candidates": 2}),
    ("2 read from 0.7", {"sure_at": 0.7, "sure_candidates": 2}),
)
# The reader's int8 copies (`embeddings.quantize`) against the float one, as shipped otherwise.
RUNTIMES = (
    ("float", {}),
    ("int8 dynamic", {"runtime": "onnx-int8"}),
    ("int8 static", {"runtime": "onnx-int8-static"}),
)


class Counted:
    """A reader that counts the word pieces it reads and the time it takes."""

    def __init__(self, reader) -> None:
        self.reader = reader
        self.pieces = self.padded = self.calls = 0
        self.seconds = 0.0

    def read(self, question, sentences, contexts=None, *, context_tokens=None):
        started = time.perf_counter()
        readings = self.reader.read(question, sentences, contexts, context_tokens=context_tokens)
        self.seconds += time.perf_counter() - started
        shortened = contexts
        if contexts is not None and context_tokens is not None:
            shortened = self.reader.shortened(contexts, context_tokens)
        batch = self.reader.tokenize([question] * len(sentences), sentences, shortened)
        self.pieces += int(batch["attention_mask"].sum())
        self.padded += int(batch["attention_mask"].size)
        self.calls += 1
        return readings


def squad_sets(
    root: Path, encoder, *, limit: int | None = None
) -> Iterator[tuple[str, Engine, list[dict]]]:
    """The held-out SQuAD articles and their answers-removed copy, indexed once under `root`
    (`limit`: a seeded sample of that many questions from each)."""
    _, held = split_articles(read_squad(SQUAD_TRAIN), read_squad(SQUAD_DEV))
    articles, qas = convert({"data": held})
    shortened, removed = convert({"data": held}, unanswerable_share=REMOVED_SHARE, seed=13)
    removed = [qa for qa in removed if not qa["answers"] and not qa["articles"]]
    for name, collection, questions in (
        ("squad held-out", articles, qas),
        ("squad answers removed", shortened, removed),
    ):
        if limit and len(questions) > limit:
            questions = random.Random(SEED).sample(questions, limit)
        path = root / f"{name.replace(' ', '-')}.jsonl"
        if not path.exists():
            write_jsonl(path, collection)
        settings = Settings(collection=(path,), index_dir=root / path.stem)
        engine = open_engine(settings, encoder)
        encoder = engine.encoder
        yield name, engine, questions


def news_sets(
    every: int, encoder, *, weeks: int | None = None
) -> Iterator[tuple[str, Engine, list[dict]]]:
    """The news dev split's weeks (see `eval.news.week_engines`), the first `weeks` only."""
    from eval.news import week_engines

    found = week_engines("dev", every=every, encoder=encoder)
    for week, engine, qas in itertools.islice(found, weeks):
        yield f"news {week}", engine, qas


def run(sets: Sequence[tuple[str, Engine, list[dict]]], variants=VARIANTS) -> list[dict]:
    """Each variant's figures over each group of sets (`squad`, `news`)."""
    rows = []
    for label, changes in variants:
        per_group: dict[str, list] = {}
        counted = None
        changes = dict(changes)
        runtime = changes.pop("runtime", None)
        for name, engine, qas in sets:
            reader = engine.reader
            if counted is None:
                counted = Counted(load_reader(backend=runtime) if runtime else reader)
            shipped = engine.selector
            engine._selector, engine._reader = replace(shipped, **changes), counted
            try:
                report = evaluate(engine, qas, engine.method, "reader")
            finally:
                engine._selector, engine._reader = shipped, reader
            per_group.setdefault(name.split()[0], []).extend(report["questions"])
        cost = {
            "pieces": round(counted.pieces / max(counted.calls, 1), 1),
            "padded": round(counted.padded / max(counted.calls, 1), 1),
            "reader_ms": round(1000 * counted.seconds / max(counted.calls, 1), 1),
        }
        for group, questions in per_group.items():
            rows.append({"variant": label, "set": group, **_figures(questions), **cost})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _figures(questions: list[dict]) -> dict:
    answerable = [q for q in questions if q["expected"]["answers"]]
    unanswerable = [q for q in questions if not q["expected"]["answers"]]
    hits = sum(q["scores"].get("answer_hit@1") or 0 for q in answerable)
    return {
        "questions": len(questions),
        "answer_hit@1": round(hits / max(len(answerable), 1), 4),
        "refused": round(
            sum(not q["answered"] for q in unanswerable) / max(len(unanswerable), 1), 4
        ),
        "false_refusals": round(
            sum(not q["answered"] for q in answerable) / max(len(answerable), 1), 4
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.read_less", description=__doc__)
    parser.add_argument("--work", type=Path, required=True, help="where the SQuAD indexes go")
    parser.add_argument("--every", type=int, default=4, help="news dev: every n-th week")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-news", action="store_true")
    parser.add_argument("--no-squad", action="store_true")
    parser.add_argument(
        "--runtimes", action="store_true", help="compare the reader's int8 copies instead"
    )
    parser.add_argument("--weeks", type=int, default=None, help="news: the first N weeks only")
    parser.add_argument(
        "--limit", type=int, default=None, help="sample N questions of each SQuAD set"
    )
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    sets = [] if args.no_squad else list(squad_sets(args.work, None, limit=args.limit))
    if not args.no_news:
        encoder = sets[0][1].encoder if sets else None
        sets += list(news_sets(args.every, encoder, weeks=args.weeks))
    rows = run(sets, RUNTIMES if args.runtimes else VARIANTS)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
