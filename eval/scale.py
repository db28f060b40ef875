"""Dense search at 10k to 1M vectors: build time, size, memory, recall, latency.

`python -m eval.scale --sizes 10000,100000,1000000 [--queries 200]` prints one table row a
size. Run it with OMP_NUM_THREADS=1 on a shared machine. Each size is built in one fresh
process and searched in another, so neither the build's peak nor another size's arrays count
in the resident memory reported. Latency is one query at a time after a warm-up; the flat
(exact) scan of the same rows is timed in the same process moments later, and the ratio of
the two is the figure to trust on a noisy machine.

The data (`--data`), never uniform on the sphere, which is far harder than text and unlike it:
- `questions` (the default): the 510 chunks of SQuAD 2.0's training sample, embedded, hidden
  among distractors, each the normalised mean of 7 real sentence embeddings; the queries are
  the sample's own questions. Real chunks among look-alikes are what an IVF index finds
  hardest: its lists are trained on the distractors.
- `seeds`: each vector is normalize(seed + SIGMA * noise), the seed drawn from the shipped
  index's real embeddings (~/.cache/rag/default), or from a seeded Gaussian mixture when there
  is none. The noise follows the covariance of the seeds plus an isotropic part, and has unit
  expected length. Queries perturb seeds held out of the indexed set. Easier: recall 0.998
  with 64 lists scanned at 1M, where `questions` gives 0.94.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from rag.index.vectors import EXACT_LIMIT, FILES, build_vectors, load_vectors, save_vectors

DIMENSION = 384
# A generated vector keeps cosine ~0.8 with its seed, so two from one seed meet at ~0.64: the
# median nearest-neighbour cosine among the shipped index's real sentences.
SIGMA = 0.75
# Share of the noise's energy spread evenly over all dimensions rather than along the seeds'.
ISOTROPIC = 0.3
HELD_OUT = 0.1
K = 10
BLOCK = 65_536
WARMUP = 20
# A flat scan of 1M rows takes ~100 ms: a few dozen queries time it well enough.
REFERENCE_QUERIES = 30
CHILD_SECONDS = 840


def seed_vectors(seed: int) -> tuple[np.ndarray, str]:
    """Real embeddings to grow synthetic ones from, or a Gaussian mixture when there are none.

    Args:
        seed: Seeds the mixture.

    Returns:
        Unit rows (float32) and where they came from.
    """
    base = Path.home() / ".cache" / "rag" / "default"
    parts = []
    try:
        generation = base / (base / "CURRENT").read_text().strip()
        if (generation / "sentences.npy").exists():
            parts.append(np.load(generation / "sentences.npy").astype(np.float32))
        if (generation / "chunks.faiss").exists():
            index = faiss.read_index(str(generation / "chunks.faiss"))
            inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
            parts.append(inner.reconstruct_n(0, inner.ntotal))
    except (OSError, RuntimeError):
        parts = []
    real = np.unique(np.concatenate(parts), axis=0) if parts else np.zeros((0, DIMENSION))
    if len(real) >= 50 and real.shape[1] == DIMENSION:
        return _unit(real), f"{len(real)} real embeddings from {generation}"
    return _mixture(np.random.default_rng(seed)), "a seeded Gaussian mixture (no shipped index)"


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _mixture(rng: np.random.Generator, count: int = 300) -> np.ndarray:
    # Like sentence embeddings: a shared mean direction (pairwise cosine ~0.25) and variance
    # falling off over directions.
    basis, _ = np.linalg.qr(rng.standard_normal((DIMENSION, DIMENSION)))
    spread = rng.standard_normal((count, DIMENSION)) / np.sqrt(np.arange(1, DIMENSION + 1))
    mean = rng.standard_normal(DIMENSION)
    return _unit(0.6 * mean / np.linalg.norm(mean) + _unit(spread @ basis.T))


def _noise(rng: np.random.Generator, centred: np.ndarray, rows: int) -> np.ndarray:
    shaped = rng.standard_normal((rows, len(centred)), dtype=np.float32) @ centred
    shaped /= np.sqrt((centred**2).sum())
    flat = rng.standard_normal((rows, DIMENSION), dtype=np.float32) / np.sqrt(DIMENSION)
    return np.sqrt(1 - ISOTROPIC) * shaped + np.sqrt(ISOTROPIC) * flat


def generate_from_questions(workdir: Path, rows: int, queries: int, seed: int) -> str:
    """Write real chunks hidden among distractors (float16) and real questions (float32).

    The first rows are the chunks of SQuAD 2.0's training sample, embedded; the rest are
    distractors, each the normalised mean of 7 real sentence embeddings drawn from the same
    articles and the shipped news (as `eval.distractors` makes them); the queries are the
    sample's own questions. Training data only: nothing of XQuAD or the eval sets.

    Returns:
        What the data is.
    """
    from embeddings import load_encoder
    from eval.distractors import TRAIN_SAMPLE, as_articles, pool
    from eval.squad import convert
    from rag.build.chunking import chunk_articles
    from rag.settings import ChunkSettings

    encoder = load_encoder()
    squad = json.loads(TRAIN_SAMPLE.read_text(encoding="utf-8"))
    articles, _ = convert(squad)
    chunks = chunk_articles(as_articles(articles), encoder.count_tokens, ChunkSettings())
    real = encoder.encode([c.text for c in chunks]).astype(np.float32)[:rows]
    sentences = encoder.encode(pool()).astype(np.float32)
    asked = [q["question"] for a in squad["data"] for p in a["paragraphs"] for q in p["qas"]]
    rng = np.random.default_rng(seed)
    picked = [asked[i] for i in rng.choice(len(asked), size=queries, replace=False)]
    np.save(workdir / "queries.npy", encoder.encode(picked).astype(np.float32))
    data = np.lib.format.open_memmap(workdir / "data.npy", "w+", np.float16, (rows, DIMENSION))
    data[: len(real)] = real
    for start in range(len(real), rows, BLOCK):
        count = min(BLOCK, rows - start)
        drawn = sentences[rng.integers(len(sentences), size=(count, 7))].mean(axis=1)
        data[start : start + count] = _unit(drawn)
    data.flush()
    return (
        f"{len(real)} real chunks of SQuAD's training sample among distractors (means of 7 of"
        f" {len(sentences):,} real sentence embeddings); {queries} of its questions as queries"
    )


def generate(workdir: Path, rows: int, queries: int, seed: int) -> str:
    """Write `rows` synthetic vectors (float16) and `queries` queries (float32) to `workdir`.

    Args:
        workdir: Where data.npy and queries.npy go.
        rows: How many vectors.
        queries: How many queries.
        seed: Seeds everything.

    Returns:
        Where the seeds came from.
    """
    rng = np.random.default_rng(seed)
    seeds, source = seed_vectors(seed)
    order = rng.permutation(len(seeds))
    held = max(1, round(HELD_OUT * len(seeds)))
    kept, query_seeds = seeds[order[held:]], seeds[order[:held]]
    centred = kept - kept.mean(axis=0)
    data = np.lib.format.open_memmap(workdir / "data.npy", "w+", np.float16, (rows, DIMENSION))
    for start in range(0, rows, BLOCK):
        count = min(BLOCK, rows - start)
        picked = kept[rng.integers(len(kept), size=count)]
        data[start : start + count] = _unit(picked + SIGMA * _noise(rng, centred, count))
    data.flush()
    picked = query_seeds[rng.integers(len(query_seeds), size=queries)]
    np.save(workdir / "queries.npy", _unit(picked + SIGMA * _noise(rng, centred, queries)))
    return source


def exact_top(data: np.ndarray, queries: np.ndarray, sizes: list[int]) -> dict[int, tuple]:
    """The true top K of every query among the first n rows, for each n in `sizes`.

    Args:
        data: The rows, read in blocks as float32.
        queries: float32 queries.
        sizes: Row counts, each at most len(data).

    Returns:
        For each size, the ids and scores (float32) of the top K, best first.
    """
    ids = np.zeros((len(queries), 0), dtype=np.int64)
    scores = np.zeros((len(queries), 0), dtype=np.float32)
    found = {}
    edges = sorted(set(range(BLOCK, max(sizes), BLOCK)) | set(sizes))
    for start, end in zip([0, *edges], edges, strict=False):
        block = queries @ np.asarray(data[start:end], dtype=np.float32).T
        ids = np.concatenate([ids, np.broadcast_to(np.arange(start, end), block.shape)], axis=1)
        scores = np.concatenate([scores, block], axis=1)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :K]
        ids, scores = np.take_along_axis(ids, best, 1), np.take_along_axis(scores, best, 1)
        if end in sizes:
            found[end] = (ids, scores)
    return found


def _memory() -> dict[str, float]:
    status = Path("/proc/self/status").read_text().splitlines()
    fields = dict(
        line.split(":", 1) for line in status if line.startswith(("VmRSS", "VmHWM", "RssAnon"))
    )
    return {key: int(value.split()[0]) / 1024 for key, value in fields.items()}


def _timed(search, queries: np.ndarray) -> tuple[list[float], list[np.ndarray]]:
    times, found = [], []
    for query in queries:
        started = time.perf_counter()
        ids, _ = search(query, K)
        times.append((time.perf_counter() - started) * 1000)
        found.append(ids)
    return times, found


def _build(workdir: Path, rows: int, out: Path, exact_limit: int, seed: int) -> dict:
    data = np.load(workdir / "data.npy", mmap_mode="r")[:rows]
    started = time.perf_counter()
    vectors = build_vectors(data, exact_limit=exact_limit, seed=seed)
    build_seconds = time.perf_counter() - started
    save_vectors(vectors, out)
    return {"build_seconds": build_seconds, "build_peak_mb": _memory()["VmHWM"]}


def _serve(workdir: Path, rows: int, out: Path) -> dict:
    queries = np.load(workdir / "queries.npy")
    base = _memory()["VmRSS"]
    vectors = load_vectors(out)
    warm = queries[np.random.default_rng(1).integers(len(queries), size=WARMUP)]
    search = vectors.search
    _timed(search, warm)
    times, found = _timed(search, queries)
    memory = _memory()
    mode = "exact" if vectors.exact else "IVF-SQ8+rerank"
    del vectors, search
    data = np.load(workdir / "data.npy", mmap_mode="r")[:rows]
    flat = faiss.IndexFlatIP(DIMENSION)
    for start in range(0, rows, BLOCK):
        flat.add(np.asarray(data[start : start + BLOCK], dtype=np.float32))

    def scan(query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = flat.search(query[None], k)
        return ids[0], scores[0]

    _timed(scan, queries[:3])
    reference, _ = _timed(scan, queries[:REFERENCE_QUERIES])
    return {
        "mode": mode,
        "rss_mb": memory["VmRSS"],
        "anon_mb": memory["RssAnon"],
        "base_mb": base,
        "times": times,
        "reference": reference,
        "found": [f.tolist() for f in found],
    }


def _child(args: list[str]) -> dict:
    command = [sys.executable, "-m", "eval.scale", *args]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=CHILD_SECONDS, check=False
    )
    if done.returncode:
        raise SystemExit(f"{' '.join(args[:2])} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def _recall(found: list[list[int]], truth: np.ndarray) -> float:
    hits = [len(set(f) & set(t.tolist())) / len(t) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits))


def _bytes_per_vector(out: Path, rows: int) -> float:
    return sum((out / name).stat().st_size for name in FILES if (out / name).exists()) / rows


def run(
    sizes: list[int], queries: int, exact_limit: int, seed: int, workdir: Path, kind: str
) -> None:
    """Generate the vectors once, then build and search each size in fresh processes.

    Args:
        sizes: Row counts; each is a prefix of the largest.
        queries: How many queries to time and score.
        exact_limit: Passed to `build_vectors`.
        seed: Seeds generation and builds.
        workdir: Where the vectors and indexes are written.
        kind: `questions` (see `generate_from_questions`) or `seeds` (see `generate`).
    """
    started = time.perf_counter()
    make = generate_from_questions if kind == "questions" else generate
    source = make(workdir, max(sizes), queries, seed)
    data = np.load(workdir / "data.npy", mmap_mode="r")
    truth = exact_top(data, np.load(workdir / "queries.npy"), sizes)
    print(
        f"data: {source}"
        + (f"; sigma {SIGMA}, isotropic share {ISOTROPIC}" if kind == "seeds" else "")
    )
    print(
        f"generated {max(sizes):,} rows and exact top {K} in {time.perf_counter() - started:.0f} s"
    )
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    header = (
        f"{'rows':>9} {'mode':>15} {'build s':>8} {'B/vec':>6} {'RSS MB':>7} {'anon MB':>7} "
        ""
        f"{'recall@10':>9} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'flat p50':>8} {'p50/flat':>8} {'top1 cos':>8}"
    )
    print(header)
    for rows in sizes:
        out = workdir / f"index-{rows}"
        common = ["--workdir", str(workdir), "--rows", str(rows), "--out", str(out)]
        built = _child(["--child", "build", *common, "--exact-limit", str(exact_limit)])
        served = _child(["--child", "serve", *common])
        ids, scores = truth[rows]
        p50, p95 = np.percentile(served["times"], [50, 95])
        flat = float(np.median(served["reference"]))
        print(
            f"{rows:>9,} {served['mode']:>15} {built['build_seconds']:>8.1f} "
            f"{_bytes_per_vector(out, rows):>6.0f} {served['rss_mb']:>7.0f} {served['anon_mb']:>7.0f} "
            f"{_recall(served['found'], ids):>9.3f} {p50:>7.2f} {p95:>7.2f} {flat:>8.2f} "
            f"{p50 / flat:>8.3f} {np.median(scores[:, 0]):>8.3f}",
            flush=True,
        )
    print(
        "RSS: after loading (float16 rows memory-mapped) and searching; anon: the part not "
        "backed by a file (the rest is mapped pages of the float16 rows, dropped under pressure); "
        f"a bare process with numpy and faiss is ~{served['base_mb']:.0f} MB. "
        "top1 cos: median cosine of a query's nearest row."
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m eval.scale", description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--exact-limit", type=int, default=EXACT_LIMIT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data",
        choices=["questions", "seeds"],
        default="questions",
        help="questions: real chunks and questions among distractors (needs ../shared/datasets);"
        " seeds: perturbed copies of the shipped index's vectors",
    )
    parser.add_argument("--workdir", type=Path, help="kept; a temporary directory otherwise")
    parser.add_argument("--child", choices=["build", "serve"], help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "build":
        print(json.dumps(_build(args.workdir, args.rows, args.out, args.exact_limit, args.seed)))
    elif args.child == "serve":
        print(json.dumps(_serve(args.workdir, args.rows, args.out)))
    else:
        sizes = sorted(int(s) for s in args.sizes.split(","))
        if args.workdir:
            args.workdir.mkdir(parents=True, exist_ok=True)
            run(sizes, args.queries, args.exact_limit, args.seed, args.workdir, args.data)
        else:
            with tempfile.TemporaryDirectory(prefix="rag-scale-") as workdir:
                run(sizes, args.queries, args.exact_limit, args.seed, Path(workdir), args.data)


if __name__ == "__main__":
    main()
