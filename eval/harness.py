"""The eval harness: run a Q&A set through the engine, score it, report, and gate on thresholds."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.metrics import check_thresholds, score_question, summarize
from eval.report import render_html
from rag.engine import Engine
from rag.service import open_engine
from rag.settings import ANSWERERS, METHODS, Settings

HERE = Path(__file__).parent
DEFAULT_QA = HERE / "qa.jsonl"
DEFAULT_THRESHOLDS = HERE / "thresholds.toml"
RETRIEVE_K = 10
# The news row `rag eval` adds: the test split (2026), every other week, as in the README.
NEWS_SPLIT, NEWS_EVERY = "test", 2
TABLE_METRICS = (
    "hit@1",
    "hit@5",
    "mrr@10",
    "answer_hit@1",
    "answer_hit@3",
    "span_f1",
    "citation_precision",
    "first_citation_gold",
    "abstention_recall",
    "false_refusal_rate",
    "latency_p50_ms",
    "latency_p95_ms",
)


def load_qa(path: Path) -> list[dict[str, Any]]:
    """Read a Q&A JSON Lines file, checking each record's shape.

    Args:
        path: The file.

    Returns:
        The records.

    Raises:
        ValueError: A line is not a record of the format; the message names the line.
    """
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{number}: not valid JSON ({e.msg})") from e
        missing = {"id", "question", "answers", "articles"} - set(record)
        if missing:
            raise ValueError(f"{path}:{number}: missing {', '.join(sorted(missing))}")
        record.setdefault("kind", "factoid" if record["answers"] else "unanswerable")
        records.append(record)
    return records


def run_question(
    engine: Engine, qa: dict[str, Any], method: str, answerer: str | None = None
) -> dict[str, Any]:
    """Ask one question and keep what is needed to score it again without the harness.

    Args:
        engine: The engine.
        qa: The Q&A record.
        method: Retrieval method.
        answerer: How answer sentences are chosen (see `rag.settings.ANSWERERS`); the
            engine's default when None.

    Returns:
        The result record (see `eval.metrics.score_question`).
    """
    started = time.perf_counter()
    answer = engine.ask(qa["question"], top_k=RETRIEVE_K, method=method, answerer=answerer)
    latency = (time.perf_counter() - started) * 1000
    return {
        "id": qa["id"],
        "question": qa["question"],
        "retrieved": list(dict.fromkeys(p.article.title for p in answer.passages)),
        "answered": answer.answered,
        "confidence": answer.confidence,
        "band": answer.band,
        "reason": answer.reason,
        "sentences": [
            {
                "text": s.text,
                "title": s.citations[0].title,
                "start": s.citations[0].start,
                "end": s.citations[0].end,
                "span": s.span,
                "also_in": [c.title for c in s.citations[1:]],
            }
            for s in answer.sentences
        ],
        "latency_ms": round(latency, 2),
    }


def evaluate(
    engine: Engine, qas: Sequence[dict[str, Any]], method: str, answerer: str | None = None
) -> dict[str, Any]:
    """Run every question with one retrieval method and answerer, and summarise.

    Args:
        engine: The engine.
        qas: Q&A records.
        method: Retrieval method.
        answerer: How answer sentences are chosen; the engine's default when None.

    Returns:
        `{"method", "answerer", "label", "metrics", "questions"}` where each question carries
        its result and scores.
    """
    answerer = answerer or engine.answerer
    # Warm caches so latency is steady-state.
    engine.ask(qas[0]["question"], method=method, answerer=answerer)
    results = [run_question(engine, qa, method, answerer) for qa in qas]
    metrics = summarize(qas, results)
    questions = [
        {**result, "expected": qa, "scores": score_question(qa, result)}
        for qa, result in zip(qas, results, strict=True)
    ]
    return {
        "method": method,
        "answerer": answerer,
        "label": f"{method}/{answerer}",
        "metrics": metrics,
        "questions": questions,
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) and value > 1.5 else f"{value:.3f}"


def format_table(runs: Sequence[dict[str, Any]]) -> str:
    """The metrics of one or more runs side by side, one row per metric."""
    width = max(len(m) for m in TABLE_METRICS) + 2
    column = max(10, *(len(r["label"]) + 2 for r in runs))
    lines = ["metric".ljust(width) + "".join(r["label"].rjust(column) for r in runs)]
    for metric in TABLE_METRICS:
        lines.append(
            metric.ljust(width)
            + "".join(_fmt(r["metrics"].get(metric)).rjust(column) for r in runs)
        )
    return "\n".join(lines)


def format_kinds(run: dict[str, Any]) -> str:
    """Per-kind answer hit@1 (or refusal rate) of a run."""
    lines = []
    for kind, m in sorted(run["metrics"]["per_kind"].items()):
        value = m.get("answer_hit@1", m.get("refusal_rate"))
        label = "answer_hit@1" if "answer_hit@1" in m else "refusal_rate"
        lines.append(f"  {kind:<14}{m['questions']:>4} questions  {label} {_fmt(value)}")
    return "\n".join(lines)


def run_from_args(args: argparse.Namespace, settings: Settings) -> int:
    """`rag eval`: evaluate, print a table, write reports, and check the thresholds.

    Args:
        args: Parsed arguments of `rag eval`.
        settings: The collection, index and defaults to evaluate, made from the arguments
            by the `rag` command.

    Returns:
        0 when every threshold holds, 1 when one fails.
    """
    if getattr(args, "news", None):
        return run_news(args)
    qa_path = Path(args.qa) if args.qa else DEFAULT_QA
    qas = load_qa(qa_path)
    thresholds_path = Path(args.thresholds) if args.thresholds else None
    if thresholds_path is None and qa_path.resolve() == DEFAULT_QA.resolve() and not args.paths:
        thresholds_path = DEFAULT_THRESHOLDS
    engine = open_engine(settings)
    for warning in engine.skipped:
        print(f"rag: warning: {warning}", file=sys.stderr)
    methods = list(METHODS) if args.retriever == "all" else [args.retriever or settings.retriever]
    chosen = getattr(args, "answerer", None) or "all"
    answerers = list(ANSWERERS) if chosen == "all" else [chosen]
    runs = [evaluate(engine, qas, method, answerer) for answerer in answerers for method in methods]
    main_run = next(
        (
            r
            for r in runs
            if r["method"] == settings.retriever and r["answerer"] == settings.answerer
        ),
        runs[0],
    )
    print(
        f"{len(qas)} questions from {qa_path}, collection {', '.join(map(str, settings.collection))}"
    )
    print(format_table(runs))
    print("per kind (" + main_run["label"] + "):")
    print(format_kinds(main_run))
    bands = main_run["metrics"]["per_band"]
    if bands:
        print("confidence bands (" + main_run["label"] + "): stated confidence, share that held")
        for band, m in bands.items():
            print(
                f"  {band:<10} {m['questions']:>4} questions  {m['stated']:.2f}  {m['right']:.2f}"
            )
    if len(runs) > 1:
        best = max(
            runs, key=lambda r: (r["metrics"]["answer_hit@1"] or 0, r["metrics"]["hit@5"] or 0)
        )
        margins = ", ".join(
            f"{(best['metrics']['answer_hit@1'] or 0) - (r['metrics']['answer_hit@1'] or 0):+.3f}"
            f" over {r['label']}"
            for r in runs
            if r is not best
        )
        print(f"best by answer_hit@1: {best['label']} ({margins})")
    news = _news_row(answerers) if qa_path.resolve() == DEFAULT_QA.resolve() else None
    failures: list[str] = []
    if thresholds_path:
        thresholds = tomllib.loads(thresholds_path.read_text(encoding="utf-8"))
        failures = check_thresholds(main_run["metrics"], thresholds)
    report = {
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "qa": str(qa_path),
        "collection": [str(p) for p in settings.collection],
        "index": engine.index.manifest,
        "default_retriever": main_run["method"],
        "default_answerer": main_run["answerer"],
        "metrics": main_run["metrics"],
        "runs": {r["label"]: r["metrics"] for r in runs},
        "thresholds": str(thresholds_path) if thresholds_path else None,
        "failures": failures,
        "questions": main_run["questions"],
        "news": news,
    }
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(
            json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8"
        )
    if args.html_path:
        Path(args.html_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.html_path).write_text(render_html(report), encoding="utf-8")
    for failure in failures:
        print(f"FAILED threshold: {failure}", file=sys.stderr)
    if thresholds_path:
        print("thresholds: " + ("all met" if not failures else f"{len(failures)} failed"))
    return 1 if failures else 0


def _news_row(answerers: Sequence[str]) -> dict[str, Any] | None:
    """The news test split's runs beside the default set's, where the news data set is here
    and its weeks are indexed; else a line saying how to get them."""
    from eval.news import NEWS_DIR, indexed

    if not NEWS_DIR.is_dir():
        return None
    if not indexed(NEWS_SPLIT, every=NEWS_EVERY):
        print(
            f"news: `rag eval --news {NEWS_SPLIT} --every {NEWS_EVERY}` indexes the {NEWS_SPLIT}"
            " split's weeks once (half an hour on two cores); then `rag eval` reports them here."
        )
        return None
    runs, _ = news_runs(NEWS_SPLIT, every=NEWS_EVERY, answerers=answerers)
    return {
        "split": NEWS_SPLIT,
        "every": NEWS_EVERY,
        "runs": {r["label"]: r["metrics"] for r in runs},
    }


def run_news(args: argparse.Namespace) -> int:
    """`rag eval --news SPLIT`: every week of a news split asked of its pooled articles.

    Args:
        args: Parsed arguments of `rag eval` (`news`, `every`, `answerer`, `retriever`,
            `json_path`).

    Returns:
        0.
    """
    chosen = getattr(args, "answerer", None) or "all"
    answerers = list(ANSWERERS) if chosen == "all" else [chosen]
    methods = list(METHODS) if args.retriever == "all" else [args.retriever or "hybrid"]
    runs, results = news_runs(args.news, every=args.every, answerers=answerers, methods=methods)
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        report = {
            "news": args.news,
            "every": args.every,
            "runs": {r["label"]: r["metrics"] for r in runs},
            "questions": results,
        }
        Path(args.json_path).write_text(json.dumps(report, ensure_ascii=False, indent=1), "utf-8")
    return 0


def news_runs(
    split: str, *, every: int, answerers: Sequence[str], methods: Sequence[str] = ("hybrid",)
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Ask every week's news questions of that week's pooled articles and print the table.

    Each week's articles are indexed once (see `eval.news.week_engines`); the questions of all
    weeks are scored together, for each answerer and retrieval method.

    Args:
        split: `train`, `dev` or `test`.
        every: Every n-th week only.
        answerers: The answerers to compare.
        methods: The retrieval methods to compare.

    Returns:
        (the runs, as `rag eval` reports them; each run's per-question results by label).
    """
    from eval.news import week_engines

    labels = [(m, a) for a in answerers for m in methods]
    qas: list[dict[str, Any]] = []
    results: dict[tuple[str, str], list[dict[str, Any]]] = {label: [] for label in labels}
    for week, engine, week_qas in week_engines(split, every=every):
        qas += week_qas
        for method, answerer in labels:
            results[(method, answerer)] += [
                run_question(engine, qa, method, answerer) for qa in week_qas
            ]
        print(f"{week}: {len(week_qas)} questions", file=sys.stderr, flush=True)
    runs = [
        {
            "label": f"{m}/{a}",
            "method": m,
            "answerer": a,
            "metrics": summarize(qas, results[(m, a)]),
        }
        for m, a in labels
    ]
    unanswerable = sum(not qa["answers"] for qa in qas)
    weeks = "every week" if every == 1 else f"every {every} weeks"
    print(
        f"{len(qas)} news questions ({unanswerable} unanswerable), {split} split, {weeks},"
        " each week's articles pooled"
    )
    print(format_table(runs))
    return runs, {f"{m}/{a}": results[(m, a)] for m, a in labels}
