"""Throughput of the batch build (`rag snapshot`): one process, and Ray with 1 and 2 nodes.

`python -m eval.raybench` writes XQuAD's 48 articles and SQuAD 2.0's 10-article training
sample (real text, about 800 chunks and 5,000 sentences) to a collection file, and builds its
snapshot three ways, each a fresh `rag snapshot` process: in one process (the model on its
own threads), then on a local Ray cluster (127.0.0.1 only) of 1 node and of 2 nodes with one
CPU each. Every build includes loading the model; a Ray build also includes reaching the
cluster and starting its workers. The snapshots must be the same bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from eval.cluster import LOOPBACK, local_cluster
from eval.distractors import TRAIN_SAMPLE, XQUAD

TIMEOUT = 1800


def write_collection(path: Path) -> Path:
    """The benchmark's articles as a JSON Lines collection."""
    from eval.squad import convert

    rows: dict[str, dict] = {}
    for source in (XQUAD, TRAIN_SAMPLE):
        articles, _ = convert(json.loads(source.read_text(encoding="utf-8")))
        rows.update((a["title"], a) for a in articles)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows.values()), encoding="utf-8")
    return path


def _build(collection: Path, out: Path, ray: str | None) -> dict:
    command = [sys.executable, "-m", "rag", "snapshot", str(out), str(collection)]
    done = subprocess.run(
        command + (["--ray", ray] if ray else []),
        env={**LOOPBACK, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def run() -> list[dict]:
    """Build three ways; one row each."""
    rows = []
    with tempfile.TemporaryDirectory() as work:
        base = Path(work)
        collection = write_collection(base / "articles.jsonl")
        runs = [("one process", None, 0)] + [(f"Ray, {n} node(s)", "cluster", n) for n in (1, 2)]
        digests = set()
        for label, ray, nodes in runs:
            out = base / f"snapshot-{nodes}"
            if ray:
                with local_cluster(nodes) as address:
                    manifest = _build(collection, out, address)
            else:
                manifest = _build(collection, out, None)
            counts, build = manifest["counts"], manifest["build"]
            texts = counts["chunks"] + counts["sentences"]
            digests.add(tuple(s["sha256"] for s in manifest["shards"]))
            rows.append(
                {
                    "run": label,
                    "nodes": build["nodes"],
                    "seconds": build["seconds"],
                    "texts": texts,
                    "texts_per_s": round(texts / build["seconds"], 1),
                }
            )
        for row in rows:
            row["vs_1_node"] = round(row["texts_per_s"] / rows[1]["texts_per_s"], 2)
        for row in rows:
            row["same_snapshot"] = len(digests) == 1
    return rows


def main() -> int:
    """Print the table."""
    rows = run()
    print("| build | nodes used | seconds | texts | texts/s | vs Ray 1 node | same bytes |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['run']} | {r['nodes']} | {r['seconds']:.1f} | {r['texts']:,} |"
            f" {r['texts_per_s']} | {r['vs_1_node']:.2f}x | {r['same_snapshot']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
