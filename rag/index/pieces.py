"""Sentences' word-piece vectors kept compact on disk: 8-bit or product-quantized codes, memory-mapped."""

from __future__ import annotations

import functools
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.index.tables import read_npy_header

# The files of compact pieces: the codes (one row per word piece), where each sentence's rows
# start, and the product quantizer's centroids (absent for the 8-bit form).
CODES_FILE = "piece_codes.npy"
OFFSETS_FILE = "piece_offsets.npy"
CODEBOOK_FILE = "piece_codebook.npy"
# How pieces are kept past `rag.index.store.PIECES_LIMIT` chunks: 48 codes of 8 bits a piece,
# each naming one of 256 centroids for 8 of the 384 dimensions (chosen with `eval.pieces`).
DEFAULT_FORM = "pq48"
CENTROIDS = 256
# Pieces the quantizer's k-means learns from: about 100 per centroid.
TRAIN_PIECES = 25_600
# An .npy header of fixed size, so that an array written by appending gets its final shape
# written over the first one without moving its rows.
HEADER_BYTES = 128


def forms(dimension: int) -> tuple[str, ...]:
    """The compact forms for vectors of `dimension`: `int8`, and `pqM` for the M that divide it."""
    return ("int8", *(f"pq{m}" for m in (96, 64, 48, 32, 24, 16) if dimension % m == 0))


def default_form(dimension: int) -> str:
    """`DEFAULT_FORM`, or `int8` for vectors whose width it does not divide."""
    return DEFAULT_FORM if DEFAULT_FORM in forms(dimension) else "int8"


@dataclass(frozen=True)
class PieceCodec:
    """Turns unit-length word-piece vectors into compact codes and back.

    `int8`: each row scaled so that its largest value is 127 and rounded (one byte a
    dimension). `pqM`: the row cut into M parts, each replaced by the number of its nearest
    of 256 centroids (one byte a part). Decoded rows are scaled to unit length again.
    """

    form: str
    dimension: int
    # (M, 256, dimension / M) float32 for `pqM`; None for `int8`.
    codebook: np.ndarray | None = None

    @property
    def width(self) -> int:
        """Bytes a piece takes."""
        return self.dimension if self.codebook is None else len(self.codebook)

    @property
    def dtype(self) -> np.dtype:
        """The type of a code."""
        return np.dtype(np.int8 if self.codebook is None else np.uint8)

    @classmethod
    def train(cls, form: str, sample: np.ndarray, *, seed: int = 0) -> PieceCodec:
        """A codec of some form, its centroids learnt from a sample of vectors.

        Args:
            form: `int8` or `pqM` (see `forms`).
            sample: Unit-length rows like those to be coded; rows beyond `TRAIN_PIECES` are
                sampled from.
            seed: Seeds the sample and the k-means.

        Returns:
            The codec.

        Raises:
            ValueError: An unknown form, or one that does not fit the vectors' width.
        """
        dimension = int(sample.shape[1])
        if form not in forms(dimension):
            raise ValueError(
                f"unknown word-piece form {form!r} for {dimension} dimensions; use one of"
                f" {', '.join(forms(dimension))}"
            )
        if form == "int8":
            return cls(form, dimension)
        import faiss

        parts = int(form[2:])
        rng = np.random.default_rng(seed)
        if len(sample) > TRAIN_PIECES:
            sample = sample[np.sort(rng.choice(len(sample), TRAIN_PIECES, replace=False))]
        sample = np.ascontiguousarray(sample, dtype=np.float32)
        if len(sample) < CENTROIDS:
            # Too few to learn 256 centroids: repeated rows (each then coded exactly).
            sample = (
                sample[np.arange(CENTROIDS) % max(len(sample), 1)]
                if len(sample)
                else (rng.standard_normal((CENTROIDS, dimension)).astype(np.float32))
            )
        quantizer = faiss.ProductQuantizer(dimension, parts, 8)
        quantizer.cp.seed = seed
        quantizer.cp.verbose = False
        quantizer.cp.min_points_per_centroid = 1  # small samples are expected in small indexes
        # One thread: 48 small k-means gain little from two, and on a busy machine OpenMP's
        # waiting threads made training 3x slower (139 s against 42 s for 10,000 pieces).
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            quantizer.train(sample)
        finally:
            faiss.omp_set_num_threads(threads)
        codebook = faiss.vector_to_array(quantizer.centroids).reshape(
            parts, CENTROIDS, dimension // parts
        )
        return cls(form, dimension, codebook.astype(np.float32))

    def encode(self, rows: np.ndarray) -> np.ndarray:
        """Codes of unit-length rows, one row of `width` codes each."""
        rows = np.asarray(rows, dtype=np.float32).reshape(-1, self.dimension)
        if self.codebook is None:
            largest = np.abs(rows).max(axis=1, keepdims=True)
            return np.rint(rows * (127 / np.where(largest == 0, 1, largest))).astype(np.int8)
        if not len(rows):
            return np.zeros((0, self.width), np.uint8)
        return self._quantizer.compute_codes(np.ascontiguousarray(rows))

    @functools.cached_property
    def _quantizer(self):
        # faiss's quantizer with these centroids: it codes 10x faster than numpy (building
        # only; decoding, which a question does, is numpy's).
        import faiss

        assert self.codebook is not None
        parts = len(self.codebook)
        quantizer = faiss.ProductQuantizer(self.dimension, parts, 8)
        faiss.copy_array_to_vector(np.ascontiguousarray(self.codebook).ravel(), quantizer.centroids)
        return quantizer

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Unit-length float32 rows from codes."""
        codes = np.asarray(codes)
        if self.codebook is None:
            rows = codes.astype(np.float32)
        else:
            parts = len(self.codebook)
            rows = self.codebook[np.arange(parts), codes.astype(np.intp)].reshape(
                len(codes), self.dimension
            )
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.where(norms == 0, 1, norms)


def npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """An .npy (version 1.0) header of exactly `HEADER_BYTES` bytes."""
    text = repr({"descr": np.dtype(dtype).str, "fortran_order": False, "shape": tuple(shape)})
    text = text.ljust(HEADER_BYTES - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


class RowWriter:
    """An .npy matrix written a block of rows at a time: nothing but the open file is held.

    The header is written first with no rows and rewritten with the count on `close`.
    """

    def __init__(self, path: Path, width: int, dtype) -> None:
        self.path = Path(path)
        self.width = width
        self.dtype = np.dtype(dtype)
        self.rows = 0
        self._file = self.path.open("wb")
        self._file.write(npy_header((0, width), self.dtype))

    def append(self, rows: np.ndarray) -> None:
        """Write rows at the end (converted to the file's type)."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype).reshape(-1, self.width)
        self._file.write(rows.tobytes())
        # On disk as it goes: a block is not left in the writer's buffer.
        self._file.flush()
        self.rows += len(rows)

    def close(self) -> Path:
        """Write the final header, flush, and close; returns the path."""
        if not self._file.closed:
            self._file.seek(0)
            self._file.write(npy_header((self.rows, self.width), self.dtype))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        return self.path

    def discard(self) -> None:
        """Close and remove the file."""
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


@dataclass
class CompactPieces:
    """Every sentence's content word-piece vectors as codes, memory-mapped from one file:
    a question reads the rows of its 40 to 60 candidate sentences, nothing else."""

    codec: PieceCodec
    codes: np.ndarray
    # Where each sentence's rows start, plus the end: one more than there are sentences.
    offsets: np.ndarray
    directory: Path

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def record(self) -> dict:
        """What the manifest says of them."""
        return {"form": self.codec.form, "pieces": int(self.offsets[-1])}

    @property
    def files(self) -> tuple[str, ...]:
        """The names of their files."""
        return files(self.codec.form)

    def rows(self, number: int) -> np.ndarray:
        """The decoded (unit-length, float32) word-piece vectors of one sentence."""
        return self.codec.decode(self.codes[self.offsets[number] : self.offsets[number + 1]])


class StoredRows:
    """One sentence's compact pieces, decoded only when used as an array (an earlier index's
    pieces kept for a rebuild without holding them all decoded)."""

    def __init__(self, pieces: CompactPieces, number: int) -> None:
        self.pieces, self.number = pieces, number

    def __len__(self) -> int:
        return int(self.pieces.offsets[self.number + 1] - self.pieces.offsets[self.number])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self.pieces.rows(self.number), dtype=dtype)


def files(form: str) -> tuple[str, ...]:
    """The files compact pieces of a form are kept in."""
    return (CODES_FILE, OFFSETS_FILE) + (() if form == "int8" else (CODEBOOK_FILE,))


class PieceWriter:
    """Writes sentences' word-piece vectors as codes, a block at a time, in sentence order.

    The codec is learnt from the first block written (`TRAIN_PIECES` at most), so that no
    more than one block of float vectors is held.
    """

    def __init__(
        self,
        directory: Path,
        *,
        form: str,
        dimension: int,
        seed: int = 0,
        codec: PieceCodec | None = None,
    ) -> None:
        """Args:
        directory: Where the files go; made if missing.
        form: The codes' form (see `forms`).
        dimension: The vectors' width.
        seed: Seeds the codec's training.
        codec: A codec already learnt (of `form`), used as it is.
        """
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.form = form
        self.dimension = dimension
        self.seed = seed
        self.codec: PieceCodec | None = None
        self._codes: RowWriter | None = None
        self._counts: list[int] = []
        if codec is not None:
            if codec.form != form or codec.dimension != dimension:
                raise ValueError(f"the codec is {codec.form} of {codec.dimension}, not {form}")
            self._start(codec)

    def _start(self, codec: PieceCodec) -> None:
        self.codec = codec
        self._codes = RowWriter(self.directory / CODES_FILE, codec.width, codec.dtype)

    def add(self, sentences: list[np.ndarray]) -> None:
        """Append the word-piece vectors of the next sentences (one float matrix each)."""
        if not sentences:
            return
        rows = np.concatenate(
            [np.asarray(s, np.float32).reshape(-1, self.dimension) for s in sentences]
        )
        if self.codec is None:
            self._start(PieceCodec.train(self.form, rows, seed=self.seed))
        assert self._codes is not None and self.codec is not None
        self._codes.append(self.codec.encode(rows))
        self._counts += [len(s) for s in sentences]

    def add_codes(self, codes: np.ndarray, counts: list[int]) -> None:
        """Append sentences already coded by this writer's codec (their rows, and how many
        rows each sentence has)."""
        assert self._codes is not None, "add() must come first: it learns the codec"
        self._codes.append(codes)
        self._counts += list(counts)

    def close(self) -> CompactPieces:
        """Finish the files and open them as `CompactPieces`."""
        if self.codec is None:
            self._start(
                PieceCodec.train(
                    self.form, np.zeros((0, self.dimension), np.float32), seed=self.seed
                )
            )
        assert self._codes is not None and self.codec is not None
        self._codes.close()
        offsets = np.zeros(len(self._counts) + 1, np.int64)
        offsets[1:] = np.cumsum(self._counts, dtype=np.int64)
        np.save(self.directory / OFFSETS_FILE, offsets)
        if self.codec.codebook is not None:
            np.save(self.directory / CODEBOOK_FILE, self.codec.codebook)
        return open_pieces(self.directory, self.form, dimension=self.dimension)

    def discard(self) -> None:
        """Remove what was written."""
        if self._codes is not None:
            self._codes.discard()
        for name in (OFFSETS_FILE, CODEBOOK_FILE):
            (self.directory / name).unlink(missing_ok=True)


def open_pieces(directory: Path, form: str, *, dimension: int) -> CompactPieces:
    """Open compact pieces saved in a directory, their codes memory-mapped.

    Args:
        directory: Where `PieceWriter` wrote them.
        form: Their form (`int8` or `pqM`), as the manifest records it.
        dimension: The width of the vectors they code.

    Returns:
        The pieces.

    Raises:
        ValueError: A file is missing, truncated, or of the wrong shape; the message names it.
    """
    directory = Path(directory)
    if form not in forms(dimension):
        raise ValueError(f"unknown word-piece form {form!r} for {dimension} dimensions")
    codebook = None
    if form != "int8":
        path = directory / CODEBOOK_FILE
        codebook = _load(path)
        parts = int(form[2:])
        if codebook.shape != (parts, CENTROIDS, dimension // parts):
            raise ValueError(f"{path} holds a codebook of shape {codebook.shape}, not for {form}")
        codebook = np.asarray(codebook, np.float32)
    codec = PieceCodec(form, dimension, codebook)
    offsets = _load(directory / OFFSETS_FILE)
    path = directory / CODES_FILE
    codes = _load(path, mmap_mode="r")
    if codes.ndim != 2 or codes.shape[1] != codec.width or codes.dtype != codec.dtype:
        raise ValueError(f"{path} holds {codes.dtype} codes of shape {codes.shape}, not {form}")
    if offsets.ndim != 1 or not len(offsets) or offsets[0] != 0 or offsets[-1] != len(codes):
        raise ValueError(
            f"{directory / OFFSETS_FILE} does not match {path}: {len(codes)} rows of codes"
        )
    return CompactPieces(codec, codes, offsets, directory)


def _load(path: Path, *, mmap_mode=None) -> np.ndarray:
    if not path.is_file():
        raise ValueError(f"{path} is missing")
    shape, _, dtype, start = read_npy_header(path)
    expected = start + int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if path.stat().st_size != expected:
        raise ValueError(
            f"{path} is truncated or padded ({path.stat().st_size} bytes, its header says"
            f" {expected})"
        )
    if not np.prod(shape, dtype=np.int64):
        mmap_mode = None  # an empty array cannot be mapped
    return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
