"""Fine-tune the reader on (question, sentence) pairs and write the weights training changed."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from embeddings.files import model_path, sha256_file
from embeddings.reader import (
    CONFIG_FILE,
    FROZEN_LAYERS,
    MAX_TOKENS,
    WEIGHTS_FILE,
    build_model,
    encode_pairs,
    trainable_names,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pair:
    """One training example: does `sentence` answer `question`, and where."""

    question: str
    sentence: str
    context: str
    label: int
    answer: tuple[int, int] | None = None


@dataclass(frozen=True)
class TrainSettings:
    """The knobs of a training run; every run with the same settings and data is the same."""

    epochs: float = 1.5
    batch_size: int = 16
    learning_rate: float = 1e-4
    warmup: float = 0.06
    span_weight: float = 0.5
    seed: int = 13
    threads: int = 2
    max_steps: int | None = None
    frozen_layers: int = FROZEN_LAYERS
    null_span: bool = False  # a non-answer's span target is [CLS]: the span head learns "none"
    init: str | None = None  # a reader folder whose weights training starts from (None: the base)


def _span_positions(
    batch, row: int, answer: tuple[int, int] | None, *, null: bool = False
) -> tuple[int, int]:
    if answer is None:
        return (0, 0) if null else (-100, -100)
    offsets = batch["offset_mapping"][row].tolist()
    types = batch["token_type_ids"][row].tolist()
    start = end = -100
    for i, ((a, b), t) in enumerate(zip(offsets, types, strict=True)):
        if t != 1 or b <= a:
            continue
        if start == -100 and a <= answer[0] < b:
            start = i
        if a < answer[1] <= b:
            end = i
            break
    return (start, end) if start != -100 and end != -100 and end >= start else (-100, -100)


def _bucketed(pairs: Sequence[Pair], batch_size: int, rng: random.Random) -> list[int]:
    # Shuffle, then sort runs of 50 batches by length: batches of alike lengths waste less
    # padding, and the batches themselves are shuffled again.
    order = list(range(len(pairs)))
    rng.shuffle(order)
    run = batch_size * 50
    batches = []
    for i in range(0, len(order), run):
        part = sorted(
            order[i : i + run],
            key=lambda j: len(pairs[j].question) + len(pairs[j].sentence) + len(pairs[j].context),
        )
        batches += [part[k : k + batch_size] for k in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return [j for b in batches for j in b]


def train_reader(
    pairs: Sequence[Pair],
    output: Path,
    settings: TrainSettings,
    *,
    describe: dict | None = None,
    evaluate: Callable[[Callable[[Sequence[Pair]], list[float]]], dict] | None = None,
) -> dict:
    """Train the reader and write its changed weights (float16) with a config and hash.

    Args:
        pairs: Training pairs.
        output: Folder to write `reader.safetensors` and `reader.json` into.
        settings: Epochs, batch size, learning rate, seed, threads.
        describe: Facts about the data to record in the config.
        evaluate: Called after training with a function that scores pairs; what it returns is
            recorded in the config as held-out figures.

    Returns:
        The config written.
    """
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    rng = random.Random(settings.seed)
    base = model_path("all-MiniLM-L6-v2")
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    model = build_model(base)
    names = set(trainable_names(model, settings.frozen_layers))
    if settings.init:
        from safetensors.torch import load_file

        start = {
            k: v.float() for k, v in load_file(str(Path(settings.init) / WEIGHTS_FILE)).items()
        }
        if not set(start) <= names:
            raise ValueError(
                f"The reader in {settings.init} trained other layers than {settings.frozen_layers}"
                " frozen ones: pass its --frozen-layers."
            )
        model.load_state_dict(start, strict=False)

    for name, parameter in model.named_parameters():
        parameter.requires_grad = name in names
    trainable = [p for n, p in model.named_parameters() if n in names]
    steps_per_epoch = math.ceil(len(pairs) / settings.batch_size)
    total = int(steps_per_epoch * settings.epochs)
    if settings.max_steps is not None:
        total = min(total, settings.max_steps)
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=0.01)
    warmup = max(1, int(total * settings.warmup))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / (total - warmup + 1)))
    )
    positives = sum(p.label for p in pairs)
    weight = torch.tensor((len(pairs) - positives) / max(positives, 1))
    print(
        f"training on {len(pairs)} pairs ({positives} answer the question), {total} steps of"
        f" {settings.batch_size}, {len(names)} tensors trained, {settings.frozen_layers}"
        f" layer(s) frozen, {settings.threads} thread(s)",
        flush=True,
    )
    model.train()
    started, step, running = time.perf_counter(), 0, 0.0
    order: list[int] = []
    while step < total:
        if not order:
            order = _bucketed(pairs, settings.batch_size, rng)
        chosen = [pairs[i] for i in order[: settings.batch_size]]
        order = order[settings.batch_size :]
        batch = encode_pairs(
            tokenizer,
            [p.question for p in chosen],
            [p.sentence for p in chosen],
            [p.context for p in chosen],
        )
        targets = [
            _span_positions(batch, row, p.answer, null=settings.null_span and not p.label)
            for row, p in enumerate(chosen)
        ]
        batch.pop("offset_mapping")
        relevance, start, end = model(**batch)
        labels = torch.tensor([float(p.label) for p in chosen])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            relevance, labels, pos_weight=weight
        )
        starts = torch.tensor([t[0] for t in targets])
        ends = torch.tensor([t[1] for t in targets])
        if bool((starts >= 0).any()):
            span_loss = torch.nn.functional.cross_entropy(
                start, starts, ignore_index=-100
            ) + torch.nn.functional.cross_entropy(end, ends, ignore_index=-100)
            loss = loss + settings.span_weight * span_loss / 2
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        step += 1
        value = float(loss.detach())
        running = 0.98 * running + 0.02 * value if step > 1 else value
        if step % 100 == 0 or step == total:
            elapsed = time.perf_counter() - started
            print(
                f"step {step}/{total}  loss {running:.3f}  {step * settings.batch_size / elapsed:.1f}"
                f" pairs/s  {elapsed / 60:.1f} min",
                flush=True,
            )
    model.eval()

    def score(batch_pairs: Sequence[Pair]) -> list[float]:
        probabilities: list[float] = []
        with torch.inference_mode():
            for i in range(0, len(batch_pairs), 64):
                part = batch_pairs[i : i + 64]
                batch = encode_pairs(
                    tokenizer,
                    [p.question for p in part],
                    [p.sentence for p in part],
                    [p.context for p in part],
                )
                batch.pop("offset_mapping")
                probabilities += torch.sigmoid(model(**batch)[0]).tolist()
        return probabilities

    figures = evaluate(score) if evaluate else {}
    output.mkdir(parents=True, exist_ok=True)
    state = {
        n: p.detach().to(torch.float16).contiguous()
        for n, p in model.named_parameters()
        if n in names
    }
    weights = output / WEIGHTS_FILE
    save_file(state, str(weights))
    config = {
        "base": "all-MiniLM-L6-v2",
        "frozen_layers": settings.frozen_layers,
        "null_span": settings.null_span,
        "max_tokens": MAX_TOKENS,
        "max_span_tokens": 30,
        "dtype": "float16",
        "settings": settings.__dict__,
        "steps": total,
        "train_minutes": round((time.perf_counter() - started) / 60, 1),
        "data": describe or {},
        "held_out": figures,
        "sha256": sha256_file(weights),
    }
    (output / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.1f} MB)", flush=True)
    return config
