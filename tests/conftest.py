"""Shared fixtures: a fake encoder for plumbing tests, the real engine for quality tests."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from rag.service import open_engine
from rag.settings import DEFAULT_COLLECTION

ROOT = Path(__file__).resolve().parent.parent


class FakeEncoder:
    """Hashes words into a small vector space: fast, deterministic, no model."""

    name = "fake-hashing"
    dimension = 64
    max_tokens = 256

    def encode(self, texts, *, batch_size: int = 64) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)

    def encode_tokens(self, texts, *, batch_size: int = 64):
        out = []
        for text in texts:
            words = re.findall(r"\w+", text.lower())
            out.append((words, self.encode(words) if words else np.zeros((0, self.dimension))))
        return out

    def encode_with_tokens(self, texts, *, batch_size: int = 64):
        return self.encode(texts), self.encode_tokens(texts)

    def encode_query(self, text: str):
        ((words, vectors),) = self.encode_tokens([text])
        return self.encode([text])[0], words, vectors

    def count_tokens(self, texts) -> list[int]:
        return [len(re.findall(r"\w+|[^\w\s]", t)) + 2 for t in texts]


class Counting(FakeEncoder):
    """A fake encoder that records every text the index asks it to embed."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def encode(self, texts, *, batch_size: int = 64):
        self.texts += list(texts)
        return FakeEncoder().encode(texts)

    def encode_with_tokens(self, texts, *, batch_size: int = 64):
        self.texts += list(texts)
        return FakeEncoder().encode_with_tokens(texts)


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(scope="session")
def real_encoder():
    from embeddings import load_encoder

    return load_encoder()


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory) -> Path:
    """Where the session's index of the shipped collection lives."""
    return tmp_path_factory.mktemp("index")


@pytest.fixture(scope="session")
def engine(real_encoder, index_dir):
    """The real pipeline on the shipped collection, built once per test session."""
    from rag.settings import Settings

    settings = Settings(collection=(DEFAULT_COLLECTION,), index_dir=index_dir)
    return open_engine(settings, real_encoder)


def write_many_articles(path: Path, count: int) -> list[dict]:
    """A JSON Lines collection of `count` dated articles, a day apart, by two authors; every
    third title is about rockets, the others about talks."""
    import datetime as dt
    import json

    records = [
        {
            "id": f"a{i:03d}",
            "title": f"Report {i} on {'rockets' if i % 3 == 0 else 'talks'} in Baghdad",
            "author": ("Ann Lee", "Sam Writer")[i % 2],
            "date": (dt.date(2020, 1, 1) + dt.timedelta(days=i)).isoformat(),
            "text": f"Officials said event number {i} happened on a Tuesday. The second"
            f" sentence of article {i} names nobody.",
        }
        for i in range(count)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return records


@pytest.fixture(scope="session")
def many_settings(tmp_path_factory):
    """Settings of a 200-article collection, indexed (on disk) with the fake encoder, with
    the `rules` answerer: no model is loaded."""
    from rag.settings import Settings

    folder = tmp_path_factory.mktemp("many")
    collection = folder / "many.jsonl"
    write_many_articles(collection, 200)
    settings = Settings(collection=(collection,), index_dir=folder / "index", answerer="rules")
    open_engine(settings, FakeEncoder())
    return settings


@pytest.fixture
def many_engine(many_settings):
    """An engine over the 200-article index as loaded from disk (articles read in place)."""
    from rag.engine import Engine
    from rag.index.store import load_index

    return Engine(load_index(many_settings.index_path), FakeEncoder(), answerer="rules")
