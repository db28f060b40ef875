"""Concurrent callers' model inputs run as one batch, each caller getting its own rows back."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embeddings.sessions import run_session

# A batch holds at most this many sequences (rows), unless one request alone has more. On two
# cores a batch of 48 reader pairs (four questions) took about as long per pair as one of 12,
# and larger ones made the first question in them wait longer than it gained (README, "Speed
# and memory").
MAX_ROWS = 48
# A caller waits at most this long for its batch; past it, it gets `BatchTimeout`.
TIMEOUT_SECONDS = 120.0
_PADS = {"input_ids": 0, "attention_mask": 0, "token_type_ids": 0}
_enabled = [True]


class BatchTimeout(TimeoutError):
    """A request waited longer than its batcher's timeout."""


class BatcherClosed(RuntimeError):
    """A request came to, or was waiting in, a batcher that was closed."""


def set_batching(enabled: bool) -> None:
    """Turn batching on or off for every batched session of this process.

    Off, each call runs the model alone, as it arrives (up to one run per core at once).

    Args:
        enabled: Whether concurrent calls share a model run.
    """
    _enabled[0] = bool(enabled)


def batching() -> bool:
    """Whether concurrent calls share a model run (see `set_batching`)."""
    return _enabled[0]


@dataclass(eq=False)
class _Request:
    item: Any
    rows: int
    woken: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    lead: bool = False
    result: Any = None
    error: BaseException | None = None


@dataclass(frozen=True)
class BatchStats:
    """What a batcher has run so far.

    Attributes:
        requests: Requests answered (with a result or an error).
        runs: Calls of the model, retries alone included.
        largest: The most requests one run held.
        retried: Requests run alone again after their batch failed.
    """

    requests: int
    runs: int
    largest: int
    retried: int


class Batcher:
    """A queue in front of a function that takes a list of inputs and gives one output each.

    Callers call the batcher from their own threads. When the model is idle a call runs at
    once, alone, in the caller's thread; calls that arrive while it runs wait, and the next
    run takes all of them (up to `max_rows` rows), so batches grow with the load and never
    make a lone caller wait. The run happens in one waiting caller's thread: there is no
    thread of the batcher's own to stop. A batch that fails is run again one request at a
    time, so that only the failing request fails.
    """

    def __init__(
        self,
        run: Callable[[list[Any]], Sequence[Any]],
        *,
        rows: Callable[[Any], int] = lambda item: 1,
        max_rows: int = MAX_ROWS,
        lanes: int = 1,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        """Args:
        run: The model: a list of inputs to a list of as many outputs, in order.
        rows: How many sequences an input holds (the batch bound counts these).
        max_rows: At most this many rows in one run, unless one input alone has more.
        lanes: Runs in flight at once.
        timeout: Seconds a caller waits for its output before `BatchTimeout`.
        """
        if max_rows < 1 or lanes < 1 or timeout <= 0:
            raise ValueError(
                f"A batcher needs max_rows >= 1, lanes >= 1 and timeout > 0; got {max_rows},"
                f" {lanes} and {timeout}."
            )
        self._run = run
        self._rows = rows
        self.max_rows = max_rows
        self.lanes = lanes
        self.timeout = timeout
        self._lock = threading.Lock()
        self._queue: deque[_Request] = deque()
        self._leading = 0
        self._closed = False
        self._requests = self._runs = self._largest = self._retried = 0

    def __call__(self, item: Any) -> Any:
        """Run one input, in a batch with whatever other inputs wait with it.

        Args:
            item: The input.

        Returns:
            Its output, as `run([item])[0]` would give it.

        Raises:
            BatchTimeout: It waited longer than the timeout.
            BatcherClosed: The batcher was closed.
            Exception: What running this input raised.
        """
        request = _Request(item, max(1, int(self._rows(item))))
        with self._lock:
            if self._closed:
                raise BatcherClosed("The model's batcher is closed: the server is stopping.")
            self._queue.append(request)
            if self._leading < self.lanes:
                self._leading += 1
                request.lead = True
        while True:
            if request.lead:
                self._lead(request)
            if request.done:
                if request.error is not None:
                    raise request.error
                return request.result
            if not request.woken.wait(self.timeout):
                with self._lock:
                    if not (request.done or request.lead):
                        if request in self._queue:
                            self._queue.remove(request)
                        raise BatchTimeout(
                            f"The model did not answer within {self.timeout:.0f} s: the server"
                            " is overloaded. Try again later."
                        )
            # The flags are set before the event, and read again before the next wait.
            request.woken.clear()

    def _lead(self, own: _Request) -> None:
        # Run batches from the head of the queue until this caller's request is done (or
        # is in another lane's run), then hand the lead to the request first in line, if any.
        try:
            while True:
                with self._lock:
                    if own.done or not self._queue:
                        break
                    batch = self._take()
                self._execute(batch)
        finally:
            with self._lock:
                own.lead = False
                heir = next((r for r in self._queue if not r.lead), None)
                if heir is not None and not self._closed:
                    heir.lead = True
                    heir.woken.set()
                else:
                    self._leading -= 1

    def _take(self) -> list[_Request]:
        batch = [self._queue.popleft()]
        rows = batch[0].rows
        while self._queue and rows + self._queue[0].rows <= self.max_rows:
            rows += self._queue[0].rows
            batch.append(self._queue.popleft())
        return batch

    def _execute(self, batch: list[_Request]) -> None:
        try:
            outputs = list(self._call([r.item for r in batch]))
            if len(outputs) != len(batch):
                raise RuntimeError(
                    f"The model gave {len(outputs)} outputs for {len(batch)} inputs."
                )
            for request, output in zip(batch, outputs, strict=True):
                request.result = output
        except Exception as e:
            if len(batch) == 1:
                batch[0].error = e
            else:
                with self._lock:
                    self._retried += len(batch)
                for request in batch:
                    try:
                        (request.result,) = self._call([request.item])
                    except Exception as alone:
                        request.error = alone
        except BaseException as e:
            for request in batch:
                request.error = e
            raise
        finally:
            with self._lock:
                self._requests += len(batch)
                self._largest = max(self._largest, len(batch))
                for request in batch:
                    request.done = True
                    request.woken.set()

    def _call(self, items: list[Any]) -> Sequence[Any]:
        with self._lock:
            self._runs += 1
        return self._run(items)

    def close(self) -> None:
        """Refuse new requests, and fail those still waiting (`BatcherClosed`); a run in
        progress finishes for the requests it holds."""
        with self._lock:
            self._closed = True
            while self._queue:
                request = self._queue.popleft()
                request.error = BatcherClosed(
                    "The model's batcher was closed: the server is stopping."
                )
                request.done = True
                request.woken.set()

    @property
    def stats(self) -> BatchStats:
        """What it has run so far."""
        with self._lock:
            return BatchStats(self._requests, self._runs, self._largest, self._retried)


class BatchedSession:
    """An ONNX Runtime session whose concurrent runs share one run of the model.

    Each caller's inputs (rows of word pieces, padded to its own width) are padded to the
    widest in the batch and stacked; each output is split back into the caller's rows, and
    an output with a word-piece axis is cut back to the caller's width. The attention mask
    hides the padding, so each caller gets its numbers as if it had run alone (to float
    rounding).
    """

    batched = True

    def __init__(self, session, *, max_rows: int = MAX_ROWS, lanes: int = 1) -> None:
        """Args:
        session: The ONNX Runtime session (or anything with `get_inputs`, `get_outputs` and
            `run`).
        max_rows: At most this many rows in one run (see `Batcher`).
        lanes: Batches run at once.
        """
        self.session = session
        self._names = [i.name for i in session.get_inputs()]
        # Outputs whose second axis is not fixed are word-piece axes, as wide as the input.
        self._per_token = [
            len(o.shape) > 1 and not isinstance(o.shape[1], int) for o in session.get_outputs()
        ]
        self.batcher = Batcher(
            self._run_many,
            rows=lambda inputs: len(inputs["input_ids"]),
            max_rows=max_rows,
            lanes=lanes,
        )

    def get_inputs(self):
        """The session's inputs."""
        return self.session.get_inputs()

    def get_outputs(self):
        """The session's outputs."""
        return self.session.get_outputs()

    def run(self, output_names, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Like `InferenceSession.run`, every output; batched with other callers' runs when
        batching is on (see `set_batching`)."""
        inputs = {name: inputs[name] for name in self._names}
        if not batching():
            return run_session(self.session, inputs)
        return self.batcher(inputs)

    def _run_many(self, many: list[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
        if len(many) == 1:
            return [run_session(self.session, many[0])]
        width = max(inputs["input_ids"].shape[1] for inputs in many)
        stacked = {
            name: np.concatenate([_pad(inputs[name], width, _PADS.get(name, 0)) for inputs in many])
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


def _pad(array: np.ndarray, width: int, value: int) -> np.ndarray:
    if array.shape[1] == width:
        return array
    padded = np.full((array.shape[0], width, *array.shape[2:]), value, dtype=array.dtype)
    padded[:, : array.shape[1]] = array
    return padded
