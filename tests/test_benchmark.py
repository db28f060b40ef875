"""The benchmark's pieces that need no model: its collection and its table."""

from __future__ import annotations

import json

from eval.benchmark import CHARS_PER_CHUNK, Row, large_collection, table


def test_the_large_collection_reaches_its_size_with_unique_ids(tmp_path):
    path = large_collection(tmp_path, chunks=300)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert sum(len(r["text"]) for r in rows) >= 300 * CHARS_PER_CHUNK
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({r["title"] for r in rows}) == len(rows)


def test_the_table_shows_figures_ratios_and_units():
    rows = [
        Row("limit", 3.2, 4.5),
        Row("ask()", 1234.0, 2000.0, ratio=385.6, against="limit"),
        Row("indexing", 147.4, None, "s", 1.08, "raw encode"),
    ]
    lines = table(rows).splitlines()
    assert lines[0].startswith("| measure | p50 | p95 | ratio |")
    assert "| limit | 3.2 ms | 4.5 ms |" in lines[2]
    assert "1.23 s" in lines[3] and "385.60x" in lines[3]
    assert "147.4 s" in lines[4] and "1.08x" in lines[4]
