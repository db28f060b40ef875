"""Int8 copies of the exported encoder and reader, made with ONNX Runtime's quantization tools."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from embeddings.files import sha256_file

# dynamic: int8 weights, activations quantized per run from their own range; static: int8
# weights and activations, their ranges fixed once on a calibration set.
Method = Literal["dynamic", "static"]
METHODS: tuple[Method, ...] = get_args(Method)
# Question/sentence pairs and sentences from SQuAD 2.0 training articles (never from the
# held-out ones), written by `python -m eval.quantized --write-calibration`.
CALIBRATION_FILE = Path(__file__).parent / "calibration.json"
CALIBRATION_BATCH = 12
_FLOAT = 1  # onnx.TensorProto.FLOAT: the type of tensors made by ONNX Runtime's fused operators


def quantized_name(name: str, method: Method) -> str:
    """The file name of a quantized copy: `reader.onnx` -> `reader.int8-dynamic.onnx`."""
    stem = name.removesuffix(".onnx")
    return f"{stem}.int8-{method}.onnx"


def calibration_digest() -> str:
    """The SHA-256 of the calibration set, recorded with each statically quantized file."""
    return sha256_file(CALIBRATION_FILE)


def calibration_set() -> dict:
    """The calibration set: `{"pairs": [{"question", "sentence", "context"}], "sentences"}`.

    Raises:
        ValueError: The file is missing or not valid; the message says how to write it again.
    """
    fix = "Reinstall the package, or write it again with: python -m eval.quantized --write-calibration"
    try:
        data = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
        if not data["pairs"] or not data["sentences"]:
            raise ValueError("it is empty")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"The calibration set {CALIBRATION_FILE} is not usable ({e}). {fix}"
        ) from e
    return data


def quantize(
    source: Path, target: Path, *, method: Method, batches: Sequence[dict[str, np.ndarray]] = ()
) -> None:
    """Write an int8 copy of an exported model.

    Dynamic: every matrix product's weights in int8, one scale per output channel (one scale
    per tensor moved the reader's probabilities twice as much). Static: the model's shapes are
    inferred first (`quant_pre_process`, which gives the fused attention operators' outputs a
    type), then the matrix products' weights and inputs are quantized with ranges measured on
    `batches`; the fused attention stays in float, as ONNX Runtime quantizes it dynamically only.

    Args:
        source: The float ONNX file.
        target: Where the copy goes.
        method: `dynamic` or `static`.
        batches: Model inputs for static calibration.

    Raises:
        ValueError: An unknown method, or static without batches.
    """
    # ONNX Runtime's quantizer logs every tensor it leaves in float to the root logger.
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(max(quiet, logging.ERROR))
    try:
        _quantize(source, target, method, batches)
    finally:
        logging.getLogger().setLevel(quiet)


def _quantize(source: Path, target: Path, method: Method, batches) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    options = {"DefaultTensorType": _FLOAT}
    if method == "dynamic":
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options=options,
        )
        return
    if method != "static":
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if not batches:
        raise ValueError("Static quantization needs calibration batches.")
    from onnxruntime.quantization import CalibrationDataReader
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self._left: Iterator[dict[str, np.ndarray]] = iter(batches)

        def get_next(self):
            return next(self._left, None)

    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        shaped = Path(work) / "shaped.onnx"
        quant_pre_process(str(source), str(shaped), skip_optimization=True)
        quantize_static(
            str(shaped),
            str(target),
            Batches(),
            quant_format=QuantFormat.QOperator,
            per_channel=False,
            op_types_to_quantize=["MatMul"],
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            extra_options=options,
        )


def batched(rows: Sequence, size: int = CALIBRATION_BATCH) -> Iterator[Sequence]:
    """Consecutive slices of `size` rows."""
    for first in range(0, len(rows), size):
        yield rows[first : first + size]
