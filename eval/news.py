"""RealTimeQA news questions: loaded, checked, and pooled by week as the product would see them."""

from __future__ import annotations

import argparse
import collections
import functools
import gzip
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.squad import guess_kind, write_jsonl

NEWS_DIR = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "realtimeqa-news"
ARTICLES_FILE = "articles.jsonl.gz"
QA_FILE = "qa.jsonl.gz"
# The digests its README gives: altered data is refused, not silently used.
SHA256 = {
    ARTICLES_FILE: "6fa96cce186b0c16e0312e967c132254a4afbb0cdff5d1a660aff194f34a30ad",
    QA_FILE: "83067cc2e20dced32e9667ff18662fffdab29408fe5719ee41e7a3bb35d6c291",
}
SPLITS = ("train", "dev", "test")
# An answer sentence must share this many of the question's content words, and with the
# sentence before this share of them (chosen on a hand-checked sample of train positives).
MIN_SHARED = 2
MIN_SHARE = 0.34


class NewsDataError(ValueError):
    """The news data set is missing, altered, or not in its format; the message names the file."""


@dataclass(frozen=True)
class NewsData:
    """The articles by id, and every question with its extra fields (see the data's README)."""

    articles: dict[str, dict[str, Any]]
    questions: tuple[dict[str, Any], ...]


def _checked(path: Path) -> Path:
    if not path.is_file():
        raise NewsDataError(
            f"The news data file {path} is missing: the realtimeqa-news data set belongs in"
            f" {path.parent} (see its README)."
        )
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if digest != SHA256[path.name]:
        raise NewsDataError(
            f"The news data file {path} is altered or truncated: its SHA-256 is {digest}, not"
            f" {SHA256[path.name]}. Copy it again from the data set."
        )
    return path


def _records(path: Path) -> Iterable[dict[str, Any]]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)
    except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise NewsDataError(f"The news data file {path} cannot be read ({e}).") from e


@functools.lru_cache(maxsize=2)
def load_news(directory: Path = NEWS_DIR) -> NewsData:
    """Read the news data set, checking each file against its published SHA-256 (once a
    process: the result is shared, not to be changed).

    Args:
        directory: The folder holding `articles.jsonl.gz` and `qa.jsonl.gz`.

    Returns:
        The articles and questions.

    Raises:
        NewsDataError: A file is missing, altered or unreadable; the message names it.
    """
    articles_path, qa_path = _checked(directory / ARTICLES_FILE), _checked(directory / QA_FILE)
    articles = {a["id"]: a for a in _records(articles_path)}
    questions = tuple(_records(qa_path))
    for q in questions:
        missing = [i for i in q.get("collection", ()) if i not in articles]
        if missing or q.get("split") not in SPLITS:
            raise NewsDataError(
                f"{qa_path}: question {q.get('id')!r} names articles that {articles_path} lacks"
                f" ({', '.join(missing[:3])}) or has no split."
            )
    return NewsData(articles, questions)


def usable(question: dict[str, Any]) -> bool:
    """Whether a question is answered verbatim or plainly not at all, and stands without its
    quiz choices: `partial` questions and those that need their choices are left out."""
    return not question["needs_choices"] and question["answer_found"] in ("exact", "none")


def weeks_of(data: NewsData, split: str) -> dict[str, list[dict[str, Any]]]:
    """The usable questions of a split, by week, weeks in order."""
    found: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for q in data.questions:
        if q["split"] == split and usable(q):
            found[q["week"]].append(q)
    return dict(sorted(found.items()))


def week_pool(data: NewsData, week: str) -> list[dict[str, Any]]:
    """Every article that any question of a week (usable or not) brought: the week's news."""
    ids = sorted({i for q in data.questions if q["week"] == week for i in q["collection"]})
    return [data.articles[i] for i in ids]


def week_set(
    data: NewsData, week: str, questions: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A week's pooled articles and its questions, in the eval formats (`rag index`, `rag eval`).

    An answerable question's gold articles are every pooled article holding its answer. An
    unanswerable one stays so only if its quiz's correct choice appears in none of the pooled
    articles (another question's search may have found the article that answers it); else
    it is left out, as it may be answered.

    Args:
        data: The data set.
        week: The week (`YYYYMMDD`).
        questions: Its usable questions (see `weeks_of`).

    Returns:
        (articles as `{"id", "title", "text", "url", "author", "date"}`, Q&A records).
    """
    pool = week_pool(data, week)
    texts = [(a["title"], a["text"].casefold()) for a in pool]
    qas = []
    for q in questions:
        if q["answer_found"] == "none":
            choice = (q.get("correct_choice") or "").casefold().strip()
            if not choice or any(choice in text for _, text in texts):
                continue
            qas.append({**_record(q), "answers": [], "articles": [], "kind": "unanswerable"})
            continue
        wanted = [a.casefold() for a in q["answers"]]
        gold = [title for title, text in texts if any(a in text for a in wanted)]
        qas.append({**_record(q), "articles": gold, "kind": guess_kind(q["question"])})
    articles = [
        {k: a[k] for k in ("id", "title", "text", "url", "author", "date") if a.get(k)}
        for a in pool
    ]
    return articles, qas


def _record(q: dict[str, Any]) -> dict[str, Any]:
    return {"id": q["id"], "question": q["question"], "answers": list(q["answers"])}


def weeks(data: NewsData, split: str, *, every: int = 1):
    """Yield `(week, articles, qas)` for the weeks of a split that have questions (see
    `week_set`), every n-th week only when `every` is above 1."""
    for n, (week, questions) in enumerate(weeks_of(data, split).items()):
        if n % every:
            continue
        articles, qas = week_set(data, week, questions)
        if qas:
            yield week, articles, qas


def write_weeks(data: NewsData, split: str, output: Path, *, every: int = 1) -> list[Path]:
    """Write each week of a split as `WEEK/articles.jsonl` and `WEEK/qa.jsonl`.

    Args:
        data: The data set.
        split: `train`, `dev` or `test`.
        output: The folder to write into.
        every: Keep every n-th week only (1: all), to bound the time to index them.

    Returns:
        The questions written, of every week.
    """
    written = []
    for week, articles, qas in weeks(data, split, every=every):
        write_jsonl(output / week / "articles.jsonl", articles)
        write_jsonl(output / week / "qa.jsonl", qas)
        written += qas
    return written


def article_sentences(article: dict[str, Any]) -> list[str]:
    """An article's sentences, paragraph by paragraph, as the index cuts them."""
    from rag.ingest.articles import paragraphs_of
    from rag.sentences import split_sentences

    return [
        paragraph[a:b]
        for paragraph in paragraphs_of(article["text"])
        for a, b in split_sentences(paragraph)
    ]


def answer_sentences(question: str, answers: Sequence[str], sentences: Sequence[str]) -> list:
    """The sentences that hold an answer *and* speak of what the question asks: `MIN_SHARED`
    of the question's content words in the sentence, and `MIN_SHARE` of them with the one
    before. A sentence that merely holds
    the answer string ("Meta" in a story about another event) is not taken for an answer.

    Args:
        question: The question.
        answers: Its answer strings.
        sentences: Candidate sentences, in order.

    Returns:
        `(index, (start, end))` per answering sentence, the answer's span in it, those that
        share the most question words first.
    """
    from eval.words import content_words

    asked = content_words(question)
    found = []
    for i, sentence in enumerate(sentences):
        at = next(((m.start(), a) for a in answers if (m := _whole(a).search(sentence))), None)
        if at is None:
            continue
        content = asked - content_words(at[1])
        shared = len(content & content_words(sentence))
        near = len(content & (content_words(sentences[i - 1]) if i else set()))
        # Two of the question's own words in the sentence, and a third of them nearby.
        if shared >= MIN_SHARED and (shared + near) >= MIN_SHARE * len(content):
            found.append((shared, i, (at[0], at[0] + len(at[1]))))
    found.sort(key=lambda f: (-f[0], f[1]))
    return [(i, span) for _, i, span in found]


def _whole(answer: str) -> re.Pattern[str]:
    # The answer as a whole word or words: "2" is not found in "2014".
    return re.compile(rf"(?<!\w){re.escape(answer)}(?!\w)", re.IGNORECASE)


def news_pairs(data: NewsData, split: str, rng, *, hard: int = 2, far: int = 1, positives: int = 2):
    """Reader training pairs from one split's questions and their own articles.

    Answer sentences (see `answer_sentences`, at most `positives` a question) are positives
    with their span; the other sentences of the same articles sharing most words with the
    question are negatives (`hard` of them, plus `far` at random); every such sentence of an
    unanswerable question is a negative.

    Args:
        data: The data set.
        split: Which questions (train only, for training).
        rng: A `random.Random`, for ties and the far negatives.
        hard: Close negatives a question.
        far: Random negatives a question.
        positives: Answer sentences a question at most.

    Returns:
        (`embeddings.reader_training.Pair`s, a description of what was used).
    """
    from embeddings.reader_training import Pair
    from eval.words import content_words

    pairs, used = [], collections.Counter()
    sentences_of: dict[str, list[str]] = {}  # an article serves several questions of a week
    for q in data.questions:
        if q["split"] != split or not usable(q):
            continue
        asked = content_words(q["question"])
        candidates = []  # (sentence, context)
        chosen = []
        for article_id in q["collection"]:
            if article_id not in sentences_of:
                sentences_of[article_id] = article_sentences(data.articles[article_id])
            sentences = sentences_of[article_id]
            start = len(candidates)
            candidates += [(s, sentences[i - 1] if i else "") for i, s in enumerate(sentences)]
            if q["answer_found"] == "exact":
                chosen += [
                    (start + i, span)
                    for i, span in answer_sentences(q["question"], q["answers"], sentences)
                ]
        if q["answer_found"] == "exact" and not chosen:
            used["answerable without a sentence that speaks of the question"] += 1
            continue
        taken = {i for i, _ in chosen[:positives]}
        for i, span in chosen[:positives]:
            sentence, context = candidates[i]
            pairs.append(Pair(q["question"], sentence, context, 1, span))
        holding = {
            i
            for i, (s, _) in enumerate(candidates)
            if any(a.casefold() in s.casefold() for a in q["answers"])
        }
        rest = [i for i in range(len(candidates)) if i not in taken and i not in holding]
        rest.sort(
            key=lambda i: (len(asked & content_words(candidates[i][0])), rng.random()), reverse=True
        )
        negatives = rest[:hard] + rng.sample(rest[hard:], min(far, len(rest[hard:])))
        for i in negatives:
            pairs.append(Pair(q["question"], *candidates[i], 0))
        used["answerable" if q["answer_found"] == "exact" else "unanswerable"] += 1
    return pairs, dict(used)


def index_root() -> Path:
    """Where the weeks' indexes are kept between runs: `$RAG_NEWS_INDEX`, or the cache."""
    if os.environ.get("RAG_NEWS_INDEX"):
        return Path(os.environ["RAG_NEWS_INDEX"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "rag" / "news"


def indexed(split: str, *, every: int = 1, data_dir: Path = NEWS_DIR) -> bool:
    """Whether the data set is here and every week of a split already has its index under
    `index_root()`, so that asking its questions builds nothing.

    Args:
        split: `train`, `dev` or `test`.
        every: Every n-th week only.
        data_dir: The news data set's folder.
    """
    if not (data_dir / QA_FILE).is_file():
        return False
    data = load_news(data_dir)
    found = [week for week, _, _ in weeks(data, split, every=every)]
    root = index_root() / "indexes" / split
    return bool(found) and all((root / week / "CURRENT").is_file() for week in found)


def week_engines(split: str, *, every: int = 1, data_dir: Path = NEWS_DIR, encoder=None):
    """Yield `(week, engine, questions)` for each week of a split, its pooled articles indexed
    once under `index_root()` (see `eval.news.week_set`).

    Args:
        split: `train`, `dev` or `test`.
        every: Keep every n-th week only (1: all).
        data_dir: The news data set's folder.
        encoder: The embedding model; loaded once when None.
    """
    from rag.service import open_engine
    from rag.settings import Settings

    files = index_root() / "collections" / split
    for week, articles, qas in weeks(load_news(data_dir), split, every=every):
        path = files / f"{week}.jsonl"
        if not path.exists():
            # Written beside its name and moved into place: a killed run leaves no half file.
            write_jsonl(path.with_suffix(".partial"), articles)
            os.replace(path.with_suffix(".partial"), path)
        settings = Settings(collection=(path,), index_dir=index_root() / "indexes" / split / week)
        engine = open_engine(settings, encoder)
        encoder = engine.encoder
        yield week, engine, qas


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m eval.news --split dev --output DIR`: write a split's weeks for `rag eval`."""
    parser = argparse.ArgumentParser(prog="python -m eval.news", description=__doc__)
    parser.add_argument("--split", choices=SPLITS, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--every", type=int, default=1, help="keep every n-th week (default 1)")
    parser.add_argument("--data", type=Path, default=NEWS_DIR)
    args = parser.parse_args(argv)
    data = load_news(args.data)
    questions = write_weeks(data, args.split, args.output, every=args.every)
    unanswerable = sum(not q["answers"] for q in questions)
    print(
        f"wrote {args.split} to {args.output}: {len(questions)} questions ({unanswerable} unanswerable)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
