"""XQuAD hidden among distractor articles at growing sizes: answers, latency, memory, build.

`python -m eval.distractors --sizes 10000,100000` builds, for each size, one index of XQuAD's
48 articles plus distractor articles up to that many chunks, and asks it held-out XQuAD
questions (those of the 32 articles outside `squad2/dev-half-v2.0.json`) with the full
answer step. Each size runs in a fresh process, so that its resident memory is its own.

What is real and what is not:
- XQuAD's articles: real text, chunks and sentences embedded by the model.
- Distractors: real sentences (SQuAD 2.0's training sample and the shipped news articles,
  none from XQuAD's articles) drawn at random into articles of 8 paragraphs of 5 sentences,
  then chunked as any article is. Each sentence keeps its own real embedding; a distractor
  chunk's vector is the normalised mean of its sentences' embeddings, a stand-in for embedding
  it, which this machine could not do for 100k chunks in a benchmark's time (about 50 chunks
  a second).
- Near-duplicate detection is not run on distractors (their sentences repeat by design).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from eval.benchmark import DATASETS, peak_mb

XQUAD = DATASETS / "xquad-en" / "xquad.en.json"
DEV_HALF = DATASETS / "squad2" / "dev-half-v2.0.json"
TRAIN_SAMPLE = DATASETS / "squad2" / "train-sample-v2.0.json"
SENTENCES_PER_ARTICLE = 40
QUESTIONS = 200
SEED = 11
CHILD_SECONDS = 3600


def as_articles(records: list[dict]) -> list:
    """Articles from JSON records (as `eval.squad.convert` makes them), unreadable ones left out."""
    from rag.ingest import article_from_record

    out = []
    for record in records:
        article, _ = article_from_record(record, "benchmark")
        if article is not None:
            out.append(article)
    return out


def xquad() -> tuple[list, list[dict]]:
    """XQuAD's 48 articles, and the questions of its 32 held-out articles (seeded sample)."""
    from eval.squad import convert, without_titles

    data = json.loads(XQUAD.read_text(encoding="utf-8"))
    articles, _ = convert(data)
    dev = json.loads(DEV_HALF.read_text(encoding="utf-8"))["data"]
    _, qas = convert({**data, "data": without_titles(data["data"], [a["title"] for a in dev])})
    qas = [qa for qa in qas if qa["answers"]]
    return as_articles(articles), random.Random(SEED).sample(qas, min(QUESTIONS, len(qas)))


def pool() -> list[str]:
    """The real sentences distractors are made of."""
    from eval.squad import convert
    from rag.ingest import load_collection
    from rag.sentences import split_sentences

    articles, _ = convert(json.loads(TRAIN_SAMPLE.read_text(encoding="utf-8")))
    texts = [a["text"] for a in articles] + [a.text for a in load_collection().articles]
    found = {t[s:e] for t in texts for s, e in split_sentences(t)}
    # Whole sentences only, so that they split back apart when put side by side.
    return sorted(s for s in found if len(s.split()) >= 4 and s[0].isupper() and s[-1] in '.!?"”’')


def _distractors(sentences: list[str], start: int, rng: random.Random) -> list[dict]:
    picked = rng.sample(sentences, SENTENCES_PER_ARTICLE)
    paragraphs = [" ".join(picked[i : i + 5]) for i in range(0, len(picked), 5)]
    return [
        {
            "id": f"distractor-{start}",
            "title": f"Distractor {start}",
            "text": "\n\n".join(paragraphs),
        }
    ]


def embed_once(work: Path) -> Path:
    """Embed XQuAD's chunks and sentences and the pool's sentences; saved for every size."""
    from embeddings import load_encoder
    from rag.chunking import ChunkSettings, chunk_articles

    encoder = load_encoder()
    articles, _ = xquad()
    chunks = chunk_articles(articles, encoder.count_tokens, ChunkSettings())
    by_id = {a.id: a for a in articles}
    sentences = sorted(
        {by_id[c.article_id].text[s:e] for c in chunks for s, e in c.sentences} | set(pool())
    )
    started = time.perf_counter()
    chunk_vectors = encoder.encode([c.text for c in chunks])
    sentence_vectors = encoder.encode(sentences)
    seconds = time.perf_counter() - started
    path = work / "embedded.npz"
    np.savez(
        path,
        chunk_texts=np.array([c.text for c in chunks], dtype=object),
        chunk_vectors=chunk_vectors.astype(np.float32),
        sentences=np.array(sentences, dtype=object),
        sentence_vectors=sentence_vectors.astype(np.float32),
        seconds=seconds,
    )
    return path


def measure(size: int, embedded: Path, *, exact_limit: int | None = None) -> dict:
    """Build the index of one size and ask it the questions (run in its own process)."""
    from embeddings import load_encoder
    from eval.harness import run_question
    from eval.metrics import percentile, score_question
    from rag.chunking import ChunkSettings, chunk_articles
    from rag.engine import Engine
    from rag.index import Index, sentence_refs
    from rag.vectors import EXACT_LIMIT, build_vectors

    saved = np.load(embedded, allow_pickle=True)
    known_chunks = dict(zip(saved["chunk_texts"], saved["chunk_vectors"], strict=True))
    known = dict(zip(saved["sentences"], saved["sentence_vectors"], strict=True))
    encoder = load_encoder()
    real, qas = xquad()
    sentences_pool = pool()
    started = time.perf_counter()
    rng = random.Random(SEED)
    articles = list(real)
    settings = ChunkSettings()
    chunks = chunk_articles(articles, encoder.count_tokens, settings)
    while len(chunks) < size:
        extra = as_articles(_distractors(sentences_pool, len(articles), rng))
        articles += extra
        more = chunk_articles(extra, encoder.count_tokens, settings)
        chunks += [replace(c, id=len(chunks) + i) for i, c in enumerate(more)]
    by_id = {a.id: a for a in articles}
    refs = sentence_refs(chunks)
    texts = [by_id[r.article_id].text[r.start : r.end] for r in refs]
    # Pool sentences that the splitter joins with their neighbour in a new paragraph: few.
    unknown = sorted({t for t in texts if t not in known})
    if unknown:
        known.update(zip(unknown, encoder.encode(unknown), strict=True))
    sentence_vectors = np.stack([known[t] for t in texts]).astype(np.float32)
    row_of = {(r.article_id, r.start): n for n, r in enumerate(refs)}
    chunk_vectors = np.empty((len(chunks), sentence_vectors.shape[1]), np.float32)
    for n, chunk in enumerate(chunks):
        vector = known_chunks.get(chunk.text)
        if vector is None:
            rows = [row_of[(chunk.article_id, s)] for s, _ in chunk.sentences]
            vector = sentence_vectors[rows].mean(axis=0)
            vector /= np.linalg.norm(vector)
        chunk_vectors[n] = vector
    vectors = build_vectors(chunk_vectors, exact_limit=exact_limit or EXACT_LIMIT)
    index = Index(
        {"model": encoder.name, "dimension": encoder.dimension, "chunks": len(chunks)},
        by_id,
        chunks,
        vectors,
        refs,
        sentence_vectors,
        None,
        None,
    )
    engine = Engine(index, encoder)
    built = time.perf_counter() - started
    questions = [qa["question"] for qa in qas]
    recall = 1.0
    if not vectors.exact:
        flat = build_vectors(chunk_vectors, exact_limit=len(chunk_vectors))
        hits = 0
        for question in questions:
            q = engine.retriever.question_vector(question)
            hits += len(set(vectors.search(q, 10)[0]) & set(flat.search(q, 10)[0]))
        recall = hits / (10 * len(questions))
        del flat
    engine.ask(questions[0])
    results = [run_question(engine, qa, "hybrid") for qa in qas]
    scores = [score_question(qa, r) for qa, r in zip(qas, results, strict=True)]
    latencies = [r["latency_ms"] for r in results]
    return {
        "size": size,
        "chunks": len(chunks),
        "articles": len(articles),
        "sentences": len(refs),
        "mode": "exact" if vectors.exact else "ivf-sq8",
        "build_s": round(built, 1),
        "rss_mb": round(peak_mb("self", "VmRSS")),
        "recall@10": round(recall, 3),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "answer_hit@1": round(float(np.mean([s["answer_hit@1"] for s in scores])), 3),
        "first_citation": round(float(np.mean([s["first_citation_gold"] for s in scores])), 3),
        "refused": round(float(np.mean([s["refused"] for s in scores])), 3),
        "encoded_here": len(unknown),
        "questions": len(qas),
    }


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table."""
    columns = [
        ("chunks", "chunks"),
        ("mode", "search"),
        ("build_s", "build s"),
        ("rss_mb", "RSS MB"),
        ("recall@10", "recall@10"),
        ("p50_ms", "p50 ms"),
        ("p95_ms", "p95 ms"),
        ("answer_hit@1", "answer hit@1"),
        ("first_citation", "first citation"),
        ("refused", "refused"),
    ]
    lines = [
        "| " + " | ".join(h for _, h in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        cells = [f"{row[k]:,}" if isinstance(row[k], int) else str(row[k]) for k, _ in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the sizes asked for, each in its own process, and print the table."""
    parser = argparse.ArgumentParser(prog="python -m eval.distractors", description=__doc__)
    parser.add_argument("--sizes", default="10000,100000", help="chunk counts, comma-separated")
    parser.add_argument(
        "--approximate",
        action="store_true",
        help="also run each size with the approximate (IVF) chunk index forced",
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("SIZE", "EMBEDDED", "EXACT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        size, embedded, exact = args.child
        row = measure(int(size), Path(embedded), exact_limit=int(exact) or None)
        print(json.dumps(row))
        return 0
    if not XQUAD.is_file():
        print(f"XQuAD is not at {XQUAD}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as work:
        embedded = embed_once(Path(work))
        seconds = float(np.load(embedded, allow_pickle=True)["seconds"])
        print(
            f"embedded XQuAD's chunks and the distractor sentences in {seconds:.0f} s", flush=True
        )
        runs = [(int(s), 0) for s in args.sizes.split(",")]
        if args.approximate:
            runs += [(size, 1) for size, _ in list(runs)]
        for size, forced in runs:
            done = subprocess.run(
                [sys.executable, "-m", "eval.distractors", "--child", str(size), str(embedded)]
                + [str(forced)],
                capture_output=True,
                text=True,
                timeout=CHILD_SECONDS,
            )
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
