"""Builds and updates killed with SIGKILL at random points: `rag index` never loses the index
it replaces; `rag add`, `rag remove` and `POST /articles` leave the collection as it was before
or after, never a mix, answering every question as that collection does."""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from eval.benchmark import serving
from eval.harness import DEFAULT_QA, load_qa
from rag.build.indexing import build_lock
from rag.build.updates import current_collection
from rag.engine import Engine
from rag.index.disk import leftovers, sweep
from rag.index.store import load_index
from rag.settings import Settings
from tests.conftest import ROOT
from tests.test_admin import AUTH, PORT_ARTICLE, TOKEN
from tests.test_pages import RSS

pytestmark = pytest.mark.model


def _answers(engine: Engine, questions: list[str]) -> list[tuple]:
    out = []
    for question in questions:
        answer = engine.ask(question)
        out.append((answer.answered, [(s.citations, s.span) for s in answer.sentences]))
    return out


def _kill_builds(engine, index_dir, tmp_path, kills: int, questions: list[str], seed: int):
    directory = tmp_path / "index"
    shutil.copytree(index_dir, directory)
    expected = _answers(engine, questions)
    rng = random.Random(seed)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    finished = 0
    for _ in range(kills):
        build = subprocess.Popen(
            [sys.executable, "-m", "rag", "index", "--rebuild", "--index", str(directory)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.5, 6.0))  # from start-up to the end of a build
        if build.poll() is None:
            build.send_signal(signal.SIGKILL)
        else:
            finished += 1
        build.wait(timeout=60)
        loaded = Engine(load_index(directory), engine.encoder, reader=engine.reader)
        assert _answers(loaded, questions) == expected
    return finished


def test_three_killed_builds_leave_an_index_that_answers_as_before(engine, index_dir, tmp_path):
    questions = [q["question"] for q in load_qa(DEFAULT_QA)][::6]
    finished = _kill_builds(engine, index_dir, tmp_path, 3, questions, seed=1)
    assert finished < 3  # at least one build was cut short


@pytest.mark.slow
def test_twenty_killed_builds_leave_an_index_that_answers_the_eval_set(engine, index_dir, tmp_path):
    questions = [q["question"] for q in load_qa(DEFAULT_QA)]
    finished = _kill_builds(engine, index_dir, tmp_path, 20, questions, seed=2)
    assert finished < 10


REMOVED = "iranians-may-have-used-female-spy-to-honey-trap-dissident-living-in-france"


def _state(engine, directory, questions) -> tuple[frozenset[str], list[tuple]]:
    # The articles the index holds (and its record of changes agrees), and its answers.
    index = load_index(directory)
    recorded = current_collection(Settings(index_dir=directory))
    assert {a.id for a in recorded.articles} == set(index.articles)
    loaded = Engine(index, engine.encoder, reader=engine.reader)
    return frozenset(index.articles), _answers(loaded, questions)


def _update(kind: str, directory, tmp_path) -> subprocess.Popen:
    # Start the update; for `post`, a server that the request goes to (killed with it).
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if kind == "add":
        feed = tmp_path / "wire.rss"
        feed.write_bytes(RSS)
        args = ["add", str(feed), str(tmp_path / "port.jsonl")]
        (tmp_path / "port.jsonl").write_text(json.dumps(PORT_ARTICLE) + "\n", encoding="utf-8")
    else:
        args = ["remove", REMOVED]
    return subprocess.Popen(
        [sys.executable, "-m", "rag", *args, "--index", str(directory)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _post(port: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = json.dumps([PORT_ARTICLE, {**PORT_ARTICLE, "title": "Basra port", "url": None}])
    try:
        connection.request("POST", "/articles", body, {**AUTH, "Content-Type": "application/json"})
        connection.getresponse().read()
    except OSError:
        pass  # the server was killed under it


def _kill_updates(engine, index_dir, tmp_path, kind: str, kills: int, questions, seed: int):
    before_dir, directory = tmp_path / "before", tmp_path / "index"
    shutil.copytree(index_dir, before_dir)
    # The collection after the update, done once whole, and how long that took.
    shutil.copytree(before_dir, directory)
    started = time.monotonic()
    if kind == "post":
        with serving(directory) as (_, port, _):
            started = time.monotonic()
            _post(port)
    else:
        assert _update(kind, directory, tmp_path).wait(timeout=300) == 0
    took = time.monotonic() - started
    expected = {s[0]: s[1] for s in (_state(engine, d, questions) for d in (before_dir, directory))}
    assert len(expected) == 2  # the update changed the collection
    rng = random.Random(seed)
    seen = {name: 0 for name in expected}
    for _ in range(kills):
        shutil.rmtree(directory)
        shutil.copytree(before_dir, directory)
        if kind == "post":
            with serving(directory) as (server, port, _):
                threading.Thread(target=_post, args=(port,), daemon=True).start()
                time.sleep(rng.uniform(0.0, took))
                server.send_signal(signal.SIGKILL)
                server.wait(timeout=60)
        else:
            update = _update(kind, directory, tmp_path)
            time.sleep(rng.uniform(0.5, took))
            update.send_signal(signal.SIGKILL)
            update.wait(timeout=60)
        articles, answers = _state(engine, directory, questions)
        assert articles in expected, "the collection is a mix of before and after"
        assert answers == expected[articles]
        seen[articles] += 1
        # What the killed process left is swept by the next writer, with a log line.
        with build_lock(directory):
            sweep(directory)
        assert not leftovers(directory)
    return list(seen.values())


def test_a_killed_rag_add_leaves_the_collection_before_or_after(engine, index_dir, tmp_path):
    questions = [q["question"] for q in load_qa(DEFAULT_QA)][::6]
    _kill_updates(engine, index_dir, tmp_path, "add", 2, questions, seed=3)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["add", "remove", "post"])
def test_ten_killed_updates_leave_the_collection_before_or_after_answering_the_eval_set(
    engine, index_dir, tmp_path, kind, monkeypatch
):
    monkeypatch.setenv("RAG_ADMIN_TOKEN", TOKEN)
    questions = [q["question"] for q in load_qa(DEFAULT_QA)]
    before, after = _kill_updates(engine, index_dir, tmp_path, kind, 10, questions, seed=4)
    print(f"{kind}: 10 kills, {before} left the collection before, {after} after")
    assert before + after == 10
