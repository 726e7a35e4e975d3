"""Render a :class:`~.verdict.Verdict` as the Markdown report (job summary, PR comment)."""

from __future__ import annotations

from typing import Any

from .verdict import Check, Verdict

ICONS = {"passed": "✅", "failed": "❌", "skipped": "⚪", "not_applicable": "➖"}  # noqa: RUF001


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _delta(value: float, baseline: float | None) -> str:
    return "—" if baseline is None else f"{value - baseline:+.4f}"


def _check(check: Check) -> str:
    mark = "✅" if check.passed else "❌"
    value = "—" if check.value is None else f"{check.value:.4g}"
    return f"{mark} `{check.name}` {value} {check.op} {check.bound:g}"


def chart(verdict: Verdict) -> list[str]:
    """A Mermaid bar chart (GitHub renders it; no image host): baseline bars, then current.

    With a baseline, only the metrics both sides have are drawn: a missing value is not 0.
    """
    baseline = verdict.baseline.metrics or {}
    names = sorted(name for name in verdict.metrics if not baseline or name in baseline)
    series = [("current", [verdict.metrics[name] for name in names])]
    if baseline:
        series.insert(0, ("baseline", [baseline[name] for name in names]))
    top = max([1.0, *(value for _, values in series for value in values)])
    labels = " then ".join(label for label, _ in series)
    lines = [
        "```mermaid",
        "xychart-beta",
        f'  title "Test metrics ({labels})"',
        f"  x-axis [{', '.join(names)}]",
        f'  y-axis "value" 0 --> {top:.4g}',
    ]
    lines += [f"  bar [{', '.join(f'{value:.4f}' for value in values)}]" for _, values in series]
    return [*lines, "```"]


def explanation_table(explanations: dict[str, Any], top: int) -> list[str]:
    """The ``top`` most important features per explained class, with their shape in words."""
    lines = []
    for label, explained in explanations["classes"].items():
        lines += [
            f"Probability of class {label}, the {top} most important of "
            f"{len(explained['importance'])} features (Morris mu\\*, partial dependence on "
            f"{explanations['rows']} test rows):",
            "",
            "| feature | importance (95% CI) | probability as the feature alone varies |",
            "| --- | ---: | --- |",
        ]
        for item in explained["importance"][:top]:
            shape = explained["shape"][item["feature"]]
            lines.append(
                f"| {item['feature']} | {item['importance']:.3f} ± {item['confidence']:.3f} "
                f"| {_shape(shape['values'], shape['probability'])} |"
            )
        lines.append("")
    return lines[:-1]


BARS = "▁▂▃▄▅▆▇█"


def statistics_table(statistics: dict[str, Any]) -> list[str]:
    """The training split described: rows, classes, and a mean and histogram per feature."""
    if statistics["private"]:
        how = (
            f"Released with differential privacy ({statistics['mechanism']}, "
            f"ε = {statistics['epsilon']:.4g}, δ = {statistics['delta']:g}): every number here "
            "is noisy, none is the raw data's."
        )
    else:
        how = "Exact: privacy is off (params.yaml: privacy.enabled)."
    columns = dict(statistics["columns"])
    target, counted = next((name, c) for name, c in columns.items() if c["type"] == "target")
    del columns[target]
    classes = ", ".join(f"{label}: {count}" for label, count in counted["counts"].items())
    lines = [
        f"{how} {statistics['rows']} rows; {target} {classes}.",
        "",
        "| feature | mean | distribution |",
        "| --- | ---: | --- |",
    ]
    for name, column in columns.items():
        if column["type"] == "category":
            counts = ", ".join(f"{category} {n}" for category, n in column["counts"].items())
            lines.append(f"| {name} | — | {counts} |")
            continue
        edges = column["edges"]
        lines.append(
            f"| {name} | {column['mean']:.4g} | {_bars(column['counts'])} "
            f"{edges[0]:g} to {edges[-1]:g} |"
        )
    return lines


def _bars(counts: list[int]) -> str:
    """A histogram as block characters, the tallest bin full height."""
    tallest = max(max(counts), 1)
    return "".join(BARS[round(count / tallest * (len(BARS) - 1))] for count in counts)


def _shape(values: list[Any], probability: list[float]) -> str:
    if all(isinstance(value, int | float) for value in values):
        return (
            f"{probability[0]:.2f} at {values[0]:g} → {probability[-1]:.2f} at {values[-1]:g} "
            f"(range {min(probability):.2f} to {max(probability):.2f})"
        )
    ranked = sorted(zip(probability, map(str, values), strict=True), reverse=True)
    return ", ".join(f"{value} {p:.2f}" for p, value in ranked)


def render(
    verdict: Verdict,
    explanations: dict[str, Any] | None = None,
    top: int = 5,
    statistics: dict[str, Any] | None = None,
) -> str:
    """The whole report: verdict, metrics with baseline diff, gates, explanations, data."""
    title = "✅ Model passed all gates" if verdict.passed else "❌ Model rejected"
    baseline = verdict.baseline.metrics or {}
    lines = [
        f"## {title}",
        "",
        f"Model: `{verdict.model_sha256[:12]}`, test split `{verdict.test_split_md5[:12]}`. "
        f"Baseline: {verdict.baseline.note or 'none'}.",
        "",
        "| metric | value | baseline | Δ |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, value in sorted(verdict.metrics.items()):
        base = baseline.get(name)
        lines.append(f"| {name} | {value:.4f} | {_number(base)} | {_delta(value, base)} |")
    lines += ["", *chart(verdict)]
    lines += ["", "| gate | verdict | detail | checks |", "| --- | --- | --- | --- |"]
    for gate in verdict.gates:
        checks = "<br>".join(_check(check) for check in gate.checks) or "—"
        status = gate.status.replace("_", " ")
        lines.append(f"| {gate.name} | {ICONS[gate.status]} {status} | {gate.detail} | {checks} |")
    if explanations is not None:
        lines += ["", "### Explanations", "", *explanation_table(explanations, top)]
    if statistics is not None:
        lines += ["", "### Training data", "", *statistics_table(statistics)]
    return "\n".join(lines) + "\n"
