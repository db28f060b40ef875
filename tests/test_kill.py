"""`rag index` killed with SIGKILL at random points never loses the index it replaces."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from eval.harness import DEFAULT_QA, load_qa
from rag.engine import Engine
from rag.index.store import load_index
from tests.conftest import ROOT

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
