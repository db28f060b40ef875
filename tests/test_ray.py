"""Indexing on a real two-node Ray cluster (loopback only) gives what one process gives."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from eval.cluster import LOOPBACK, local_cluster
from eval.harness import DEFAULT_QA, load_qa
from rag.build.indexing import index_from_snapshot
from rag.build.pipeline import build_snapshot
from rag.build.snapshot import read_snapshot
from rag.engine import Engine
from rag.index.store import load_index
from rag.ingest.files import load_collection
from rag.settings import DEFAULT_COLLECTION, ChunkSettings

pytestmark = [pytest.mark.model, pytest.mark.ray]


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(2) as address:
        yield address


@pytest.fixture(scope="module")
def builds(cluster, real_encoder, tmp_path_factory):
    """The shipped collection's snapshot made in this process, and its index made by
    `rag index --ray` on the cluster."""
    base = tmp_path_factory.mktemp("ray")
    build_snapshot(
        load_collection(),
        base / "local",
        model=real_encoder.name,
        chunking=ChunkSettings(),
        encoder=real_encoder,
    )
    done = subprocess.run(
        [sys.executable, "-m", "rag", "index", str(DEFAULT_COLLECTION)]
        + ["--index", str(base / "index"), "--ray", cluster],
        env={**LOOPBACK, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return base / "local", base / "index"


def test_the_cluster_build_used_both_nodes_and_wrote_the_same_bytes(builds):
    local, index_dir = builds
    on_ray = json.loads((index_dir / "snapshot" / "manifest.json").read_text())
    in_process = json.loads((local / "manifest.json").read_text())
    assert on_ray["build"]["runner"] == "ray" and on_ray["build"]["nodes"] == 2
    assert in_process["build"]["runner"] == "process"
    assert len(on_ray["shards"]) == len(in_process["shards"]) >= 6
    assert [s["sha256"] for s in on_ray["shards"]] == [s["sha256"] for s in in_process["shards"]]
    a, b = read_snapshot(local), read_snapshot(index_dir / "snapshot")
    assert np.array_equal(a.chunk_vectors, b.chunk_vectors)
    assert np.array_equal(a.sentence_vectors, b.sentence_vectors)


def _answer(engine: Engine, question: str) -> tuple:
    answer = engine.ask(question)
    return (
        answer.answered,
        tuple(
            (s.text, tuple((c.article_id, c.start, c.end) for c in s.citations))
            for s in answer.sentences
        ),
        tuple(p.chunk.id for p in answer.passages),
    )


def test_the_cluster_index_answers_the_eval_set_as_the_one_process_build(builds, real_encoder):
    local, index_dir = builds
    on_ray = Engine(load_index(index_dir), real_encoder)
    in_process = Engine(index_from_snapshot(local), real_encoder)
    questions = [item["question"] for item in load_qa(DEFAULT_QA)]
    assert len(questions) > 200
    differ = [q for q in questions if _answer(on_ray, q) != _answer(in_process, q)]
    assert differ == []
    answered = sum(on_ray.ask(q).answered for q in questions[:20])
    assert answered >= 10  # the index answers, not only agrees


def test_an_address_where_nothing_listens_is_a_clear_error(tmp_path):
    from eval.cluster import free_port

    done = subprocess.run(
        [sys.executable, "-m", "rag", "snapshot", str(tmp_path / "s")]
        + ["--ray", f"127.0.0.1:{free_port()}"],
        env={**LOOPBACK, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "No Ray cluster answers at 127.0.0.1:" in done.stderr and "ray start" in done.stderr
    assert not (tmp_path / "s").exists()
