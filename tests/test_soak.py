"""A real server on 127.0.0.1 under 32 concurrent clients: no error, bounded memory growth."""

from __future__ import annotations

import os
import statistics

import pytest

from eval.benchmark import load, peak_mb, serving
from eval.harness import DEFAULT_QA, load_qa
from eval.metrics import percentile

pytestmark = [pytest.mark.model, pytest.mark.soak]

CLIENTS = 32
SECONDS = float(os.environ.get("RAG_SOAK_SECONDS", "60"))
# Growth of the server's resident memory from after a warm-up to the end of the soak.
MAX_GROWTH_MB = 150


def test_32_clients_for_a_minute_get_no_error_and_memory_stays_bounded(engine, index_dir):
    questions = [q["question"] for q in load_qa(DEFAULT_QA)]
    with serving(index_dir) as (server, port, _):
        load(port, questions, CLIENTS, seconds=5)  # warm-up: threads, arenas, caches
        before = peak_mb(server.pid, "VmRSS")
        times, errors = load(port, questions, CLIENTS, seconds=SECONDS)
        after = peak_mb(server.pid, "VmRSS")
    print(
        f"soak: {len(times)} requests in {SECONDS:.0f} s ({len(times) / SECONDS:.1f}/s),"
        f" p50 {statistics.median(times):.0f} ms, p99 {percentile(times, 99):.0f} ms,"
        f" {errors} errors, RSS {before:.0f} -> {after:.0f} MB"
    )
    assert errors == 0
    assert len(times) >= SECONDS  # at least one answer a second got through
    assert after - before <= MAX_GROWTH_MB
