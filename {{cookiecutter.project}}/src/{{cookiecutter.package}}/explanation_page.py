"""``reports/explanations.html``: the explanations as one self-contained page.

Inline SVG and CSS only (no script, no fonts, no network), so the CI artifact opens anywhere
and nothing in it can change after the fact.
"""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH, BAR_HEIGHT, PLOT_HEIGHT = 420, 22, 140
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;color:#222}"
    "svg{background:#fafafa;border:1px solid #ddd}text{font-size:12px}"
    ".bar{fill:#4c78a8}.line{fill:none;stroke:#4c78a8;stroke-width:2}.dot{fill:#4c78a8}"
    "figure{display:inline-block;margin:0 1em 1em 0}"
)


def render(explanations: dict[str, Any], title: str) -> str:
    """The page: per explained class, an importance chart and one shape chart per feature."""
    parts = [
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{escape(title)}</title>",
        f"<style>{STYLE}</style><h1>{escape(title)}</h1>",
        f"<p>InterpretML's black-box explainers over the served ONNX model, on "
        f"{explanations['rows']} test rows. Importance: Morris sensitivity (mu*, the mean "
        "absolute change in the probability when one feature moves a step across its range; "
        "whiskers: 95% confidence). Shape: partial dependence (the mean probability with one "
        "feature set to each value).</p>",
    ]
    for label, explained in explanations["classes"].items():
        parts.append(f"<h2>Probability of class {escape(label)}</h2>")
        parts.append(_importance(explained["importance"]))
        parts += [
            f"<figure>{_shape(values['values'], values['probability'])}"
            f"<figcaption>{escape(name)}</figcaption></figure>"
            for name, values in explained["shape"].items()
        ]
    return "".join(parts) + "\n"


def _importance(importance: list[dict[str, Any]]) -> str:
    label_width, top = 160, max([1e-12, *(i["importance"] + i["confidence"] for i in importance)])
    scale = (WIDTH - label_width - 60) / top
    rows = []
    for row, item in enumerate(importance):
        y = row * BAR_HEIGHT + 4
        length, whisker = item["importance"] * scale, item["confidence"] * scale
        end = label_width + length
        rows.append(
            f'<text x="4" y="{y + 14}">{escape(item["feature"])}</text>'
            f'<rect class="bar" x="{label_width}" y="{y}" width="{length:.1f}" height="16"/>'
            f'<line x1="{end - whisker:.1f}" x2="{end + whisker:.1f}" y1="{y + 8}" y2="{y + 8}"'
            ' stroke="#222"/>'
            f'<text x="{end + whisker + 4:.1f}" y="{y + 14}">'
            f"{item['importance']:.3g}</text>"
        )
    height = len(importance) * BAR_HEIGHT + 8
    return f'<svg width="{WIDTH}" height="{height}" role="img">{"".join(rows)}</svg>'


def _shape(values: list[Any], probability: list[float]) -> str:
    """A line over numbers, dots over categories; the y axis is probability, 0 to 1."""
    margin, inner = 30, WIDTH // 2 - 40
    numeric = all(isinstance(value, int | float) for value in values)
    if numeric and values[-1] != values[0]:
        xs = [margin + inner * (v - values[0]) / (values[-1] - values[0]) for v in values]
    else:
        xs = [margin + inner * (i + 0.5) / len(values) for i in range(len(values))]
    ys = [PLOT_HEIGHT - 20 - (PLOT_HEIGHT - 30) * p for p in probability]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    marks = (
        f'<polyline class="line" points="{points}"/>'
        if numeric
        else "".join(
            f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="4"/>'
            f'<text x="{x:.1f}" y="{PLOT_HEIGHT - 4}" text-anchor="middle">{escape(str(v))}</text>'
            for x, y, v in zip(xs, ys, values, strict=True)
        )
    )
    axis = f'<text x="2" y="14">1</text><text x="2" y="{PLOT_HEIGHT - 20}">0</text>' + (
        f'<text x="{margin}" y="{PLOT_HEIGHT - 4}">{values[0]:g}</text>'
        f'<text x="{margin + inner}" y="{PLOT_HEIGHT - 4}" text-anchor="end">'
        f"{values[-1]:g}</text>"
        if numeric
        else ""
    )
    return f'<svg width="{WIDTH // 2}" height="{PLOT_HEIGHT}" role="img">{axis}{marks}</svg>'
