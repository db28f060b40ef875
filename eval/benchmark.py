"""Speed and memory of the pipeline, as figures and as ratios to baselines measured in the same run.

Run `python -m eval.benchmark`. The machine may be shared and noisy: read the ratios, which
compare against work done in the same process moments apart, rather than the raw times.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from eval.harness import DEFAULT_QA, load_qa
from eval.metrics import percentile


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(calls: Sequence[Callable[[], object]]) -> list[float]:
    times = []
    for call in calls:
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def run(paths: Sequence[Path] | None, qa_path: Path, questions: int) -> dict[str, float]:
    """Measure build time, query latency and memory.

    Args:
        paths: The collection (the shipped one when None).
        qa_path: Questions to ask (their text only is used).
        questions: How many of them, at most.

    Returns:
        The figures, by name.
    """
    from embeddings import load_encoder
    from rag.engine import Engine
    from rag.index import build_index, save_index
    from rag.ingest import load_collection
    from rag.settings import Settings

    baseline_rss = _rss_mb()
    encoder = load_encoder()
    encoder.encode(["warm up"])
    model_rss = _rss_mb()
    collection = load_collection(paths)
    settings = Settings(collection=tuple(paths) if paths else Settings().collection)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        index = build_index(collection, encoder, settings.chunking)
        save_index(index, Path(tmp) / "index")
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        encoder.encode([c.text for c in index.chunks])
        encode_s = time.perf_counter() - started
        disk_mb = _dir_mb(Path(tmp) / "index")
    engine = Engine(index, encoder)
    asked = [q["question"] for q in load_qa(qa_path)[:questions]]
    engine.ask(asked[0])

    def uncached(call: Callable[[], object]) -> Callable[[], object]:
        # Every timed question pays for its own embedding, as a new question would.
        def run() -> object:
            engine.retriever._encode_question.cache_clear()
            return call()

        return run

    dense = _timed(
        [uncached(lambda q=q: engine.retriever.retrieve(q, 5, method="dense")) for q in asked]
    )
    bm25 = _timed([lambda q=q: engine.retriever.retrieve(q, 5, method="bm25") for q in asked])
    full = _timed([uncached(lambda q=q: engine.ask(q)) for q in asked])
    rules = _timed([uncached(lambda q=q: engine.ask(q, answerer="rules")) for q in asked])
    return {
        "articles": len(index.articles),
        "chunks": len(index.chunks),
        "sentences": len(index.sentences),
        "build_s": build_s,
        "build_over_encoding_chunks": build_s / encode_s,
        "index_disk_mb": disk_mb,
        "ask_p50_ms": statistics.median(full),
        "ask_p95_ms": percentile(full, 95),
        "ask_rules_p50_ms": statistics.median(rules),
        "ask_over_rules": statistics.median(full) / statistics.median(rules),
        "reader_share_of_ask": 1 - statistics.median(rules) / statistics.median(full),
        "dense_retrieve_p50_ms": statistics.median(dense),
        "bm25_retrieve_p50_ms": statistics.median(bm25),
        "ask_over_dense_retrieve": statistics.median(full) / statistics.median(dense),
        "model_rss_mb": model_rss - baseline_rss,
        "engine_rss_mb": _rss_mb() - model_rss,
        "engine_over_model_memory": (_rss_mb() - model_rss) / max(model_rss - baseline_rss, 1e-9),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the benchmark figures."""
    parser = argparse.ArgumentParser(prog="python -m eval.benchmark", description=__doc__)
    parser.add_argument("paths", nargs="*", type=Path, help="collection (default: shipped)")
    parser.add_argument("--qa", type=Path, default=DEFAULT_QA)
    parser.add_argument("--questions", type=int, default=100)
    args = parser.parse_args(argv)
    figures = run(args.paths or None, args.qa, args.questions)
    width = max(map(len, figures)) + 2
    for name, value in figures.items():
        shown = f"{value:,.0f}" if name in {"articles", "chunks", "sentences"} else f"{value:,.2f}"
        print(f"{name:<{width}}{shown:>12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
