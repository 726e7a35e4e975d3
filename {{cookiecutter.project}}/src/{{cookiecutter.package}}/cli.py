"""The project's command: one sub-command per pipeline stage, plus serving.

DVC calls the stage commands (see ``dvc.yaml``); people and CI use the same vocabulary
through the Makefile. Stage modules are imported inside each command so that ``serve``
works in the serving image, where the training libraries are absent.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from .config import Params, Paths
from .schema import Schema

app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False)
log = logging.getLogger(__package__)


@app.callback()
def _setup(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("mlflow", "alembic", "urllib3", "skl2onnx", "git"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fail(message: str) -> typer.Exit:
    typer.secho(f"ERROR: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


@app.command()
def ingest() -> None:
    """Copy the raw data named by ``ingest.source`` into ``data/raw``."""
    from .data import ingest as run

    try:
        run(Params.load().ingest.source, Paths.raw)
    except FileNotFoundError as error:
        raise _fail(str(error)) from None


@app.command()
def prepare() -> None:
    """Validate the raw data against ``data/schema.yaml`` and split it."""
    from .data import DataValidationError
    from .data import prepare as run

    params = Params.load()
    try:
        run(
            Paths.raw,
            Schema.load(Paths.schema),
            params.prepare.test_size,
            params.seed,
            Paths.train,
            Paths.test,
        )
    except DataValidationError as error:
        raise _fail(f"{Paths.raw}: {error}") from None


@app.command()
def train() -> None:
    """Fit the model on the training split and log the run to MLflow."""
    from .train import train as run

    run(Params.load(), Schema.load(Paths.schema))


@app.command()
def evaluate() -> None:
    """Write test metrics, plots and per-group fairness metrics."""
    from .evaluate import evaluate as run

    run(Schema.load(Paths.schema))


@app.command()
def export() -> None:
    """Export the ONNX serving bundle and check parity with the native model."""
    from .export import export as run

    run(Schema.load(Paths.schema))


@app.command()
def validate(
    baseline_file: Annotated[
        Path | None, typer.Option(help="Baseline metrics JSON, e.g. the production model's.")
    ] = None,
    baseline_ref: Annotated[
        str | None,
        typer.Option(help="Git ref whose committed metrics/metrics.json is the baseline."),
    ] = None,
) -> None:
    """Apply the gates; write reports/verdict.json and reports/report.md; exit 1 on failure."""
    from .files import atomic_path, read_json, write_json
    from .report import render
    from .validate import BaselineError, decide, load_baseline

    try:
        baseline, source = load_baseline(baseline_file, baseline_ref)
    except BaselineError as error:
        raise _fail(str(error)) from None
    verdict = decide(
        read_json(Paths.metrics),
        read_json(Paths.fairness),
        read_json(Paths.parity),
        Params.load().validate_,
        baseline,
        source,
    )
    write_json(Paths.verdict, verdict.to_json())
    with atomic_path(Paths.report) as temporary:
        temporary.write_text(render(verdict), encoding="utf-8")
    for gate in verdict.gates:
        log.info("gate %-12s %-7s %s", gate.name, gate.status, gate.detail)
    if not verdict.passed:
        failed = ", ".join(gate.name for gate in verdict.gates if gate.status == "failed")
        raise _fail(f"model rejected by gate(s): {failed}; see {Paths.report}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    model_dir: Annotated[Path, typer.Option(help="ONNX bundle written by export.")] = Paths.bundle,
) -> None:
    """Serve the ONNX model over HTTP (see README for the API)."""
    from .serve.__main__ import run
    from .serve.settings import ServeSettings

    run(ServeSettings(host=host, port=port, model_dir=model_dir))


@app.command()
def smoke(
    url: Annotated[
        str | None, typer.Option(help="Server to test; default: start one locally.")
    ] = None,
    model_dir: Annotated[Path, typer.Option(help="Bundle holding example.json.")] = Paths.bundle,
    deadline: Annotated[float, typer.Option(help="Seconds to wait for /ready.")] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON.")] = False,
) -> None:
    """Smoke-test a server: /ready, one real prediction, one bad request."""
    from .smoke import EXAMPLE_FILE, SmokeTestError, free_port, smoke_test

    server = None
    if url is None:
        port = free_port()
        env = {
            **os.environ,
            "SERVE_PORT": str(port),
            "SERVE_MODEL_DIR": str(model_dir),
            "SERVE_LOG_LEVEL": "warning",
        }
        server = subprocess.Popen([sys.executable, "-m", f"{__package__}.serve"], env=env)
        url = f"http://127.0.0.1:{port}"
    try:
        result = smoke_test(url, model_dir / EXAMPLE_FILE, deadline)
    except SmokeTestError as error:
        raise _fail(f"smoke test of {url} failed: {error}") from None
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    good, bad = result["good_request"], result["bad_request"]
    labels = [prediction["label"] for prediction in good["predictions"]]
    problem = bad["detail"][0]
    typer.echo(f"Smoke test of {url}: ready after {result['ready_after_seconds']} s")
    typer.echo(f"  good request -> {good['status']}, labels {labels} as expected")
    typer.echo(
        f"  bad request  -> {bad['status']}, {'.'.join(map(str, problem['loc']))}: {problem['msg']}"
    )


@app.command()
def summary() -> None:
    """Print metrics, gate verdicts and where the artifacts are."""
    from .files import read_json

    verdict = read_json(Paths.verdict)
    typer.echo("Metrics (test split):")
    for name, value in sorted(verdict["metrics"].items()):
        typer.echo(f"  {name:<12} {value:.4f}")
    typer.echo("Gates:")
    for gate in verdict["gates"]:
        typer.echo(f"  {gate['name']:<12} {gate['status']:<8} {gate['detail']}")
    typer.echo(f"Verdict: {'PASSED' if verdict['passed'] else 'REJECTED'}")
    typer.echo("Artifacts:")
    artifacts = (
        Paths.bundle / "model.onnx",
        Paths.metrics,
        Paths.fairness,
        Paths.parity,
        Paths.report,
        Paths.confusion,
        Paths.roc,
    )
    for path in artifacts:
        typer.echo(f"  {path}")
    if Paths.mlflow_run.exists():
        typer.echo(
            f"MLflow run: {Paths.mlflow_run.read_text().strip()} (mlflow ui --backend-store-uri sqlite:///mlflow/mlflow.db)"
        )
