"""Train the reader from SQuAD 2.0: `python -m eval.train_reader` (see the model card)."""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.words import content_words
from rag.sentences import split_sentences

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
SQUAD_TRAIN = DATASETS / "squad2" / "train-sample-v2.0.json"
SQUAD_DEV = DATASETS / "squad2" / "dev-half-v2.0.json"
# The last articles of the dev half are never trained on: the answer selector and the refusal
# threshold are fitted on them, and the reader's held-out figures are measured there.
HELD_OUT_ARTICLES = 6
# Negatives per question from its own paragraph (see `pairs_for`).
PARAGRAPH_NEGATIVES = 2


@dataclass(frozen=True)
class Question:
    """A SQuAD question with its paragraph cut into sentences."""

    id: str
    article: str
    question: str
    sentences: tuple[str, ...]
    answer_sentence: int | None
    answer: tuple[int, int] | None
    plausible_sentence: int | None
    others: tuple[str, ...]


def _locate(spans: Sequence[tuple[int, int]], start: int) -> int | None:
    for i, (a, b) in enumerate(spans):
        if a <= start < b:
            return i
    return None


def read_squad(path: Path) -> list[dict[str, Any]]:
    """The articles of a SQuAD JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))["data"]


def squad_questions(articles: Iterable[Mapping[str, Any]]) -> list[Question]:
    """Cut each paragraph into sentences and find each question's answer sentence.

    Args:
        articles: SQuAD articles (`title`, `paragraphs`).

    Returns:
        One entry per question; `answer_sentence` is None for unanswerable ones, whose
        `plausible_sentence` holds the SQuAD 2.0 plausible answer when it has one.
    """
    questions = []
    for article in articles:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            spans = split_sentences(context)
            paragraphs.append((context, spans, [context[a:b] for a, b in spans]))
        for p, (_, spans, texts) in enumerate(paragraphs):
            others = tuple(t for q, (_, _, ts) in enumerate(paragraphs) if q != p for t in ts)
            for qa in article["paragraphs"][p]["qas"]:
                answer_sentence = answer = plausible = None
                if qa.get("answers") and not qa.get("is_impossible"):
                    first = qa["answers"][0]
                    answer_sentence = _locate(spans, first["answer_start"])
                    if answer_sentence is None:
                        continue
                    a, b = spans[answer_sentence]
                    start = first["answer_start"] - a
                    end = start + len(first["text"])
                    answer = (start, end) if end <= b - a else None
                elif qa.get("plausible_answers"):
                    plausible = _locate(spans, qa["plausible_answers"][0]["answer_start"])
                questions.append(
                    Question(
                        qa["id"],
                        article["title"],
                        qa["question"],
                        tuple(texts),
                        answer_sentence,
                        answer,
                        plausible,
                        others,
                    )
                )
    return questions


def pairs_for(
    question: Question, rng: random.Random, *, hard: int = PARAGRAPH_NEGATIVES, far: int = 1
) -> list:
    """Training pairs of one question: its answer sentence, and the hardest non-answers.

    Hard negatives are the paragraph's other sentences that share the most words with the
    question (for an unanswerable question, the one holding its plausible answer first);
    `far` more come from the article's other paragraphs, as retrieval would bring them.

    Args:
        question: The question.
        rng: Breaks ties between equally close sentences.
        hard: Negatives from the same paragraph.
        far: Negatives from other paragraphs of the article.

    Returns:
        `Pair`s (see `embeddings.reader_training`).
    """
    from embeddings.reader_training import Pair

    asked = content_words(question.question)
    sentences = question.sentences

    def context(i: int) -> str:
        return sentences[i - 1] if i > 0 else ""

    def closeness(text: str) -> tuple[int, float]:
        return (len(asked & content_words(text)), rng.random())

    pairs = []
    if question.answer_sentence is not None:
        i = question.answer_sentence
        pairs.append(Pair(question.question, sentences[i], context(i), 1, question.answer))
    first = [] if question.plausible_sentence is None else [question.plausible_sentence]
    rest = sorted(
        (i for i in range(len(sentences)) if i not in (question.answer_sentence, *first)),
        key=lambda i: closeness(sentences[i]),
        reverse=True,
    )
    for i in (first + rest)[:hard]:
        pairs.append(Pair(question.question, sentences[i], context(i), 0))
    for text in sorted(question.others, key=closeness, reverse=True)[:far]:
        pairs.append(Pair(question.question, text, "", 0))
    return pairs


def split_articles(
    train: Sequence[Mapping[str, Any]], dev: Sequence[Mapping[str, Any]]
) -> tuple[list, list]:
    """(articles the reader trains on, held-out articles for the selector and calibration)."""
    cut = len(dev) - HELD_OUT_ARTICLES
    return list(train) + list(dev[:cut]), list(dev[cut:])


def held_out_figures(questions: Sequence[Question], score) -> dict[str, float]:
    """How well a pair scorer picks each held-out question's answer sentence.

    Args:
        questions: Held-out questions.
        score: Maps a list of Pairs to probabilities.

    Returns:
        top-1 sentence accuracy of answerable questions, and the share of unanswerable ones
        refused at the threshold that refuses 5% of answerable ones.
    """
    from embeddings.reader_training import Pair

    flat, owner = [], []
    for n, q in enumerate(questions):
        for i, s in enumerate(q.sentences):
            flat.append(Pair(q.question, s, q.sentences[i - 1] if i else "", 0))
            owner.append((n, i))
    probabilities = score(flat)
    best: dict[int, tuple[float, int]] = {}
    for (n, i), p in zip(owner, probabilities, strict=True):
        if n not in best or p > best[n][0]:
            best[n] = (p, i)
    answerable = [n for n, q in enumerate(questions) if q.answer_sentence is not None]
    unanswerable = [n for n, q in enumerate(questions) if q.answer_sentence is None]
    top1 = sum(best[n][1] == questions[n].answer_sentence for n in answerable) / len(answerable)
    kept = sorted(best[n][0] for n in answerable)
    threshold = kept[int(0.05 * len(kept))]
    refused = sum(best[n][0] < threshold for n in unanswerable) / max(len(unanswerable), 1)
    return {
        "questions": len(questions),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "top1_sentence": round(top1, 4),
        "threshold_at_5pct_false_refusals": round(threshold, 4),
        "unanswerable_refused_at_5pct": round(refused, 4),
    }


def main(argv: Sequence[str] | None = None) -> int:
    from embeddings.reader import READER_DIR
    from embeddings.reader_training import TrainSettings, train_reader

    parser = argparse.ArgumentParser(prog="python -m eval.train_reader", description=__doc__)
    parser.add_argument("--output", type=Path, default=READER_DIR)
    parser.add_argument("--epochs", type=float, default=TrainSettings.epochs)
    parser.add_argument("--threads", type=int, default=TrainSettings.threads)
    parser.add_argument("--seed", type=int, default=TrainSettings.seed)
    parser.add_argument("--max-steps", type=int, default=None, help="stop early (smoke tests)")
    parser.add_argument("--learning-rate", type=float, default=TrainSettings.learning_rate)
    parser.add_argument(
        "--frozen-layers",
        type=int,
        default=TrainSettings.frozen_layers,
        help="keep the embedding model's weights in layers below this one",
    )
    parser.add_argument(
        "--hard",
        type=int,
        default=PARAGRAPH_NEGATIVES,
        help="negatives per question from its own paragraph",
    )
    parser.add_argument(
        "--null-span",
        action="store_true",
        help="train the span head to point at [CLS] for sentences that do not answer",
    )
    parser.add_argument(
        "--news",
        action="store_true",
        help="add the news training questions (realtimeqa-news, train split) to SQuAD's",
    )
    parser.add_argument(
        "--squad-share",
        type=float,
        default=1.0,
        help="share of SQuAD's pairs kept (default 1: all), to weigh the news ones more",
    )
    parser.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from this reader's weights (e.g. embeddings/reader) instead of the base model",
    )
    parser.add_argument("--limit", type=int, default=None, help="use only N questions")
    parser.add_argument("--held-out-limit", type=int, default=600)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    train_articles, held_articles = split_articles(read_squad(SQUAD_TRAIN), read_squad(SQUAD_DEV))
    train_questions = squad_questions(train_articles)
    held = squad_questions(held_articles)
    if args.limit:
        train_questions = rng.sample(train_questions, min(args.limit, len(train_questions)))
    held = random.Random(args.seed).sample(held, min(args.held_out_limit, len(held)))
    pairs = [p for q in train_questions for p in pairs_for(q, rng, hard=args.hard)]
    if not 0 < args.squad_share <= 1:
        parser.error("--squad-share must be a share above 0 and at most 1, such as 0.3")
    if args.squad_share < 1:
        pairs = rng.sample(pairs, int(len(pairs) * args.squad_share))
    news: dict[str, Any] = {}
    if args.news:
        from eval.news import load_news, news_pairs

        news_list, news = news_pairs(load_news(), "train", rng)
        pairs += news_list
        news["pairs"] = len(news_list)
    describe = {
        "train_articles": [a["title"] for a in train_articles],
        "held_out_articles": [a["title"] for a in held_articles],
        "train_questions": len(train_questions),
        "train_unanswerable": sum(q.answer_sentence is None for q in train_questions),
        "pairs": len(pairs),
        "squad_share": args.squad_share,
        "news": news,
        "init": str(args.init) if args.init else None,
        "paragraph_negatives": args.hard,
        "sources": [
            "squad2/train-sample-v2.0.json",
            "squad2/dev-half-v2.0.json (first 10 articles)",
        ]
        + (["realtimeqa-news (train split, 2023-2024)"] if args.news else []),
    }
    print(
        f"{len(train_articles)} articles, {len(train_questions)} questions"
        f" ({describe['train_unanswerable']} unanswerable), {len(pairs)} pairs;"
        f" held out: {len(held_articles)} articles, {len(held)} questions",
        flush=True,
    )
    settings = TrainSettings(
        epochs=args.epochs,
        threads=args.threads,
        seed=args.seed,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        frozen_layers=args.frozen_layers,
        null_span=args.null_span,
        init=str(args.init) if args.init else None,
    )
    config = train_reader(
        pairs,
        args.output,
        settings,
        describe=describe,
        evaluate=lambda score: held_out_figures(held, score),
    )
    print("held-out figures:", json.dumps(config["held_out"]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
