"""The int8 copies of the export: close to float, checked like the float files, chosen by name."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from embeddings import encoder_name, load_encoder, load_reader
from embeddings.errors import ExportError
from embeddings.onnx import (
    ENCODER_FILE,
    MANIFEST_FILE,
    READER_FILE,
    _checked_copy,
    ensure_export,
    ensure_quantized,
)
from embeddings.quantize import quantized_name
from embeddings.reader import READER_DIR
from rag.settings import Settings

pytestmark = pytest.mark.model

MODEL = "all-MiniLM-L6-v2"
QUESTION = "Who killed Hisham al-Hashimi?"
SENTENCES = [
    "Iran fired more than a dozen ballistic missiles at two bases in Iraq on 8 January.",
    "Hisham al-Hashimi was shot dead by two gunmen on a motorcycle outside his home.",
    "The talks in Baghdad were put off until the spring.",
    "He had advised the government on the Islamic State for years.",
]
CONTEXTS = ["", "", SENTENCES[1], SENTENCES[1]]


@pytest.fixture
def export_copy(tmp_path, monkeypatch):
    """A copy of this machine's float export in a models folder of the test's own."""
    directory = ensure_export()
    copy = tmp_path / directory.name
    copy.mkdir()
    for name in (ENCODER_FILE, READER_FILE, MANIFEST_FILE):
        shutil.copy2(directory / name, copy / name)
    monkeypatch.setenv("RAG_MODELS_DIR", str(tmp_path))
    return copy


def test_the_dynamic_int8_reader_reads_as_the_float_one():
    # Measured on 1,200 held-out SQuAD pairs: mean change 0.014, the same sentence first 95%.
    float_reader, int8 = load_reader(), load_reader(backend="onnx-int8")
    expected = [r.probability for r in float_reader.read(QUESTION, SENTENCES, CONTEXTS)]
    got = [r.probability for r in int8.read(QUESTION, SENTENCES, CONTEXTS)]
    assert np.mean(np.abs(np.subtract(got, expected))) < 0.05
    assert np.argmax(got) == np.argmax(expected) == 1
    assert got != expected  # the int8 copy runs, not the float file


def test_an_int8_encoder_is_recorded_as_another_model():
    # Mean cosine to float 0.993 (least 0.988): close, but another index.
    encoder = load_encoder(runtime="onnx-int8")
    assert encoder.name == encoder_name(MODEL, "onnx-int8") == f"{MODEL}+int8-dynamic"
    assert encoder_name(MODEL, "onnx") == MODEL
    vectors = encoder.encode(SENTENCES)
    floats = load_encoder().encode(SENTENCES)
    assert np.min(np.sum(vectors * floats, axis=1)) > 0.98


def test_an_altered_or_missing_int8_file_is_named_and_made_again(export_copy, caplog):
    path = ensure_quantized(READER_FILE, "dynamic")
    assert path == export_copy / quantized_name(READER_FILE, "dynamic")
    manifest = json.loads((export_copy / MANIFEST_FILE).read_text())
    assert manifest["files"][path.name]["sha256"]
    assert manifest["files"][path.name]["quantization"] == "dynamic"
    made = path.read_bytes()

    data = bytearray(made)
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ExportError, match=f"{path}.*truncated or altered.*quantized again"):
        _checked_copy(export_copy, READER_FILE, "dynamic", model=MODEL, reader_dir=READER_DIR)
    with caplog.at_level(logging.WARNING, logger="embeddings.onnx"):
        assert ensure_quantized(READER_FILE, "dynamic") == path
    assert str(path) in caplog.text
    assert path.read_bytes() == made

    path.unlink()
    with pytest.raises(ExportError, match=f"{path} is missing"):
        _checked_copy(export_copy, READER_FILE, "dynamic", model=MODEL, reader_dir=READER_DIR)
    assert ensure_quantized(READER_FILE, "dynamic").read_bytes() == made


def test_a_static_copy_calibrated_on_another_set_is_made_again(export_copy):
    name = quantized_name(ENCODER_FILE, "static")
    (export_copy / name).write_bytes(b"an older static copy")
    manifest = json.loads((export_copy / MANIFEST_FILE).read_text())
    from embeddings.files import sha256_file

    manifest["files"][name] = {
        "sha256": sha256_file(export_copy / name),
        "calibration_sha256": "another set",
    }
    (export_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match="calibrated on another set"):
        _checked_copy(export_copy, ENCODER_FILE, "static", model=MODEL, reader_dir=READER_DIR)


def test_a_quantization_that_fails_names_the_file_and_the_fix(export_copy, monkeypatch, tmp_path):
    import embeddings.quantize

    monkeypatch.setattr(embeddings.quantize, "CALIBRATION_FILE", tmp_path / "missing.json")
    target = export_copy / quantized_name(READER_FILE, "static")
    with pytest.raises(ExportError, match=f"{target}.*--write-calibration"):
        ensure_quantized(READER_FILE, "static")
    assert not target.exists()
    assert not list(export_copy.glob(".*.partial"))


def test_a_runtime_is_checked():
    with pytest.raises(ValueError, match="onnx-int8-static"):
        load_reader(backend="onnx-int4")
    with pytest.raises(ValueError, match="onnx-int8"):
        load_encoder(runtime="int8")
    with pytest.raises(ValueError, match="runtime 'int8'"):
        Settings(runtime="int8")
    with pytest.raises(ValueError, match="encoder runtime"):
        Settings(encoder_runtime="fast")
    assert Settings(runtime="onnx-int8").encoder_backend == "onnx"
    assert Settings(runtime="torch").encoder_backend == "torch"
    assert Settings(encoder_runtime="onnx-int8").encoder_backend == "onnx-int8"


def test_an_index_built_by_another_encoder_is_built_again(tmp_path):
    from rag.build.updates import open_index

    collection = tmp_path / "articles.jsonl"
    collection.write_text(
        json.dumps({"id": "a", "title": "Hashimi", "text": " ".join(SENTENCES)}) + "\n"
    )
    settings = Settings(collection=(collection,), index_dir=tmp_path / "index")
    index, update = open_index(settings, load_encoder())
    assert update.built and index.manifest["model"] == MODEL
    int8 = Settings(**{**settings.__dict__, "encoder_runtime": "onnx-int8"})
    index, update = open_index(int8, load_encoder(runtime=int8.encoder_backend))
    assert update.built and index.manifest["model"] == f"{MODEL}+int8-dynamic"
    index, update = open_index(int8, load_encoder(runtime=int8.encoder_backend))
    assert not update.built
