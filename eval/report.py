"""A self-contained HTML report of an eval run: metrics, per-kind bars as SVG, failed questions."""

from __future__ import annotations

from html import escape
from typing import Any

BAR_WIDTH = 320


def _bars(per_kind: dict[str, Any]) -> str:
    rows = []
    for kind, m in sorted(per_kind.items()):
        value = m.get("answer_hit@1", m.get("refusal_rate")) or 0.0
        label = "answer hit@1" if "answer_hit@1" in m else "refused"
        rows.append((kind, value, label, m["questions"]))
    height = 24 * len(rows) + 8
    parts = [
        f'<svg role="img" aria-label="per-kind results" width="{BAR_WIDTH + 260}" height="{height}">'
    ]
    for i, (kind, value, label, n) in enumerate(rows):
        y = 4 + 24 * i
        parts.append(f'<text x="0" y="{y + 15}" font-size="13">{escape(kind)} ({n})</text>')
        parts.append(f'<rect x="130" y="{y}" width="{BAR_WIDTH}" height="18" fill="#e5e7eb"/>')
        color = "#16a34a" if value >= 0.85 else "#d97706" if value >= 0.6 else "#dc2626"
        parts.append(
            f'<rect x="130" y="{y}" width="{BAR_WIDTH * value:.1f}" height="18" fill="{color}"/>'
        )
        parts.append(
            f'<text x="{BAR_WIDTH + 140}" y="{y + 15}" font-size="13">{value:.2f} {label}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _calibration(per_band: dict[str, Any]) -> str:
    """Each band's stated confidence beside the share that held, as paired bars."""
    order = [b for b in ("answered", "probably", "not sure") if b in per_band]
    if not order:
        return "<p>No answer of this run has a confidence band (the reader's answers do).</p>"
    height = 44 * len(order) + 8
    parts = [
        f'<svg role="img" aria-label="stated confidence against the share right, per band"'
        f' width="{BAR_WIDTH + 300}" height="{height}">'
    ]
    for i, band in enumerate(order):
        m = per_band[band]
        y = 4 + 44 * i
        parts.append(
            f'<text x="0" y="{y + 24}" font-size="13">{escape(band)} ({m["questions"]})</text>'
        )
        held = "no answer to give" if band == "not sure" else "first quote right"
        for j, (value, label, color) in enumerate(
            ((m["stated"], "stated confidence", "#9ca3af"), (m["right"], held, "#2563eb"))
        ):
            top = y + 20 * j
            parts.append(
                f'<rect x="130" y="{top}" width="{BAR_WIDTH}" height="16" fill="#e5e7eb"/>'
                f'<rect x="130" y="{top}" width="{BAR_WIDTH * value:.1f}" height="16"'
                f' fill="{color}"/><text x="{BAR_WIDTH + 140}" y="{top + 13}" font-size="13">'
                f"{value:.2f} {label}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _failed(question: dict[str, Any]) -> bool:
    scores = question["scores"]
    if not question["expected"]["answers"]:
        return bool(question["answered"])
    return not scores.get("answer_hit@1") or not scores.get("hit@5")


def render_html(report: dict[str, Any]) -> str:
    """Render an eval report as one HTML page with no outside resources.

    Args:
        report: The JSON report of `eval.harness`.

    Returns:
        The HTML document.
    """
    metrics = report["metrics"]
    names = [k for k in metrics if k not in ("per_kind", "per_band")]
    methods = list(report["runs"])
    head = "".join(f"<th>{escape(m)}</th>" for m in methods)
    table = "".join(
        f"<tr><td>{escape(n)}</td>"
        + "".join(f"<td>{_cell(report['runs'][m].get(n))}</td>" for m in methods)
        + "</tr>"
        for n in names
    )
    failed = [q for q in report["questions"] if _failed(q)]
    items = []
    for q in failed:
        got = (
            "".join(
                f"<li>{escape(s['text'])} <small>({escape(s['title'])}, {s['start']}–{s['end']})</small></li>"
                for s in q["sentences"]
            )
            or f"<li><em>refused: {escape(q.get('reason') or '')}</em></li>"
        )
        expected = q["expected"]
        items.append(
            f"<section><h3>{escape(q['id'])} · {escape(expected.get('kind', ''))}: {escape(q['question'])}</h3>"
            f"<p><b>Expected</b> {escape(', '.join(expected['answers']) or 'a refusal')} in "
            f"{escape('; '.join(expected['articles']) or 'no article')}</p>"
            f"<p><b>Retrieved</b> {escape('; '.join(q['retrieved'][:5]))}</p>"
            f"<p><b>Answer</b> (confidence {q['confidence']:.2f})</p><ol>{got}</ol></section>"
        )
    failures = "".join(f"<li>{escape(f)}</li>" for f in report.get("failures", []))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Eval report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2rem .6rem;text-align:right}}
td:first-child{{text-align:left}}section{{border-top:1px solid #ddd;margin-top:1rem}}
@media (prefers-color-scheme: dark){{body{{background:#111;color:#eee}}svg text{{fill:#eee}}}}</style>
</head><body>
<h1>Eval report</h1>
<p>{escape(report["qa"])} on {escape(", ".join(report["collection"]))}, {escape(report["created_at"])};
default retriever <b>{escape(report["default_retriever"])}</b>.</p>
{f"<h2>Failed thresholds</h2><ul>{failures}</ul>" if failures else ""}
<h2>Metrics</h2><table><tr><th>metric</th>{head}</tr>{table}</table>
<h2>Per kind</h2>{_bars(metrics["per_kind"])}
<h2>Confidence bands</h2>{_calibration(metrics.get("per_band", {}))}
<h2>Failed questions ({len(failed)})</h2>{"".join(items) or "<p>None.</p>"}
</body></html>
"""


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return escape(str(value))
