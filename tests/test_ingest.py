"""Parsing the shipped collection and the other collection formats, bad files included."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from rag.errors import CollectionError
from rag.ingest.files import load_collection
from rag.text import squash

TITLES = [
    "Iraq’s leading expert on paramilitary groups assassinated in Baghdad",
    "Tension in Iraq as government arrests members of powerful Shi’a militias",
    "News you may have missed #905",
    "Islamic State’s new leader issues video vowing ‘not a single day without bloodshed’",
    "COVID-struck Iraq sees ‘biggest ISIS resurgence’ since group’s defeat in 2017",
    "ISIS is tenacious, well-funded and quickly reasserting itself, new UN report warns",
    "Assessing the implications of Iran’s missile attack on Iraqi military bases",
    "Analysis: Middle East on verge of new regional war as US kills top Iran general",
    "ISIS forces now patrolling nearly all of northern Iraq, says intelligence official",
    "Iraqi spy chief warns of impeding ‘catastrophe’ as ISIS rebuilds Middle East network",
    "Iranians may have used female spy to ‘honey-trap’ dissident living in France",
    "Iran abducts France-based dissident in ‘complex intelligence operation’",
    "Shia militia blames US and Israel for mystery explosions throughout Iraq",
    "Analysis: Tension grows between Iraqi state and Shiite militias that helped fight ISIS",
    "Hundreds of ISIS fighters returning to Iraq to wage low-level insurgency",
]


@pytest.fixture(scope="module")
def articles():
    return {a.title: a for a in load_collection().articles}


def test_fifteen_articles_with_exact_titles(articles):
    assert [squash(t) for t in articles] == TITLES


def test_ids_are_slugs_of_titles(articles):
    ids = [a.id for a in articles.values()]
    assert ids[0] == "iraqs-leading-expert-on-paramilitary-groups-assassinated-in-baghdad"
    assert len(set(ids)) == 15


def test_bylines_and_dates(articles):
    depot = articles["Shia militia blames US and Israel for mystery explosions throughout Iraq"]
    assert (depot.author, depot.date) == ("Ian Allen", dt.date(2019, 8, 22))
    covid = articles[TITLES[4]]
    assert (covid.author, covid.date) == ("Joseph Fitsanakis", dt.date(2020, 5, 11))
    for title in (TITLES[2], TITLES[6], TITLES[7]):
        assert (articles[title].author, articles[title].date) == (None, None)


def test_caption_is_split_from_the_body(articles):
    hashimi = articles[TITLES[0]]
    assert hashimi.caption == "Hisham al-Hashimi"
    assert hashimi.body.startswith("A leading Iraqi expert")
    assert articles[TITLES[4]].caption == "ISIS Iraq"
    assert articles[TITLES[4]].body.startswith("Iraq is currently witnessing")


def test_bodies_hold_no_feed_furniture(articles):
    for article in articles.values():
        assert "Read more of this post" not in article.body
        assert "Permalink" not in article.body
        assert "Author:" not in article.body


def test_byline_is_quoted_as_written(articles):
    hashimi = articles[TITLES[0]]
    start, end = hashimi.byline
    assert hashimi.text[start:end] == "Author: Joseph Fitsanakis | Date: 14 July 2020 | Permalink"


def test_digest_is_one_article_with_three_sections(articles):
    digest = articles[TITLES[2]]
    assert [s.title for s in digest.sections] == [
        "French forces kill al-Qaeda head and capture ISIS leader in Mali.",
        "Isis operations increase in Iraq as coalition withdraws.",
        "Twitter removes more than 170,000 pro-China accounts.",
    ]
    assert digest.caption == "Twitter IA"


def test_paragraph_offsets_index_the_text(articles):
    for article in articles.values():
        for start, end in article.paragraphs:
            paragraph = article.text[start:end]
            assert paragraph == paragraph.strip() and "\n\n" not in paragraph


def test_jsonl_markdown_and_text(tmp_path):
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"title": "Alpha", "text": "First para.\n\nSecond para.", "date": "2020-01-02"})
        + "\n"
        + json.dumps({"id": "b-1", "title": "Beta", "text": "Body.", "author": "Ann"})
        + "\n",
        encoding="utf-8",
    )
    (tmp_path / "c.md").write_text("# Gamma\n\nIntro.\n\n## Part\n\nMore.", encoding="utf-8")
    (tmp_path / "d.txt").write_text("Delta\n\nPlain body.", encoding="utf-8")
    collection = load_collection([tmp_path])
    by_title = {a.title: a for a in collection.articles}
    assert set(by_title) == {"Alpha", "Beta", "Gamma", "Delta"}
    assert by_title["Alpha"].date == dt.date(2020, 1, 2)
    assert by_title["Alpha"].body == "First para.\n\nSecond para."
    assert by_title["Alpha"].text.endswith("\n\nDate: 2020-01-02")
    assert by_title["Beta"].id == "b-1" and by_title["Beta"].author == "Ann"
    start, end = by_title["Beta"].byline
    assert by_title["Beta"].text[start:end] == "Author: Ann"
    assert by_title["Beta"].body == "Body."
    assert [s.title for s in by_title["Gamma"].sections] == [None, "Part"]
    assert "##" not in by_title["Gamma"].text
    assert by_title["Delta"].text == "Plain body."
    assert collection.warnings == ()


def test_bad_files_are_skipped_and_named(tmp_path):
    (tmp_path / "good.txt").write_text("Good title\n\nGood body.", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02abc")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 title\n\nbody".encode("latin-1"))
    (tmp_path / "broken.jsonl").write_text('{"title": "ok", "text": "fine"}\n{not json\n')
    collection = load_collection([tmp_path])
    assert sorted(a.title for a in collection.articles) == ["Good title", "ok"]
    joined = "\n".join(collection.warnings)
    for name in ("empty.txt", "binary.txt", "latin1.txt", "broken.jsonl:2"):
        assert name in joined
    assert "UTF-8" in joined


def test_duplicate_ids_name_both_sources(tmp_path):
    (tmp_path / "one.txt").write_text("Same title\n\nOne.", encoding="utf-8")
    (tmp_path / "two.md").write_text("# Same title\n\nTwo.", encoding="utf-8")
    with pytest.raises(CollectionError) as error:
        load_collection([tmp_path])
    assert "one.txt" in str(error.value) and "two.md" in str(error.value)


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(CollectionError, match="No such file"):
        load_collection([tmp_path / "nope"])


def test_fingerprint_follows_content(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("Title\n\nBody one.", encoding="utf-8")
    first = load_collection([path]).fingerprint
    path.write_text("Title\n\nBody two.", encoding="utf-8")
    assert load_collection([path]).fingerprint != first


@pytest.mark.parametrize(
    "written",
    [
        "2022-11-09",
        "2022-11-09T10:00:00Z",
        "2022/11/09",
        "Nov 9, 2022",
        "9 November 2022",
        "Wed, 09 Nov 2022 10:00:00 +0000",
    ],
)
def test_common_date_formats_are_read(written):
    from rag.ingest.articles import parse_date

    assert parse_date(written) == dt.date(2022, 11, 9)


def test_unreadable_dates_are_left_out_with_one_warning_per_file(tmp_path):
    records = [{"title": f"T{n}", "text": "Body.", "date": "soon"} for n in range(5)]
    records.append({"title": "Dated", "text": "Body.", "date": "2022/11/09"})
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    collection = load_collection([path])
    assert {a.title: a.date for a in collection.articles}["Dated"] == dt.date(2022, 11, 9)
    assert all(a.date is None for a in collection.articles if a.title != "Dated")
    (warning,) = collection.warnings
    assert "5 dates could not be read" in warning and "'soon'" in warning


def test_hostile_files_are_skipped_and_named_and_the_rest_is_read(tmp_path):
    from rag.ingest.files import MAX_FILE_BYTES

    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "good.txt").write_text("Good title\n\nGood body.", encoding="utf-8")
    with open(folder / "huge.txt", "wb") as f:  # sparse: no 50 MB written to disk
        f.write(b"Huge title\n\n")
        f.truncate(50 * 2**20)
    (folder / "binary.txt").write_bytes(b"\x7fELF\x00\x01\x02" * 100)
    (folder / "mixed.txt").write_bytes("Title\n\nCafé ".encode() + "café".encode("latin-1"))
    (folder / "long.txt").write_text("Long line\n\n" + "word " * 200_000, encoding="utf-8")
    (folder / "nested").mkdir()
    (folder / "nested" / "loop").symlink_to(folder, target_is_directory=True)
    collection = load_collection([folder])
    titles = sorted(a.title for a in collection.articles)
    assert titles == ["Good title", "Long line"]
    warnings = "\n".join(collection.warnings)
    assert f"huge.txt: skipped, 50 MB is over the {MAX_FILE_BYTES // 2**20} MB" in warnings
    assert "binary.txt: skipped, binary file" in warnings
    assert "mixed.txt: skipped, not UTF-8" in warnings
    assert "loop: skipped, a link back to a folder already read" in warnings
    long = next(a for a in collection.articles if a.title == "Long line")
    assert len(long.text) == 999_999  # the line, less its trailing space
