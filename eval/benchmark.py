"""Speed and memory, as figures and as ratios to baselines measured in the same run.

`rag bench` (or `python -m eval.benchmark`) prints one table. The machine may be shared and
noisy: read the ratios, which compare against work done in the same run moments apart, more
than the raw times. Every loop is bounded in count and in time.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from embeddings import RUNTIMES
from eval.cluster import free_port
from eval.harness import DEFAULT_QA, load_qa
from eval.metrics import percentile

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
LARGE_CHUNKS = 2000
CHARS_PER_CHUNK = 1100  # a little over what a chunk of 256 word pieces holds, with overlap
HTTP_SECONDS = 10.0
READY_SECONDS = 300.0


@dataclass
class Row:
    """One line of the table: a measure, its figures, and its ratio to a baseline."""

    measure: str
    p50: float | None = None
    p95: float | None = None
    unit: str = "ms"
    ratio: float | None = None
    against: str = ""
    note: str = ""


def _timed(calls: Sequence[Callable[[], object]]) -> list[float]:
    times = []
    for call in calls:
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _asked(engine, questions: Sequence[str], **options) -> list[float]:
    """Milliseconds of `engine.ask` per question, each paying for its own embedding as a new
    question would."""

    def ask(question: str) -> object:
        engine.retriever._encode_question.cache_clear()
        return engine.ask(question, **options)

    return _timed([lambda q=q: ask(q) for q in questions])


def _row(measure: str, times: list[float], **kwargs) -> Row:
    return Row(measure, statistics.median(times), percentile(times, 95), **kwargs)


def _squad_articles() -> list[dict]:
    from eval.squad import convert

    articles: dict[str, dict] = {}
    for path in (
        DATASETS / "xquad-en" / "xquad.en.json",
        DATASETS / "squad2" / "train-sample-v2.0.json",
        DATASETS / "squad2" / "dev-half-v2.0.json",
    ):
        if path.is_file():
            found, _ = convert(json.loads(path.read_text(encoding="utf-8")))
            articles.update((a["title"], a) for a in found)  # XQuAD and SQuAD share some
    return list(articles.values())


def large_collection(directory: Path, *, chunks: int = LARGE_CHUNKS, seed: int = 7) -> Path:
    """Write a collection of at least about `chunks` chunks: the shipped articles, the SQuAD
    and XQuAD articles when `shared/datasets` is there, then synthetic articles made of their
    real sentences in a shuffled order.

    Returns:
        The JSON Lines file.
    """
    from rag.ingest.files import load_collection
    from rag.sentences import split_sentences

    rows = [
        {
            "id": a.id,
            "title": a.title,
            "text": a.text,
            "date": a.date.isoformat() if a.date else None,
        }
        for a in load_collection().articles
    ]
    rows += [{**a, "id": f"squad-{a['id']}"} for a in _squad_articles()]
    sentences = [r["text"][s:e] for r in rows for s, e in split_sentences(r["text"])]
    rng = random.Random(seed)
    n = 0
    while sum(len(r["text"]) for r in rows) < chunks * CHARS_PER_CHUNK:
        n += 1
        picked = rng.sample(sentences, min(40, len(sentences)))
        paragraphs = [" ".join(picked[i : i + 5]) for i in range(0, len(picked), 5)]
        rows.append(
            {"id": f"mixed-{n}", "title": f"Mixed sentences {n}", "text": "\n\n".join(paragraphs)}
        )
    path = directory / "large.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def in_process(questions: list[str], large: Path, work: Path, runtime: str) -> list[Row]:
    """The model's limit, the obvious pipeline, `ask()` on the shipped and the large
    collection, and indexing against the model's raw encode."""
    from embeddings import load_encoder
    from rag.build.indexing import build_index
    from rag.build.updates import open_index
    from rag.engine import Engine
    from rag.ingest.files import load_collection
    from rag.settings import Settings

    encoder = load_encoder(runtime=Settings(runtime=runtime).encoder_backend)
    encoder.encode(["warm up"])
    rows: list[Row] = []
    # The model's own limit: one question through a session of its own on every core, as
    # ONNX Runtime runs it alone, not through the batcher the engine's models share.
    alone = load_encoder(
        runtime=Settings(runtime=runtime).encoder_backend, threads=os.cpu_count() or 1
    )
    alone.encode(["warm up"])
    limit = _timed([lambda q=q: alone.encode_query(q) for q in questions])
    rows.append(_row("limit: the model embeds one question", limit, note=f"{runtime}"))
    base = statistics.median(limit)

    small = open_index(Settings(index_dir=work / "small", runtime=runtime), encoder)[0]
    engine = Engine(small, encoder, runtime=runtime)
    engine.ask(questions[0])

    top_k = _timed(
        [lambda q=q: small.chunk_vectors.search(encoder.encode([q]), 5) for q in questions]
    )
    rows.append(
        _row(
            "embed + FAISS top-5 (no answer step)",
            top_k,
            ratio=statistics.median(top_k) / base,
            against="limit",
        )
    )
    rules = _asked(engine, questions, answerer="rules")
    rows.append(
        _row(
            "ask(), rules answerer (no reader)",
            rules,
            ratio=statistics.median(rules) / base,
            against="limit",
        )
    )
    asked = _asked(engine, questions)
    p50_small = statistics.median(asked)
    rows.append(
        _row(
            f"ask(), shipped ({len(small.chunks)} chunks)",
            asked,
            ratio=p50_small / base,
            against="limit",
            note=f"reader share {1 - statistics.median(rules) / p50_small:.0%};"
            f" {p50_small / statistics.median(top_k):.1f}x embed + top-5",
        )
    )
    if runtime == "onnx":
        rows += _quantized(small, encoder, questions, asked, limit)

    collection = load_collection([large])
    texts_started = time.perf_counter()
    built = build_index(collection, encoder, Settings().chunking)
    build_s = time.perf_counter() - texts_started
    sentence_texts = [built.articles[s.article_id].text[s.start : s.end] for s in built.sentences]
    started = time.perf_counter()
    encoder.encode([c.text for c in built.chunks])
    encoder.encode(sentence_texts)
    raw_s = time.perf_counter() - started
    rows.append(
        Row(
            f"indexing {len(built.articles)} articles",
            build_s,
            None,
            "s",
            build_s / raw_s,
            "raw encode of its chunks and sentences",
            f"{len(built.chunks)} chunks, {len(built.sentences)} sentences; raw encode {raw_s:.0f} s",
        )
    )
    rows += _one_more_article(large, work, built, encoder, build_s, runtime)
    big = Engine(built, encoder, runtime=runtime)
    big.ask(questions[0])
    asked_big = _asked(big, questions)
    rows.append(
        _row(
            f"ask(), large ({len(built.chunks)} chunks)",
            asked_big,
            ratio=statistics.median(asked_big) / p50_small,
            against="ask(), shipped",
        )
    )
    rows += _without_pieces(built, collection, encoder, questions, asked_big, work, runtime)
    rows.append(Row("peak memory of this process", peak_mb(), None, "MB", note="large index built"))
    return rows


def _answer_of(engine, question: str) -> tuple:
    answer = engine.ask(question)
    return answer.answered, [(s.citations[0].title, s.citations[0].start) for s in answer.sentences]


def _quantized(small, encoder, questions, asked, limit) -> list[Row]:
    # The int8 copies of the reader and the encoder (see `embeddings.quantize`) beside the
    # float ones timed just before, and how often the reader's answer is the float one's.
    from embeddings import load_encoder
    from embeddings.onnx import QUANTIZED
    from rag.engine import Engine

    rows = []
    float_engine = Engine(small, encoder, runtime="onnx")
    expected = [_answer_of(float_engine, q) for q in questions]
    for runtime, method in QUANTIZED.items():
        engine = Engine(small, encoder, runtime=runtime)
        engine.ask(questions[0])
        times = _asked(engine, questions)
        same = sum(_answer_of(engine, q) == e for q, e in zip(questions, expected, strict=True))
        rows.append(
            _row(
                f"ask(), shipped, reader int8 {method}",
                times,
                ratio=statistics.median(times) / statistics.median(asked),
                against="ask(), shipped",
                note=f"same answer as float for {same}/{len(questions)} questions",
            )
        )
    for runtime, method in QUANTIZED.items():
        int8 = load_encoder(runtime=runtime)
        int8.encode(["warm up"])
        times = _timed([lambda q=q, e=int8: e.encode_query(q) for q in questions])
        vectors, floats = int8.encode(questions), encoder.encode(questions)
        rows.append(
            _row(
                f"limit: int8 {method} encoder embeds one question",
                times,
                ratio=statistics.median(times) / statistics.median(limit),
                against="limit",
                note=f"mean cosine to float {float((vectors * floats).sum(axis=1).mean()):.4f}",
            )
        )
    return rows


def _without_pieces(built, collection, encoder, questions, asked_big, work, runtime) -> list[Row]:
    # The large collection's index without stored word-piece vectors, as past PIECES_LIMIT
    # chunks: the answer step encodes its candidate sentences at question time.
    from rag.build.indexing import EmbeddingCache, build_index
    from rag.engine import Engine
    from rag.index.store import save_index
    from rag.settings import Settings

    lean = build_index(
        collection,
        encoder,
        Settings().chunking,
        cache=EmbeddingCache.from_index(built),
        pieces=False,
    )
    sizes = {}
    for name, index in (("stored", built), ("lean", lean)):
        folder = save_index(index, work / f"size-{name}")
        sizes[name] = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
    engine = Engine(lean, encoder, runtime=runtime)
    engine.ask(questions[0])
    asked = _asked(engine, questions)
    return [
        _row(
            "ask(), large, word pieces encoded per question",
            asked,
            ratio=statistics.median(asked) / statistics.median(asked_big),
            against="ask(), large",
        ),
        Row(
            "index on disk, large, without word pieces",
            sizes["lean"],
            None,
            "MB",
            sizes["lean"] / sizes["stored"],
            "with them",
            f"{sizes['stored']:.0f} MB with them",
        ),
    ]


def _one_more_article(
    large: Path, work: Path, built, encoder, build_s: float, runtime: str
) -> list[Row]:
    # The large collection's index saved, then one article added and removed as `rag add`
    # and `rag remove` do: only the new article's text should go through the model.
    from rag.build.updates import add_articles, remove_articles
    from rag.index.store import save_index
    from rag.ingest.articles import article_from_record
    from rag.settings import Settings

    directory = work / "large-index"
    save_index(built, directory)
    article, _ = article_from_record(
        {
            "id": "one-more",
            "title": "Drone strike near Baghdad airport",
            "text": "A drone strike killed a militia commander near Baghdad airport on Tuesday."
            " The militia vowed revenge in a statement on Wednesday.",
        },
        "bench",
    )
    settings = Settings(collection=(large,), index_dir=directory, runtime=runtime)
    rows = []
    for label, change in (
        ("rag add: 1 article", lambda: add_articles(settings, encoder, [article])),
        ("rag remove: 1 article", lambda: remove_articles(settings, encoder, ["one-more"])),
    ):
        started = time.perf_counter()
        _, update = change()
        seconds = time.perf_counter() - started
        rows.append(
            Row(
                f"{label} to {len(built.chunks)} chunks",
                seconds,
                None,
                "s",
                seconds / build_s,
                "full build",
                f"embedded {update.embedded_chunks} chunks, {update.embedded_sentences} sentences",
            )
        )
    return rows


def _get(connection: http.client.HTTPConnection, path: str) -> int:
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    return response.status


def _rag(*args: str) -> list[str]:
    return [sys.executable, "-m", "rag", *args]


def peak_mb(pid: int | str = "self", field: str = "VmHWM") -> float:
    """A process's peak (`VmHWM`) or current (`VmRSS`) resident memory, in MB, from /proc.

    `getrusage` would count the memory of the parent a child was forked from.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


_REPORT_PEAK = (
    "import atexit, sys\n"
    "from eval.benchmark import peak_mb\n"
    "atexit.register(lambda: print(f'PEAK {peak_mb():.1f}', file=sys.stderr))\n"
    "from rag.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@contextlib.contextmanager
def serving(
    index: Path, runtime: str = "onnx", paths: Sequence[Path] = (), options: Sequence[str] = ()
) -> Iterator[tuple[subprocess.Popen, int, float]]:
    """Run `rag serve` on 127.0.0.1 and a free port until the block ends.

    Args:
        index: The index directory.
        runtime: `onnx` or `torch`.
        paths: The collection (default: the shipped one).
        options: More options of `rag serve`.

    Yields:
        (the server process, its port, seconds from start to `/healthz` ready).

    Raises:
        RuntimeError: The server exited or was not ready within `READY_SECONDS`.
    """
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    server = subprocess.Popen(
        _rag("serve", *map(str, paths), "--index", str(index), "--port", str(port))
        + ["--runtime", runtime, *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if server.poll() is not None or time.perf_counter() - started > READY_SECONDS:
                raise RuntimeError(f"the server did not become ready (exit {server.poll()})")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                if _get(connection, "/healthz") == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        yield server, port, time.perf_counter() - started
    finally:
        stop(server)


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """Ask a process to end (SIGTERM), and kill it if it has not within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def over_http(questions: list[str], index: Path, ask_p50: float, runtime: str) -> list[Row]:
    """Start `rag serve` on 127.0.0.1, time it to ready, then load it with 1 and 8 clients;
    then the same with `--no-batching` (each question's model runs alone, as they come)."""
    rows: list[Row] = []
    for batched in (True, False):
        label = "" if batched else ", no batching"
        options = () if batched else ("--no-batching",)
        with serving(index, runtime, options=options) as (server, port, ready_s):
            if batched:
                rows.append(
                    Row(
                        "rag serve: start to /healthz ready", ready_s, None, "s", note="saved index"
                    )
                )
            crowd(port, questions, 2, 1.0)  # both paths warm before the timed load
            single = None
            for clients in (1, 8):
                got = crowd(port, questions, clients)
                times = got.answered
                rps = len(times) / HTTP_SECONDS
                row = _row(
                    f"HTTP GET /ask, {clients} client{'s' if clients > 1 else ''}{label}",
                    times,
                    note=f"{rps:.1f} req/s, {got.errors} errors, {len(got.refused)} refused (503)",
                )
                if clients == 1:
                    single = rps
                    row.ratio, row.against = statistics.median(times) / ask_p50, "ask(), shipped"
                else:
                    row.ratio, row.against = rps / single, f"1 client's req/s{label}"
                rows.append(row)
            rows.append(
                Row(
                    f"rag serve, peak memory after the load{label}", peak_mb(server.pid), None, "MB"
                )
            )
    return rows


@dataclass(frozen=True)
class Crowd:
    """What clients asking a server at once got."""

    # Milliseconds of each answered request, and of each refused as busy (503).
    answered: list[float]
    refused: list[float]
    # Requests that failed otherwise (no answer, or a status other than 200 and 503), and
    # refusals without a `Retry-After`.
    errors: int
    seconds: float


def crowd(
    port: int,
    questions: list[str],
    clients: int,
    seconds: float = HTTP_SECONDS,
    *,
    polite: bool = True,
) -> Crowd:
    """Ask a server on 127.0.0.1 questions from `clients` threads for `seconds`.

    Args:
        port: The server's port.
        questions: Asked in turn, each made new with a number (no cache answers it).
        clients: Threads asking at once.
        seconds: How long.
        polite: A client told 503 waits its `Retry-After` (at most until the end); else it
            asks again at once.

    Returns:
        The answered and refused requests' times and the errors.
    """
    answered: list[float] = []
    refused: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + seconds

    def client(offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = offset
        while time.perf_counter() < deadline and n < offset + 10_000:
            question = f"{questions[n % len(questions)]} {n}"
            path = "/ask?" + urllib.parse.urlencode({"q": question})
            started = time.perf_counter()
            retry = None
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                status, retry = response.status, response.getheader("Retry-After")
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
            except OSError:
                status = 0
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            took = (time.perf_counter() - started) * 1000
            if status == 503:
                refused.append(took)
                errors[0] += retry is None or not retry.isdigit()
                if polite and retry and retry.isdigit():
                    time.sleep(max(0.0, min(int(retry), deadline - time.perf_counter())))
            else:
                answered.append(took)
                errors[0] += status != 200
            n += 1

    threads = [threading.Thread(target=client, args=(i * 1000,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    return Crowd(answered, refused, errors[0], seconds)


def load(
    port: int, questions: list[str], clients: int, seconds: float = HTTP_SECONDS
) -> tuple[list[float], int]:
    """Ask a server on 127.0.0.1 questions from `clients` threads for `seconds`.

    Returns:
        (each request's milliseconds, how many failed or were not 200, refusals included).
    """
    got = crowd(port, questions, clients, seconds, polite=False)
    return got.answered + got.refused, got.errors + len(got.refused)


def cold_cli(index: Path, runtime: str, runs: int = 3) -> list[Row]:
    """`rag ask` from a fresh process on a saved index: wall time and peak memory."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    times, peaks = [], []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _REPORT_PEAK, "ask", "Who killed Qassem Soleimani?"]
            + ["--index", str(index), "--runtime", runtime],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        times.append((time.perf_counter() - started) * 1000)
        peaks += [
            float(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK")
        ]
    return [
        Row(
            "rag ask, cold process",
            statistics.median(times) / 1000,
            max(times) / 1000,
            "s",
            note=f"{runs} runs",
        ),
        Row("rag ask, peak memory", max(peaks, default=float("nan")), None, "MB"),
    ]


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""

    def shown(value: float | None, unit: str) -> str:
        if value is None:
            return ""
        return f"{value:,.1f} {unit}" if unit != "ms" or value < 1000 else f"{value / 1000:,.2f} s"

    lines = ["| measure | p50 | p95 | ratio | against | note |", "|---|---:|---:|---:|---|---|"]
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        lines.append(
            f"| {r.measure} | {shown(r.p50, r.unit)} | {shown(r.p95, r.unit)} | {ratio}"
            f" | {r.against} | {r.note} |"
        )
    return "\n".join(lines)


def run(questions: int = 60, *, runtime: str = "onnx", http: bool = True) -> list[Row]:
    """Every measure of the benchmark, in one run.

    Args:
        questions: How many questions of `eval/qa.jsonl` to time (their text only is used).
        runtime: Where the reader runs (see `embeddings.RUNTIMES`); with `onnx`, the int8
            copies of the reader and the encoder are timed beside it.
        http: Also start a server and load it.

    Returns:
        The table's rows.
    """
    asked = [q["question"] for q in load_qa(DEFAULT_QA)[:questions]]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        large = large_collection(work)
        rows = in_process(asked, large, work, runtime)
        if http:
            ask_p50 = next(r.p50 for r in rows if r.measure.startswith("ask(), shipped"))
            rows += over_http(asked, work / "small", ask_p50, runtime)
        rows += cold_cli(work / "small", runtime)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Print the benchmark table."""
    parser = argparse.ArgumentParser(prog="rag bench", description=__doc__)
    parser.add_argument("--questions", type=int, default=60, help="questions to time (default 60)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="onnx")
    parser.add_argument("--no-http", action="store_true", help="skip the server measures")
    args = parser.parse_args(argv)
    rows = run(args.questions, runtime=args.runtime, http=not args.no_http)
    print(f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {args.runtime}")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
