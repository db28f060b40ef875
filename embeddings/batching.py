"""Concurrent model runs shared: callers' rows run in one batch, or one caller's across cores."""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from embeddings.sessions import run_session

log = logging.getLogger(__name__)

# A run holds at most this many rows (sequences), unless one caller's part alone has more.
# Batching saves no arithmetic here: on two cores a reader pair took no less CPU in a batch of
# 96 than alone with its question's 11 others (98 against 88 ms of CPU per 12 pairs), so a
# run's time grows with its rows, and the bound only keeps a run short, that a question
# arriving behind it does not wait long: 12 is one question's candidate sentences at most.
MAX_ROWS = 12
# A caller's rows are split between idle cores into parts of at least this many rows (the
# reader reads 4 to 12 sentences a question; one row more in a run costs far more than a run).
MIN_PART = 1
# A caller waits at most this long for its rows; past it, it gets `BatchTimeout`.
TIMEOUT_SECONDS = 120.0
_enabled = [True]


class BatchTimeout(TimeoutError):
    """A caller waited longer than the batcher's timeout."""


class BatcherClosed(RuntimeError):
    """A caller came to, or was waiting in, a batcher that was closed."""


def set_batching(enabled: bool) -> None:
    """Turn batching on or off for the models this process loads from now on.

    On, each model runs with one thread per run, and a batcher with one worker per core
    runs what callers ask of it (see `Batcher`). Off, each call runs alone, as it arrives,
    with ONNX Runtime's own threads (up to one run per core at once).

    Args:
        enabled: Whether concurrent calls share the cores through a batcher.
    """
    _enabled[0] = bool(enabled)


def batching_enabled() -> bool:
    """Whether models loaded from now on are batched (see `set_batching`)."""
    return _enabled[0]


@dataclass(eq=False)
class _Call:
    # One caller's inputs, its outputs as parts of its rows come back, and how many rows
    # are still to come.
    session: BatchedSession
    inputs: dict[str, np.ndarray]
    rows: int
    left: int
    pieces: dict[int, list[np.ndarray]] = field(default_factory=dict)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


@dataclass(eq=False)
class _Part:
    call: _Call
    start: int
    stop: int

    @property
    def rows(self) -> int:
        return self.stop - self.start


class Batcher:
    """A queue of model inputs, and one worker thread per core that runs them.

    A caller's rows go into the queue and the caller waits. An idle worker takes at once
    its share of what is queued for one model: everything (up to `max_rows` rows) when the
    other workers are busy, so that callers who arrived while the model ran share its next
    run; and, when other workers are idle too, an equal part each, so that a lone caller's
    rows run on every core at once. Nothing waits for a batch to fill. A run that fails is
    run again one caller's part at a time, so that only the failing caller fails.
    """

    def __init__(
        self,
        *,
        workers: int | None = None,
        max_rows: int = MAX_ROWS,
        min_part: int = MIN_PART,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        """Args:
        workers: Runs at once (default: one per core).
        max_rows: At most this many rows in one run, unless one caller's part has more.
        min_part: A caller's rows are split into parts of at least this many rows.
        timeout: Seconds a caller waits for its rows before `BatchTimeout`.
        """
        workers = workers or max(os.cpu_count() or 1, 1)
        if workers < 1 or max_rows < 1 or min_part < 1 or timeout <= 0:
            raise ValueError(
                "A batcher needs workers, max_rows and min_part >= 1 and timeout > 0; got"
                f" {workers}, {max_rows}, {min_part} and {timeout}."
            )
        self.workers = workers
        self.max_rows = max_rows
        self.min_part = min_part
        self.timeout = timeout
        self._start()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._resting = threading.Condition(self._lock)
        self._queue: deque[_Part] = deque()
        self._idle = 0
        self._closed = False
        self._threads: list[threading.Thread] = []

    def _ensure_workers(self) -> None:
        # Workers start with the first call.
        if not self._threads:
            for n in range(self.workers):
                thread = threading.Thread(target=self._work, name=f"model-run-{n}", daemon=True)
                self._threads.append(thread)
                thread.start()
            # Started workers are waiting before the first rows are shared out among them.
            self._resting.wait_for(lambda: self._idle == self.workers, timeout=5)

    def run(self, session: BatchedSession, inputs: dict[str, np.ndarray]) -> list[list[np.ndarray]]:
        """Run a session's model on one caller's rows, with whatever else is queued.

        Args:
            session: The batched session.
            inputs: Its inputs, rows of word pieces padded to one width.

        Returns:
            The outputs of each part the rows were run in, in row order (see
            `BatchedSession.run_parts`).

        Raises:
            BatchTimeout: The rows waited longer than the timeout.
            BatcherClosed: The batcher was closed.
            Exception: What running these rows raised.
        """
        rows = len(inputs["input_ids"])
        call = _Call(session, inputs, rows, rows)
        if self._pid != os.getpid():
            # A process forked from this one has none of its threads, and maybe a lock
            # held by one of them: it starts afresh.
            self._start()
        with self._lock:
            if self._closed:
                raise BatcherClosed("The model's batcher is closed: the process is stopping.")
            self._ensure_workers()
            self._queue.append(_Part(call, 0, rows))
            self._ready.notify()
        if not call.done.wait(self.timeout):
            with self._lock:
                for part in [p for p in self._queue if p.call is call]:
                    self._queue.remove(part)
            raise BatchTimeout(
                f"The model did not run within {self.timeout:.0f} s: the process is overloaded."
                " Try again later."
            )
        if call.error is not None:
            raise call.error
        return [call.pieces[start] for start in sorted(call.pieces)]

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._idle += 1
                    self._resting.notify_all()
                    self._ready.wait()
                    self._idle -= 1
                if self._closed:
                    return
                parts = self._take()
                if self._queue and self._idle:
                    self._ready.notify()
            try:
                self._execute(parts)
            except BaseException:  # noqa: BLE001 - a worker must outlive any run
                log.exception("a model run failed outside its callers")

    def _take(self) -> list[_Part]:
        # This worker's share of the rows queued for the first queued model: all of them
        # (up to max_rows) when the other workers are busy, else an equal part per idle worker.
        session = self._queue[0].call.session
        mine = [p for p in self._queue if p.call.session is session]
        queued = sum(p.rows for p in mine)
        share = queued
        if queued >= 2 * self.min_part:
            share = max(self.min_part, math.ceil(queued / (self._idle + 1)))
        share = min(share, self.max_rows)
        taken: list[_Part] = []
        rows = 0
        for part in mine:
            if rows >= share:
                break
            want = share - rows
            if part.rows > want and taken:
                break
            if part.rows > want and part.rows - want >= self.min_part and want >= self.min_part:
                # Split it: this worker takes the first rows, the rest stays first in line.
                head = _Part(part.call, part.start, part.start + want)
                part.start += want
                taken.append(head)
                rows += want
                break
            self._queue.remove(part)
            taken.append(part)
            rows += part.rows
        return taken

    def _execute(self, parts: list[_Part]) -> None:
        session = parts[0].call.session
        try:
            outputs = session.run_parts([_rows(p) for p in parts])
            results: list[tuple[_Part, list[np.ndarray] | None, BaseException | None]] = [
                (p, o, None) for p, o in zip(parts, outputs, strict=True)
            ]
        except Exception as e:
            if len(parts) == 1:
                results = [(parts[0], None, e)]
            else:
                results = []
                for part in parts:
                    try:
                        (alone,) = session.run_parts([_rows(part)])
                        results.append((part, alone, None))
                    except Exception as failed:
                        results.append((part, None, failed))
        except BaseException as e:  # noqa: BLE001 - its callers hear of it, not wait for it
            results = [(part, None, e) for part in parts]
        with self._lock:
            for part, output, error in results:
                call = part.call
                if error is not None:
                    call.error = call.error or error
                else:
                    call.pieces[part.start] = output
                call.left -= part.rows
                if call.left == 0:
                    call.done.set()

    def close(self) -> None:
        """Refuse new calls, fail those still queued (`BatcherClosed`) and stop the workers;
        a run in progress finishes for its callers."""
        with self._lock:
            self._closed = True
            while self._queue:
                call = self._queue.popleft().call
                call.error = BatcherClosed(
                    "The model's batcher was closed: the process is stopping."
                )
                call.done.set()
            self._ready.notify_all()


def _rows(part: _Part) -> dict[str, np.ndarray]:
    inputs = part.call.inputs
    if part.start == 0 and part.stop == part.call.rows:
        return inputs
    return {name: array[part.start : part.stop] for name, array in inputs.items()}


@functools.cache
def shared_batcher() -> Batcher:
    """The batcher every batched model of this process runs through (one worker per core)."""
    return Batcher()


class BatchedSession:
    """An ONNX Runtime session whose runs go through a batcher (see `Batcher`).

    A caller's rows are put in order of length, so that a part of them run on one core is
    cut to its own longest row rather than padded to the caller's. Rows of several callers
    are padded to the widest and stacked; each output is split back into the callers' rows
    and order, and an output with a word-piece axis (its second axis not of fixed size) is
    given back the caller's width, zero past each part's width. The attention mask hides
    the padding, so each caller gets the numbers it would get alone, to float rounding, at
    every word piece it holds.

    With batching off when it is made (`set_batching`), it is the plain session, run as it
    is called with ONNX Runtime's own threads.
    """

    batched = True

    def __init__(
        self, open_session: Callable[[int | None], object], *, batcher: Batcher | None = None
    ) -> None:
        """Args:
        open_session: Opens the session with this many threads (None: the runtime's choice).
        batcher: The batcher to run through (default: `shared_batcher()`).
        """
        self.batcher = (batcher or shared_batcher()) if batching_enabled() else None
        # Batched, each run has one core: the batcher's workers share the cores out.
        self.session = open_session(1 if self.batcher else None)
        self._names = [i.name for i in self.session.get_inputs()]
        self._per_token = [
            len(o.shape) > 1 and not isinstance(o.shape[1], int) for o in self.session.get_outputs()
        ]

    def get_inputs(self):
        """The session's inputs."""
        return self.session.get_inputs()

    def get_outputs(self):
        """The session's outputs."""
        return self.session.get_outputs()

    def run(self, output_names, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Like `InferenceSession.run` with every output, through the batcher if any."""
        inputs = {name: inputs[name] for name in self._names}
        rows, width = inputs["input_ids"].shape
        if self.batcher is None or rows == 0:
            return run_session(self.session, inputs)
        order = None
        if rows > 1 and "attention_mask" in inputs:
            order = np.argsort(inputs["attention_mask"].sum(axis=1), kind="stable")
            inputs = {name: array[order] for name, array in inputs.items()}
        parts = self.batcher.run(self, inputs)
        outputs = []
        for n, token in enumerate(self._per_token):
            pieces = [part[n] for part in parts]
            if token:
                pieces = [_pad(piece, width) for piece in pieces]
            joined = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
            if order is not None:
                unsorted = np.empty_like(joined)
                unsorted[order] = joined
                joined = unsorted
            outputs.append(joined)
        return outputs

    def run_parts(self, many: list[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
        """Run several callers' rows as one batch, each cut to its longest row first.

        Args:
            many: Each caller's inputs.

        Returns:
            Each caller's outputs, in order; word-piece outputs as wide as its longest row.
        """
        many = [_trimmed(inputs) for inputs in many]
        if len(many) == 1:
            return [run_session(self.session, many[0])]
        width = max(inputs["input_ids"].shape[1] for inputs in many)
        stacked = {
            name: np.concatenate([_pad(inputs[name], width) for inputs in many])
            for name in self._names
        }
        outputs = run_session(self.session, stacked)
        split, first = [], 0
        for inputs in many:
            rows, own = inputs["input_ids"].shape
            split.append(
                [
                    out[first : first + rows, :own] if token else out[first : first + rows]
                    for out, token in zip(outputs, self._per_token, strict=True)
                ]
            )
            first += rows
        return split


def _trimmed(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    # Word pieces past every row's mask are padding alone: not run.
    if "attention_mask" not in inputs:
        return inputs
    held = np.flatnonzero(inputs["attention_mask"].any(axis=0))
    used = int(held[-1]) + 1 if held.size else 0
    if used in (0, inputs["attention_mask"].shape[1]):
        return inputs
    return {name: array[:, :used] for name, array in inputs.items()}


def _pad(array: np.ndarray, width: int) -> np.ndarray:
    # Word-piece id 0 is [PAD], and a mask or segment of 0 is padding too.
    if array.shape[1] == width:
        return array
    padded = np.zeros((array.shape[0], width, *array.shape[2:]), dtype=array.dtype)
    padded[:, : array.shape[1]] = array
    return padded
