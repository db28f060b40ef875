"""The Milvus backend against a real milvus-lite server on 127.0.0.1: it agrees with FAISS."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time

import pytest

from eval.cluster import free_port
from eval.harness import DEFAULT_QA, evaluate, load_qa
from rag.answer.question import analyse
from rag.build.updates import index_in_batch
from rag.engine import Engine
from rag.errors import MilvusError, RagError
from rag.settings import DEFAULT_COLLECTION, Settings

pytestmark = [pytest.mark.model, pytest.mark.milvus]


@pytest.fixture(scope="module")
def milvus(tmp_path_factory):
    """A milvus-lite server on a free loopback port, stopped after the module."""
    from pymilvus import MilvusClient

    port = free_port()
    data = tmp_path_factory.mktemp("milvus")
    server = subprocess.Popen(
        [sys.executable, "-m", "milvus_lite", "server", "--host", "127.0.0.1"]
        + ["--port", str(port), "--data-dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                MilvusClient(uri=uri, timeout=2).list_collections()
                break
            except Exception:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"milvus-lite did not start: {server.stderr.read().decode()[-500:]}"
                    ) from None
                time.sleep(0.5)
        yield uri
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=30)
        if server.poll() is None:
            server.kill()


@pytest.fixture(scope="module")
def engines(milvus, real_encoder, tmp_path_factory):
    """The same snapshot-built index searched by FAISS here and by the Milvus server."""
    settings = Settings(
        collection=(DEFAULT_COLLECTION,),
        index_dir=tmp_path_factory.mktemp("index"),
        milvus=milvus,
    )
    index, _ = index_in_batch(settings, milvus=milvus)
    return Engine(index, real_encoder), Engine(index, real_encoder, milvus=milvus)


def test_top_ten_passages_agree_with_faiss(engines):
    here, server = engines
    questions = [qa["question"] for qa in load_qa(DEFAULT_QA)]
    for method in ("dense", "bm25", "hybrid"):
        shared = total = 0
        for question in questions:
            a = {
                p.chunk.id
                for p in here.retriever.retrieve(
                    analyse(question, here.retriever.lexicon), 10, method=method
                )
            }
            b = {
                p.chunk.id
                for p in server.retriever.retrieve(
                    analyse(question, server.retriever.lexicon), 10, method=method
                )
            }
            shared, total = shared + len(a & b), total + max(len(a), len(b))
        assert total > 200 * 5
        assert shared / total >= 0.95, method


def test_answers_match_faiss_on_the_eval_set(engines):
    here, server = engines
    qas = load_qa(DEFAULT_QA)
    a = evaluate(here, qas, "hybrid")
    b = evaluate(server, qas, "hybrid")
    assert abs(a["metrics"]["answer_hit@1"] - b["metrics"]["answer_hit@1"]) <= 0.01
    same = sum(
        [s["text"] for s in x["sentences"]] == [s["text"] for s in y["sentences"]]
        for x, y in zip(a["questions"], b["questions"], strict=True)
    )
    assert same / len(qas) >= 0.95


def test_filters_reach_the_server(engines):
    here, server = engines
    article = next(iter(server.index.articles))
    for engine in (here, server):
        passages = engine.retriever.retrieve(
            analyse("Iraq", engine.retriever.lexicon), 5, articles={article}
        )
        assert passages and {p.article.id for p in passages} == {article}
    assert (
        server.retriever.retrieve(analyse("Iraq", server.retriever.lexicon), 5, articles=set())
        == []
    )


def test_a_server_without_the_index_or_no_server_is_a_clear_error(engines, real_encoder):
    here, _ = engines
    with pytest.raises(RagError, match="rag index --milvus"):
        Engine(
            here.index.__class__(**{**here.index.__dict__, "manifest": {}}),
            real_encoder,
            milvus="http://127.0.0.1:1",
        )
    with pytest.raises(RagError, match="No Milvus server answers"):
        Engine(here.index, real_encoder, milvus=f"http://127.0.0.1:{free_port()}")


def test_a_server_that_fails_mid_search_is_a_clear_error(engines, monkeypatch):
    from pymilvus.exceptions import MilvusException

    _, server = engines
    backend = server.retriever.backend

    def down(*args, **kwargs):
        raise MilvusException(message="connection refused")

    monkeypatch.setattr(backend.client, "hybrid_search", down)
    with pytest.raises(MilvusError, match="could not search .connection refused.; is it running"):
        server.ask("Who shot Hisham al-Hashimi?")
