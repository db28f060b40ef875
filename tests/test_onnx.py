"""ONNX Runtime gives the torch models' numbers and answers, and the answer path needs no torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from embeddings import load_reader
from embeddings.errors import ExportError
from embeddings.onnx import ENCODER_FILE, MANIFEST_FILE, _checked, ensure_export
from embeddings.reader import READER_DIR, Reader
from eval.harness import DEFAULT_QA, load_qa
from tests.conftest import ROOT

pytestmark = pytest.mark.model

TEXTS = [
    "Hisham al-Hashimi was shot dead by two gunmen on a motorcycle outside his home.",
    "Who killed Qassem Soleimani?",
    "word " * 400,  # past the model's window: cut the same way in both
    "Iran fired more than a dozen ballistic missiles at two bases in Iraq on 8 January.",
]


@pytest.fixture(scope="module")
def torch_encoder():
    from embeddings import load_encoder

    return load_encoder(runtime="torch")


def test_onnx_vectors_match_sentence_transformers(real_encoder, torch_encoder):
    assert real_encoder.__class__.__name__ == "OnnxEncoder"
    assert np.abs(real_encoder.encode(TEXTS) - torch_encoder.encode(TEXTS)).max() < 1e-4
    vector, pieces, matrix = real_encoder.encode_query(TEXTS[0])
    t_vector, t_pieces, t_matrix = torch_encoder.encode_query(TEXTS[0])
    assert pieces == t_pieces
    assert np.abs(vector - t_vector).max() < 1e-4
    assert np.abs(matrix - t_matrix).max() < 1e-4
    vectors, tokens = real_encoder.encode_with_tokens(TEXTS)
    t_vectors, t_tokens = torch_encoder.encode_with_tokens(TEXTS)
    assert np.abs(vectors - t_vectors).max() < 1e-4
    assert [p for p, _ in tokens] == [p for p, _ in t_tokens]
    assert real_encoder.count_tokens(TEXTS) == torch_encoder.count_tokens(TEXTS)


def test_onnx_reader_reads_as_the_torch_one():
    onnx, torch = load_reader(), Reader(READER_DIR, backend="torch", threads=1)
    question = "Who killed Hisham al-Hashimi?"
    sentences = [TEXTS[0], TEXTS[3], TEXTS[2]]
    contexts = ["", TEXTS[0], TEXTS[2]]
    for a, b in zip(
        onnx.read(question, sentences, contexts),
        torch.read(question, sentences, contexts),
        strict=True,
    ):
        assert abs(a.probability - b.probability) < 1e-4
        assert a.span == b.span
        assert abs(a.span_probability - b.span_probability) < 1e-3


def test_eval_answers_are_the_same_in_both_runtimes(engine, index_dir):
    from rag.service import open_engine
    from rag.settings import Settings

    torch_engine = open_engine(Settings(index_dir=index_dir, runtime="torch"))
    for qa in load_qa(DEFAULT_QA):
        a, b = engine.ask(qa["question"]), torch_engine.ask(qa["question"])
        assert a.answered == b.answered, qa["question"]
        assert [(s.citations, s.span) for s in a.sentences] == [
            (s.citations, s.span) for s in b.sentences
        ], qa["question"]


def test_a_damaged_export_is_detected(tmp_path):
    directory = ensure_export()
    copy = tmp_path / "export"
    shutil.copytree(directory, copy)
    path = copy / ENCODER_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ExportError, match="truncated or altered"):
        _checked(copy, ENCODER_FILE, model="all-MiniLM-L6-v2", reader_dir=READER_DIR)
    manifest = json.loads((copy / MANIFEST_FILE).read_text())
    manifest["source"]["reader_sha256"] = "other"
    (copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match="other weights"):
        _checked(copy, ENCODER_FILE, model="all-MiniLM-L6-v2", reader_dir=READER_DIR)


def test_answering_from_a_saved_index_never_imports_torch(engine, index_dir):
    script = (
        "import sys\n"
        "from rag.cli import main\n"
        f"status = main(['ask', 'Who killed Qassem Soleimani?', '--index', {str(index_dir)!r},"
        " '--json'])\n"
        "assert status == 0, status\n"
        "heavy = sorted(m for m in ('torch', 'sentence_transformers', 'transformers')"
        " if m in sys.modules)\n"
        "print('LOADED', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env=_environment(),
    )
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout
    assert json.loads(done.stdout.split("LOADED")[0])["answered"] is True


def _environment() -> dict[str, str]:
    import os

    kept = ("PATH", "HOME", "XDG_CACHE_HOME", "RAG_MODELS_DIR", "VIRTUAL_ENV")
    return {"HF_HUB_OFFLINE": "1"} | {k: v for k, v in os.environ.items() if k in kept}
