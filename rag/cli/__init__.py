"""The `rag` command: index a collection, ask questions, evaluate, serve the web app.

This module is the composition root: the parser, `main`, and the only commands of `rag`
that reach up to `eval` and `web` (imported inside them, when they run). The other
commands are in `rag.cli.commands`, what they print in `rag.cli.output`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
from pathlib import Path

from embeddings import RUNTIMES
from rag.answer.question import MAX_TOP_K
from rag.cli.commands import (
    cmd_add,
    cmd_ask,
    cmd_feedback,
    cmd_index,
    cmd_list,
    cmd_remove,
    cmd_snapshot,
    settings_from_args,
)
from rag.errors import CollectionError, RagError
from rag.listing import DEFAULT_LIMIT, MAX_LIMIT
from rag.settings import ANSWERERS, DEFAULT_COLLECTION, INDEX_ENV, METHODS, ChunkSettings, Settings


def cmd_eval(args: argparse.Namespace) -> int:
    from eval.harness import run_from_args

    return run_from_args(args, settings_from_args(args))


def cmd_bench(args: argparse.Namespace) -> int:
    from eval.benchmark import main as bench

    return bench(
        ["--questions", str(args.questions), "--runtime", args.runtime]
        + (["--no-http"] if args.no_http else [])
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from web.app import serve

    settings = settings_from_args(args)
    serve(
        settings,
        host=args.host,
        port=args.port,
        questions=_questions(args, settings),
        **({"max_questions": args.max_questions} if args.max_questions else {}),
        batching=not args.no_batching,
    )
    return 0


def _questions(args: argparse.Namespace, settings: Settings) -> Path | None:
    # The file of example questions for the web app: the one given, else for the shipped
    # collection the project's eval set (its questions are about the shipped articles).
    if args.questions is None:
        if settings.collection == (DEFAULT_COLLECTION,):
            from eval.harness import DEFAULT_QA

            return DEFAULT_QA
        return None
    if not Path(args.questions).is_file():
        raise CollectionError(f"No such file: {args.questions} (--questions)")
    return Path(args.questions)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: write YYYY-MM-DD") from None


def _whole(low: int, high: int):
    def check(text: str) -> int:
        if not text.strip().isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from {low} to {high}")
        return int(text)

    return check


_top_k = _whole(1, MAX_TOP_K)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `rag` command."""
    parser = argparse.ArgumentParser(
        prog="rag", description="Ask questions of news articles; answers are quoted and cited."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--index",
            metavar="DIR",
            help=f"index directory (default: ${INDEX_ENV}, else one per collection in ~/.cache/rag)",
        )
        p.add_argument(
            "--chunk-tokens", type=int, default=ChunkSettings.max_tokens, help=argparse.SUPPRESS
        )
        p.add_argument(
            "--runtime",
            choices=RUNTIMES,
            default="onnx",
            help="where the reader runs, and the encoder unless --encoder-runtime says otherwise:"
            " onnx (ONNX Runtime, the default), onnx-int8 or onnx-int8-static (int8 copies of"
            " the reader, made once; the encoder stays float) or torch",
        )
        p.add_argument(
            "--encoder-runtime",
            choices=RUNTIMES,
            help="where the encoder runs (default: onnx, or torch with --runtime torch); an"
            " int8 encoder's vectors differ, so the index is built again with it",
        )
        p.add_argument(
            "--milvus",
            metavar="URI",
            help="search the chunks on this Milvus server (http://HOST:PORT); rag index"
            " --milvus URI loads them (needs pip install -e '.[milvus]')",
        )

    p = sub.add_parser("index", help="build or refresh the index of a collection")
    p.add_argument("paths", nargs="*", help="files or folders (default: the shipped collection)")
    p.add_argument("--rebuild", action="store_true", help="rebuild even if the index is current")
    ray_help = (
        "embed on a Ray cluster: auto, or its address HOST:PORT (needs pip install -e '.[ray]')"
    )
    p.add_argument("--ray", metavar="ADDRESS", help=ray_help)
    p.add_argument(
        "--snapshot",
        metavar="DIR",
        help="build the index from this snapshot (see rag snapshot); with --ray, write it there",
    )
    common(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser(
        "snapshot",
        help="chunk and embed a collection into Parquet shards any engine can load",
        description="Write a collection's articles, chunks and sentences, with float16 vectors,"
        " as Parquet shards and a manifest (model, dimension, chunking, checksums). Build an"
        " index from it with: rag index --snapshot DIR.",
    )
    p.add_argument("out", metavar="DIR", help="where the snapshot goes (replaced if there)")
    p.add_argument("paths", nargs="*", help="files or folders (default: the shipped collection)")
    p.add_argument("--ray", metavar="ADDRESS", help=ray_help)
    common(p)
    p.set_defaults(func=cmd_snapshot)

    def corpus(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--corpus",
            dest="paths",
            action="append",
            metavar="PATH",
            help="the collection's files or folders (repeatable; default: the shipped one)",
        )

    p = sub.add_parser(
        "add",
        help="add articles (files, folders, or page and feed addresses) to a collection",
        description="Add articles to a collection and update its index, embedding only their"
        " text. An article with the id (or, from an address, the url) of one already there"
        " replaces it. Sources: .txt, .md, .jsonl, .html and .rss/.atom/.xml files, folders of"
        " them, and http(s):// addresses of news pages and feeds.",
    )
    p.add_argument("sources", nargs="+", metavar="PATH_OR_URL")
    corpus(p)
    common(p)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("remove", help="remove articles from a collection by id (see rag list)")
    p.add_argument("ids", nargs="+", metavar="ID")
    corpus(p)
    common(p)
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser(
        "list",
        help="list a collection's articles, newest first, with their ids",
        description="List a page of a collection's articles, newest first (undated last),"
        " filtered by title words, dates and author; how many match, and the next page's"
        " --offset, go to standard error.",
    )
    p.add_argument("--title", metavar="WORDS", help="only articles whose title has all these words")
    p.add_argument("--date-from", type=_date, metavar="YYYY-MM-DD", help="published on or after")
    p.add_argument("--date-to", type=_date, metavar="YYYY-MM-DD", help="published on or before")
    p.add_argument("--author", help="only articles whose author contains this text (any case)")
    p.add_argument(
        "--limit",
        type=_whole(1, MAX_LIMIT),
        default=DEFAULT_LIMIT,
        help=f"articles to list (1-{MAX_LIMIT}, default {DEFAULT_LIMIT})",
    )
    p.add_argument(
        "--offset", type=_whole(0, 10**9), default=0, help="articles to pass over (default 0)"
    )
    corpus(p)
    common(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "feedback",
        help="readers' verdicts on answers (the web app's Right and Wrong buttons)",
        description="Readers' verdicts are kept beside the index, in feedback.jsonl.",
    )
    actions = p.add_subparsers(dest="action", required=True)
    e = actions.add_parser(
        "export",
        help="write the verdicts as a Q&A file that rag eval --qa runs",
        description="Write the verdicts as Q&A JSON Lines: a Right verdict gives its question"
        " with the answer's first quote as the answer sentence (on a refusal, an unanswerable"
        " question); a Wrong verdict with a chosen sentence gives that sentence; a Wrong"
        " verdict without one is skipped and counted. A question judged twice keeps its last"
        " verdict.",
    )
    e.add_argument("file", metavar="FILE", help="the Q&A file to write (replaced)")
    corpus(e)
    common(e)
    e.set_defaults(func=cmd_feedback)

    p = sub.add_parser("ask", help="ask a question")
    p.add_argument("question")
    corpus(p)
    p.add_argument(
        "-k", "--top-k", type=_top_k, default=5, help=f"supporting passages to show (1-{MAX_TOP_K})"
    )
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument("--retriever", choices=METHODS)
    p.add_argument(
        "--answerer",
        choices=ANSWERERS,
        default="reader",
        help="how answer sentences are chosen: the reader (default), or the rules or cosine"
        " baselines",
    )
    p.add_argument(
        "--no-rebuild", action="store_true", help="fail instead of rebuilding a stale index"
    )
    common(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="run a Q&A set and report retrieval and answer metrics")
    p.add_argument("--qa", help="Q&A JSON Lines file (default: eval/qa.jsonl)")
    corpus(p)
    p.add_argument(
        "--retriever", choices=(*METHODS, "all"), help="default: hybrid; all compares them"
    )
    p.add_argument(
        "--answerer",
        choices=(*ANSWERERS, "all"),
        default="all",
        help="how answer sentences are chosen: the reader (default answerer), the rules or"
        " cosine similarity; all (default) prints the three side by side",
    )
    p.add_argument("--json", dest="json_path", metavar="PATH", help="write the JSON report here")
    p.add_argument("--html", dest="html_path", metavar="PATH", help="write the HTML report here")
    p.add_argument(
        "--thresholds", help="thresholds TOML (default: eval/thresholds.toml for the default set)"
    )
    p.add_argument(
        "--news",
        choices=("train", "dev", "test"),
        help="instead, ask every week's news questions of that week's pooled articles"
        " (../shared/datasets/realtimeqa-news; the test split is the reported one)",
    )
    p.add_argument(
        "--every", type=int, default=1, metavar="N", help="with --news, every N-th week only"
    )
    common(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("serve", help="serve the web app")
    p.add_argument("paths", nargs="*", help="files or folders (default: the shipped collection)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--max-questions",
        type=_whole(1, 10_000),
        metavar="N",
        help="questions in the server at once, answered or waiting; more get 503 with"
        " Retry-After (default: 3 per core)",
    )
    p.add_argument(
        "--questions",
        metavar="FILE",
        help="Q&A JSON Lines file whose questions about the articles are offered as examples"
        " (default: the project's eval set, about the shipped articles)",
    )
    p.add_argument(
        "--no-batching",
        action="store_true",
        help="run each question's model inputs alone, not in one batch with the questions"
        " that arrive while the model is busy (to compare)",
    )
    common(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("bench", help="time the model, ask(), indexing, HTTP and start-up")
    p.add_argument("--questions", type=int, default=60, help="questions to time (default 60)")
    p.add_argument("--runtime", choices=RUNTIMES, default="onnx")
    p.add_argument("--no-http", action="store_true", help="skip the server measures")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `rag` command.

    Args:
        argv: Arguments (default: the process's).

    Returns:
        The exit status: 0 done, 1 a failed check (eval), 2 bad input or an unusable index.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="rag: %(levelname)s: %(message)s",
    )
    try:
        return args.func(args)
    except RagError as e:
        print(f"rag: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of the output stopped early (`rag ask ... | head`): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
