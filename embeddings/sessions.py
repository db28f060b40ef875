"""ONNX Runtime sessions, and the limit of one model run per core in flight."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

# At most one model run per core is in flight: past that, runs only take memory and each
# other's cores (see README "Reliability").
_RUNS = threading.BoundedSemaphore(max(os.cpu_count() or 1, 1))


def run_session(session, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run a session on the model inputs it takes (a fused graph may drop one)."""
    inputs = {i.name: batch[i.name] for i in session.get_inputs()}
    if getattr(session, "batched", False):
        # A batched session waits for its turn outside the limit, and holds it while it runs.
        return session.run(None, inputs)
    with _RUNS:
        return session.run(None, inputs)


def open_session(path: Path, threads: int | None = None):
    """An ONNX Runtime session of a model file, on the CPU, without spinning threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    # ONNX Runtime's worker threads spin between operators by default, taking the cores
    # from the Python threads that prepare the next run and from other requests' runs:
    # without spinning, one question over HTTP took 67 ms instead of 102 ms, and eight
    # clients got 17.7 answers a second instead of 13.2 (two cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
