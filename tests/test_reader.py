"""The reader: shipped weights load only when intact, read pairs sensibly, and can be trained."""

from __future__ import annotations

import json
import shutil

import pytest

from embeddings import load_reader
from embeddings.errors import ReaderLoadError
from embeddings.files import sha256_file
from embeddings.reader import CONFIG_FILE, READER_DIR, WEIGHTS_FILE, Reader

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def reader() -> Reader:
    return load_reader()


@pytest.fixture
def copy(tmp_path):
    target = tmp_path / "reader"
    shutil.copytree(READER_DIR, target)
    return target


def test_shipped_weights_match_their_hash_and_stay_small():
    weights = READER_DIR / WEIGHTS_FILE
    config = json.loads((READER_DIR / CONFIG_FILE).read_text(encoding="utf-8"))

    assert sha256_file(weights) == config["sha256"]
    assert weights.stat().st_size <= 25_000_000
    assert (READER_DIR / "MODEL_CARD.md").read_text(encoding="utf-8").count("CC BY-SA 4.0") >= 1


def test_the_answer_sentence_reads_higher_than_a_sentence_on_the_same_topic(reader):
    question = "Who killed Hisham al-Hashimi?"
    answer = "Hisham al-Hashimi was shot dead by two gunmen on a motorcycle outside his home."
    other = "Hisham al-Hashimi was a leading Iraqi expert on the Islamic State."
    read = reader.read(question, [answer, other])
    assert read[0].probability > read[1].probability
    start, end = read[0].span
    assert 0 <= start < end <= len(answer)


def test_over_long_input_is_cut_not_crashed(reader):
    long = "word " * 2000
    read = reader.read(long + "?", [long, "Short."], [long, ""])
    assert len(read) == 2 and all(0.0 <= r.probability <= 1.0 for r in read)
    assert reader.read("Anything?", []) == []


def test_a_context_is_cut_after_its_first_word_pieces(reader):
    before = "Hisham al-Hashimi, an adviser to the prime minister, lived in Baghdad."
    cut = reader.shortened([before, "Short."], 4)
    # "Hisham al-Hashimi" is four word pieces or more: the cut ends inside the name.
    assert before.startswith(cut[0]) and 0 < len(cut[0]) < len("Hisham al-Hashimi,")
    assert cut[1] == "Short."
    assert reader.shortened([before], 0) == [""]
    assert reader.shortened([before], 1000) == [before]
    sentence = "Two gunmen on a motorcycle shot him outside his home."
    full = reader.read("Who shot him?", [sentence], [before])[0]
    none = reader.read("Who shot him?", [sentence], [before], context_tokens=0)[0]
    alone = reader.read("Who shot him?", [sentence])[0]
    assert none.probability == pytest.approx(alone.probability, abs=1e-6)
    assert full.probability != pytest.approx(none.probability, abs=1e-6)


def test_missing_weights_name_the_file_and_the_fix(copy):
    (copy / WEIGHTS_FILE).unlink()
    with pytest.raises(ReaderLoadError, match=r"reader\.safetensors is missing.*train_reader"):
        Reader(copy)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_truncated_or_altered_weights_fail_their_hash(copy, damage):
    path = copy / WEIGHTS_FILE
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ReaderLoadError, match="SHA-256.*truncated or altered"):
        Reader(copy)


def test_a_damaged_config_is_named(copy):
    (copy / CONFIG_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ReaderLoadError, match="reader.json is not valid JSON"):
        Reader(copy)


def _pairs():
    from embeddings.reader_training import Pair

    return [
        Pair("Who shot him?", "Two gunmen shot him outside his home.", "", 1, (0, 11)),
        Pair("Who shot him?", "He was an expert on armed groups.", "He lived in Baghdad.", 0),
        Pair("When did Iran fire?", "Iran fired missiles on 8 January.", "", 1, (23, 32)),
        Pair("When did Iran fire?", "The bases house US troops.", "", 0),
    ]


def test_a_few_training_steps_write_weights_that_load(tmp_path):
    from embeddings.reader_training import TrainSettings, train_reader

    config = train_reader(
        _pairs(), tmp_path, TrainSettings(batch_size=2, max_steps=3, threads=1), describe={"n": 4}
    )
    assert config["steps"] == 3 and config["data"] == {"n": 4}
    loaded = load_reader(str(tmp_path))
    assert len(loaded.read("Who shot him?", ["Two gunmen shot him."])) == 1


def test_a_reader_records_the_layers_it_trained_and_loads_only_with_them(tmp_path):
    from embeddings.reader_training import TrainSettings, train_reader

    settings = TrainSettings(batch_size=2, max_steps=1, threads=1, frozen_layers=5)
    config = train_reader(_pairs(), tmp_path, settings)
    assert config["frozen_layers"] == 5
    loaded = Reader(tmp_path, threads=1, backend="torch")
    assert 0.0 <= loaded.read("Who shot him?", ["Two gunmen shot him."])[0].probability <= 1.0
    config["frozen_layers"] = 3
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ReaderLoadError, match=r"do not fit.*train_reader"):
        Reader(tmp_path, threads=1, backend="torch")


def test_a_null_span_reader_is_recorded_and_keeps_mass_for_no_short_answer(tmp_path):
    from embeddings.reader_training import TrainSettings, train_reader

    settings = TrainSettings(batch_size=2, max_steps=2, threads=1, null_span=True)
    assert train_reader(_pairs(), tmp_path, settings)["null_span"] is True
    with_null = Reader(tmp_path, threads=1, backend="torch")
    config = json.loads((tmp_path / CONFIG_FILE).read_text(encoding="utf-8"))
    config["null_span"] = False
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config), encoding="utf-8")
    without = Reader(tmp_path, threads=1, backend="torch")
    question, sentence = "When did Iran fire?", ["Iran fired missiles on 8 January."]
    a, b = with_null.read(question, sentence)[0], without.read(question, sentence)[0]
    # [CLS] shares the span head's softmax: the best span keeps less of it.
    assert a.probability == pytest.approx(b.probability)
    assert 0.0 < a.span_probability < b.span_probability
