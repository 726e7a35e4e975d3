"""Render a :class:`~.validate.Verdict` as the Markdown report (job summary, PR comment)."""

from __future__ import annotations

from .validate import Check, Verdict

ICONS = {"passed": "✅", "failed": "❌", "skipped": "⚪"}


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _delta(value: float, baseline: float | None) -> str:
    if baseline is None:
        return "—"
    return f"{value - baseline:+.4f}"


def _check(check: Check) -> str:
    mark = "✅" if check.passed else "❌"
    return f"{mark} `{check.name}` {_number(check.value)} {check.op} {check.bound:g}"


def chart(verdict: Verdict) -> list[str]:
    """A Mermaid bar chart (GitHub renders it; no image host): baseline bars, then current."""
    names = sorted(verdict.metrics)
    baseline = verdict.baseline or {}
    series = [("current", [verdict.metrics[name] for name in names])]
    if baseline:
        series.insert(0, ("baseline", [baseline.get(name, 0.0) for name in names]))
    labels = " then ".join(label for label, _ in series)
    lines = [
        "```mermaid",
        "xychart-beta",
        f'  title "Test metrics ({labels})"',
        f"  x-axis [{', '.join(names)}]",
        '  y-axis "score" 0 --> 1',
    ]
    lines += [f"  bar [{', '.join(f'{value:.4f}' for value in values)}]" for _, values in series]
    return [*lines, "```"]


def render(verdict: Verdict) -> str:
    """The whole report: verdict, metric table with baseline diff, gate table."""
    title = "✅ Model passed all gates" if verdict.passed else "❌ Model rejected"
    baseline = verdict.baseline or {}
    source = verdict.baseline_source or "none (absolute thresholds only)"
    lines = [
        f"## {title}",
        "",
        f"Baseline: {source}",
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
        lines.append(
            f"| {gate.name} | {ICONS[gate.status]} {gate.status} | {gate.detail} | {checks} |"
        )
    return "\n".join(lines) + "\n"
