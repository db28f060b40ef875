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


def test_a_200_mb_body_is_refused_with_413_and_not_held_in_memory(engine, index_dir):
    import http.client

    block = b"x" * 2**20
    with serving(index_dir) as (server, port, _):
        before = peak_mb(server.pid, "VmRSS")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.putrequest("POST", "/ask")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Transfer-Encoding", "chunked")  # no length to refuse it by
        connection.endheaders()
        sent = 0
        try:
            for _ in range(200):
                connection.send(b"%x\r\n%s\r\n" % (len(block), block))
                sent += 1
            connection.send(b"0\r\n\r\n")
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection once the limit was passed
        response = connection.getresponse()
        assert response.status == 413
        assert b"KiB" in response.read()
        after = peak_mb(server.pid, "VmRSS")
    print(f"sent {sent} MB before the server closed; RSS {before:.0f} -> {after:.0f} MB")
    assert after - before < 32  # far under the 200 MB sent: the body was never held
