"""Concurrent model runs shared: each caller gets its own rows, a lone caller never waits for a
batch, a batch is bounded, and one caller's failure fails that caller alone."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pytest

from embeddings import load_reader
from embeddings.batching import BatchedSession, Batcher, BatcherClosed, BatchTimeout
from embeddings.onnx import READER_FILE, ensure_export
from embeddings.reader import READER_DIR, Reader
from embeddings.sessions import open_session

BAD = 999  # a word-piece id the fake model fails on


@dataclass(frozen=True)
class _Node:
    name: str
    shape: list


class FakeSession:
    """A model whose outputs are computed from its inputs: a per-row sum and a per-word-piece
    copy. It fails on any batch holding the word piece BAD, and can hold its first run until
    released, so that callers queue behind it."""

    def __init__(self, *, hold: bool = False) -> None:
        self.calls: list[np.ndarray] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.started = threading.Event()
        self.hold = hold

    def get_inputs(self):
        return [_Node(n, ["batch", "tokens"]) for n in ("input_ids", "attention_mask")]

    def get_outputs(self):
        return [_Node("total", ["batch"]), _Node("pieces", ["batch", "tokens_dim_1"])]

    def run(self, names, inputs):
        ids = inputs["input_ids"]
        with self.lock:
            self.calls.append(ids.copy())
            first = len(self.calls) == 1
        if first and self.hold:
            self.started.set()
            assert self.release.wait(10)
        if (ids == BAD).any():
            raise ValueError("the fake model cannot read word piece 999")
        masked = ids * inputs["attention_mask"]
        return [masked.sum(axis=1).astype(np.float32), masked.astype(np.float32) * 2]


def _inputs(rows: int, width: int, base: int) -> dict[str, np.ndarray]:
    ids = np.arange(base, base + rows * width, dtype=np.int64).reshape(rows, width) % 500 + 1
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def _expected(inputs):
    ids = inputs["input_ids"]
    return [ids.sum(axis=1).astype(np.float32), ids.astype(np.float32) * 2]


def _session(fake: FakeSession, **options) -> BatchedSession:
    return BatchedSession(lambda threads: fake, batcher=Batcher(**options))


def _in_threads(work, count: int) -> list:
    results: list = [None] * count

    def one(i: int) -> None:
        try:
            results[i] = work(i)
        except Exception as e:  # noqa: BLE001 - the test looks at what each caller got
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def _queue_behind_a_held_run(session: BatchedSession, fake: FakeSession, calls, waiting: int):
    """Start a first call that the fake model holds, then `calls` more; release the model
    once `waiting` rows are queued; return every caller's result."""
    results: list = []
    first = threading.Thread(
        target=lambda: results.append(session.run(None, _inputs(1, 3, 0))), daemon=True
    )
    first.start()
    assert fake.started.wait(10)

    threading.Thread(
        target=_release_when_queued, args=(session, fake, waiting), daemon=True
    ).start()
    got = _in_threads(lambda i: session.run(None, calls[i]), len(calls))
    first.join(10)
    return got


def _release_when_queued(session: BatchedSession, model, rows: int) -> None:
    batcher = session.batcher
    for _ in range(1000):
        with batcher._lock:
            if sum(p.rows for p in batcher._queue) >= rows:
                break
        threading.Event().wait(0.005)
    model.release.set()


def test_a_lone_call_runs_at_once_alone_in_one_run():
    fake = FakeSession()
    session = _session(fake, workers=2)
    inputs = _inputs(1, 5, 0)

    out = session.run(None, inputs)

    assert len(fake.calls) == 1
    np.testing.assert_array_equal(fake.calls[0], inputs["input_ids"])
    for got, want in zip(out, _expected(inputs), strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_call_without_rows_runs_without_waiting():
    fake = FakeSession()
    session = _session(fake, workers=1, timeout=5)
    out = session.run(None, _inputs(0, 3, 0))
    assert [o.shape[0] for o in out] == [0, 0]


def test_a_lone_call_with_many_rows_is_split_over_the_idle_cores():
    fake = FakeSession()
    session = _session(fake, workers=2, min_part=4)
    inputs = _inputs(12, 7, 0)

    out = session.run(None, inputs)

    # The first worker took half; the other half went to the other worker (or, when the
    # first was done before the other woke, was shared again).
    assert len(fake.calls[0]) == 6 and sum(len(c) for c in fake.calls) == 12
    for got, want in zip(out, _expected(inputs), strict=True):
        np.testing.assert_array_equal(got, want)


def test_rows_run_in_order_of_length_each_part_cut_to_its_longest_row():
    fake = FakeSession()
    session = _session(fake, workers=2)
    inputs = _inputs(4, 9, 0)
    lengths = [9, 3, 8, 2]
    for row, n in enumerate(lengths):
        inputs["attention_mask"][row, n:] = 0
        inputs["input_ids"][row, n:] = 0

    out = session.run(None, inputs)

    # The first core took the two short rows, three word pieces wide; the rest ran each cut
    # to its own longest row.
    assert fake.calls[0].shape == (2, 3)
    assert sum(len(c) for c in fake.calls) == 4
    assert all((c[:, -1] != 0).any() for c in fake.calls)
    for got, want in zip(out, _expected(inputs), strict=True):
        np.testing.assert_array_equal(got, want)


def test_callers_arriving_while_the_model_runs_share_its_next_run_each_with_its_own_rows():
    fake = FakeSession(hold=True)
    session = _session(fake, workers=1, max_rows=100)
    # Different widths, so that rows are padded in the batch and cut back after.
    calls = [_inputs(2 + i % 3, 3 + i, 100 * i) for i in range(6)]

    got = _queue_behind_a_held_run(session, fake, calls, sum(len(c["input_ids"]) for c in calls))

    assert len(fake.calls) == 2  # the held run, then one run for all six callers
    for inputs, out in zip(calls, got, strict=True):
        for g, want in zip(out, _expected(inputs), strict=True):
            np.testing.assert_array_equal(g, want)


def test_a_batch_never_holds_more_rows_than_its_bound():
    fake = FakeSession(hold=True)
    session = _session(fake, workers=1, max_rows=10)
    calls = [_inputs(4, 3, 10 * i) for i in range(8)]

    got = _queue_behind_a_held_run(session, fake, calls, 32)

    assert all(len(c) <= 10 for c in fake.calls)
    assert max(len(c) for c in fake.calls) == 8  # two callers of 4 rows share a run
    assert all(not isinstance(g, Exception) for g in got)


def test_a_batch_holding_one_failing_call_fails_that_call_alone():
    fake = FakeSession(hold=True)
    session = _session(fake, workers=1, max_rows=100)
    calls = [_inputs(2, 4, 10 * i) for i in range(5)]
    calls[2]["input_ids"][1, 1] = BAD

    got = _queue_behind_a_held_run(session, fake, calls, 10)

    assert isinstance(got[2], ValueError) and "999" in str(got[2])
    for i in (0, 1, 3, 4):
        for g, want in zip(got[i], _expected(calls[i]), strict=True):
            np.testing.assert_array_equal(g, want)
    # The shared run failed, then each caller ran alone.
    assert [len(c) for c in fake.calls[1:]] == [10, 2, 2, 2, 2, 2]


def test_a_caller_does_not_wait_past_the_timeout_and_close_frees_the_queued():
    fake = FakeSession(hold=True)
    session = _session(fake, workers=1, timeout=0.2)
    first = threading.Thread(target=lambda: _swallow(session, _inputs(1, 2, 0)), daemon=True)
    first.start()
    assert fake.started.wait(10)

    with pytest.raises(BatchTimeout, match="did not run within"):
        session.run(None, _inputs(1, 2, 5))
    assert not session.batcher._queue  # the timed-out rows left the queue

    session.batcher.timeout = 10
    waiting: list = []
    late = threading.Thread(
        target=lambda: waiting.append(_caught(session, _inputs(1, 2, 7))), daemon=True
    )
    late.start()
    for _ in range(200):
        if session.batcher._queue:
            break
        threading.Event().wait(0.005)
    session.batcher.close()
    late.join(5)
    fake.release.set()
    assert isinstance(waiting[0], BatcherClosed)
    with pytest.raises(BatcherClosed):
        session.run(None, _inputs(1, 2, 9))


def _swallow(session, inputs) -> None:
    _caught(session, inputs)


def _caught(session, inputs):
    try:
        return session.run(None, inputs)
    except Exception as e:  # noqa: BLE001
        return e


def test_a_bad_bound_is_refused_with_what_to_change():
    with pytest.raises(ValueError, match="max_rows"):
        Batcher(max_rows=0)


class Gate:
    """A real session whose first run waits until released, so that callers queue."""

    def __init__(self, session) -> None:
        self.session = session
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls: list[np.ndarray] = []

    def get_inputs(self):
        return self.session.get_inputs()

    def get_outputs(self):
        return self.session.get_outputs()

    def run(self, names, inputs):
        self.calls.append(inputs["input_ids"])
        if len(self.calls) == 1:
            self.started.set()
            assert self.release.wait(10)
        return self.session.run(names, inputs)


@pytest.mark.model
def test_the_real_reader_gives_each_caller_what_it_reads_alone():
    alone = load_reader()
    gate = Gate(open_session(ensure_export() / READER_FILE, 1))
    session = BatchedSession(lambda threads: gate, batcher=Batcher(workers=1, max_rows=100))
    batched = Reader(READER_DIR, session=session)
    questions = ["Who shot him?", "Where did he die?", "When was the strike?", "Who won?"]
    sentences = [
        "Two gunmen on a motorcycle shot Hisham al-Hashimi outside his home in Baghdad.",
        "He died in hospital.",
        "The drone strike came on Friday near the airport, officials said.",
        "Nobody won.",
        "A much longer sentence that pads the others: the election was held on Sunday in"
        " Baghdad and the results were announced two days later by the commission.",
    ]
    # Each question with its own number of sentences: the rows differ in width.
    asked = [(questions[i % 4], sentences[: 2 + i % 4]) for i in range(8)]
    want = [alone.read(q, s) for q, s in asked]

    first = threading.Thread(target=lambda: batched.read("Who?", ["Him."]), daemon=True)
    first.start()
    assert gate.started.wait(10)
    threading.Thread(target=_release_when_queued, args=(session, gate, 28), daemon=True).start()
    got = _in_threads(lambda i: batched.read(*asked[i]), len(asked))
    first.join(10)

    assert max(len(c) for c in gate.calls) == 28  # the eight callers' rows in one run
    for readings, expected in zip(got, want, strict=True):
        assert not isinstance(readings, Exception), readings
        for g, w in zip(readings, expected, strict=True):
            assert g.probability == pytest.approx(w.probability, abs=1e-5)
            assert g.span == w.span


def test_a_forked_process_runs_through_workers_of_its_own():
    import multiprocessing

    session = _session(FakeSession(), workers=2)
    session.run(None, _inputs(2, 3, 0))  # the parent's workers are running
    _FORKED[:] = [session]
    with multiprocessing.get_context("fork").Pool(1) as pool:
        total = pool.apply_async(_sum_in_child).get(timeout=20)
    assert total == float(_expected(_inputs(1, 3, 0))[0][0])


_FORKED: list = []


def _sum_in_child() -> float:
    return float(_FORKED[0].run(None, _inputs(1, 3, 0))[0][0])
