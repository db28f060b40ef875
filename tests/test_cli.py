"""The `rag` command's bad-input paths, run as a user would run them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rag.settings import DEFAULT_COLLECTION, Settings
from tests.conftest import ROOT


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rag", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_missing_path_exits_2_with_one_line():
    result = run("index", "/no/such/folder")
    assert result.returncode == 2
    assert result.stderr.strip() == "rag: error: No such file or folder: /no/such/folder"


def test_blank_question_is_refused():
    result = run("ask", "   ")
    assert result.returncode == 2 and "question is empty" in result.stderr


def test_overlong_question_is_refused():
    result = run("ask", "why " * 300)
    assert result.returncode == 2 and "limit is 1000" in result.stderr


def test_help_lists_the_commands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("index", "ask", "eval", "serve"):
        assert command in result.stdout


def test_passage_count_out_of_range_is_refused():
    for value in ("0", "-3", "51", "many"):
        result = run("ask", "-k", value, "Who shot Hisham al-Hashimi?")
        assert result.returncode == 2 and "from 1 to 50" in result.stderr


@pytest.mark.parametrize(("host", "warned"), [("127.0.0.1", False), ("0.0.0.0", True)])
def test_serve_says_when_it_listens_beyond_this_machine(monkeypatch, capsys, host, warned):
    import web.app

    monkeypatch.setattr(web.app.uvicorn, "run", lambda *a, **k: None)
    monkeypatch.setattr(web.app, "create_app", lambda settings, **options: None)
    web.app.serve(Settings(), host=host, port=8123)
    out = capsys.readouterr().out
    assert "Serving on http://" in out
    assert ("not only on this machine" in out) is warned


@pytest.mark.model
def test_output_piped_into_a_reader_that_stops_early_is_not_an_error(engine, index_dir):
    # `true` exits without reading: every write of the answer meets a closed pipe.
    done = subprocess.run(
        f"{sys.executable} -m rag ask 'Who killed Qassem Soleimani?' --index {index_dir} | true",
        shell=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_the_update_summary_names_what_changed_was_skipped_and_is_left_out(tmp_path):
    from rag.build.duplicates import Duplicate
    from rag.build.updates import Update
    from rag.cli.output import format_update

    update = Update(
        directory=tmp_path,
        built=True,
        articles=3,
        chunks=9,
        added=("port",),
        removed=("old",),
        unchanged=2,
        skipped=("news.jsonl:2: skipped, not valid JSON (Expecting ',' delimiter, column 27)",),
        duplicates=(Duplicate("a", "b", 0.85),),
        embedded_chunks=1,
        embedded_sentences=4,
        seconds=1.25,
        left_out=("old", "older"),
    )
    text = format_update(update, {"port": "Port reopens", "a": "Story", "b": "Copy"})
    assert text.splitlines() == [
        f"Index in {tmp_path}: 3 articles, 9 chunks.",
        "  Added 1: port (Port reopens)",
        "  Removed 1: old",
        "  Unchanged 2.",
        "  Left out 1, removed earlier with rag remove (rag add FILE brings one back): older",
        "  Skipped 1:",
        "    news.jsonl:2: skipped, not valid JSON (Expecting ',' delimiter, column 27)",
        "  Near-duplicates 1 (answers cite each copy once):",
        "    'Story' and 'Copy', 85% of the shorter one's text shared",
        "  Embedded 1 chunks and 4 sentences (8 chunks kept from the index it replaced) in 1.2 s.",
    ]


def test_eval_does_not_import_the_cli():
    # The CLI is the composition root: it reaches into eval, never the other way round (a
    # subprocess that runs `rag` is fine, it is a string, not an import).
    import ast

    for path in sorted((ROOT / "eval").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            assert not any(n == "rag.cli" or n.startswith("rag.cli.") for n in names), path


@pytest.mark.parametrize("given", ["none", "shipped", "other", "file", "missing"])
def test_serve_offers_the_eval_questions_only_for_the_shipped_collection(
    monkeypatch, tmp_path, given
):
    import web.app
    from eval.harness import DEFAULT_QA
    from rag.cli import main

    served = {}
    monkeypatch.setattr(web.app, "serve", lambda settings, **options: served.update(options))
    questions = tmp_path / "qa.jsonl"
    questions.write_text("", encoding="utf-8")
    args, expected = {
        "none": ([], DEFAULT_QA),
        "shipped": ([str(DEFAULT_COLLECTION)], DEFAULT_QA),
        "other": ([str(tmp_path)], None),
        "file": ([str(tmp_path), "--questions", str(questions)], questions),
        "missing": (["--questions", str(tmp_path / "none.jsonl")], None),
    }[given]
    status = main(["serve", "--port", "8123", *args])
    if given == "missing":
        assert status == 2 and not served
    else:
        assert status == 0
        assert served == {
            "host": "127.0.0.1",
            "port": 8123,
            "questions": expected,
            "batching": True,
        }


def test_serve_no_batching_runs_each_question_alone(monkeypatch):
    import web.app
    from rag.cli import main

    served = {}
    monkeypatch.setattr(web.app, "serve", lambda settings, **options: served.update(options))
    assert main(["serve", "--no-batching"]) == 0
    assert served["batching"] is False
