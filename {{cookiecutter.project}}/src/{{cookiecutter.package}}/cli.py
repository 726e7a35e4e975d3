"""The project's command: one sub-command per pipeline stage, plus the tools around them.

DVC runs the stage commands (see ``dvc.yaml``); people and CI use the same vocabulary through
the Makefile. Every module behind a command is imported only when that command runs, so
``--help`` and ``serve`` load no training library (the serving image has none).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
{% if cookiecutter.task == "reinforcement-learning" %}
from .config import Paths, StageError
from .environment import AgentParams as Params
{%- elif cookiecutter.task == "image" %}
from .config import Paths, StageError
from .images import ImageParams as Params
{%- else %}
from .config import Params, Paths, StageError
{%- endif %}

app = typer.Typer(help=__doc__, no_args_is_help=True, pretty_exceptions_enable=False)
log = logging.getLogger(__package__)

# name -> (module in stages/, what it does), in pipeline order; each module's run(params, paths).
STAGES = {
{%- if cookiecutter.task == "reinforcement-learning" %}
    "train": ("train_agent", "Train the agent (PPO) and start the MLflow run."),
    "evaluate": ("evaluate_agent", "Play the evaluation episodes; record returns, observations."),
    "export": ("export_agent", "Write the ONNX serving bundle and its parity with the policy."),
    "validate": ("validate_agent", "Apply the gates against the baseline; exit 1 when one fails."),
{%- elif cookiecutter.task == "image" %}
    "ingest": ("ingest_images", "Write the images of ingest.source into data/raw/images."),
    "prepare": ("prepare_images", "Check the images against data/schema.yaml and split them."),
    "pretrain": ("pretrain", "Pretrain the backbone on the source classes (pretrain.classes)."),
    "train": ("train_image", "Fine-tune a new head on the backbone; start the MLflow run."),
    "evaluate": ("evaluate_image", "Write test metrics and plots."),
    "export": ("export_image", "Write the ONNX serving bundle and its parity with the network."),
    "validate": ("validate_image", "Apply the gates against the baseline; exit 1 when one fails."),
{%- else %}
    "ingest": ("ingest", "Copy the raw data named by ingest.source into data/raw."),
    "prepare": ("prepare", "Validate the raw data against data/schema.yaml and split it."),
    "describe": (
        "describe",
        "Describe the training split for the report (privately when privacy.enabled).",
    ),
    "tune": ("tune", "Search the train parameters with Ray Tune (when tune.enabled)."),
    "train": ("train", "Fit the model on the training split and start the MLflow run."),
    "evaluate": ("evaluate", "Write test metrics, plots and per-group fairness metrics."),
    "export": ("export", "Write the ONNX serving bundle and its parity with the native model."),
    "explain": ("explain", "Explain the served model: feature importances and shape functions."),
    "validate": ("validate", "Apply the gates against the baseline; exit 1 when one fails."),
{%- endif %}
}


@app.callback()
def _setup(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("mlflow", "alembic", "urllib3", "skl2onnx", "git", "dvc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fail(message: str) -> typer.Exit:
    typer.secho(f"ERROR: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def _stage(module: str) -> Callable[[], None]:
    def command() -> None:
        stage = importlib.import_module(f"{__package__}.stages.{module}")
        try:
            stage.run(Params.load(), Paths())
        except StageError as error:
            raise _fail(str(error)) from None

    return command


for _name, (_module, _help) in STAGES.items():
    app.command(_name, help=_help)(_stage(_module))


@app.command()
def baseline(
    ref: Annotated[
        str | None, typer.Option(help="Git ref of the baseline model; none: no baseline.")
    ] = None,
) -> None:
    """Fetch the baseline (the model at REF, or its metrics) into baseline/ for validate."""
    from .baseline import fetch

    found = fetch(ref, Paths())
    typer.echo(f"Baseline: {found.source}: {found.note}")


@app.command()
def lineage(
    output: Annotated[Path | None, typer.Option(help="Write to this file, not stdout.")] = None,
) -> None:
    """Print the versioned JSON that CI/CD consumes: model, verdict, metrics, lineage."""
    from .lineage import lineage as describe

    try:
        text = json.dumps(describe(Paths()), indent=2, sort_keys=True)
    except (StageError, ValueError) as error:
        raise _fail(str(error)) from None
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface; default SERVE_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port; default SERVE_PORT.")] = None,
    model_dir: Annotated[
        Path | None, typer.Option(help="Bundle written by export; default SERVE_MODEL_DIR.")
    ] = None,
) -> None:
    """Serve the ONNX model over HTTP; options override the SERVE_* environment variables."""
    from .serve.__main__ import run
    from .serve.settings import ServeSettings

    given = {"host": host, "port": port, "model_dir": model_dir}
    run(ServeSettings(**{name: value for name, value in given.items() if value is not None}))


@app.command()
def smoke(
    url: Annotated[
        str | None, typer.Option(help="Server to test; default: start one locally.")
    ] = None,
    model_dir: Annotated[Path, typer.Option(help="Bundle holding example.json.")] = Paths.bundle,
    deadline: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 30.0,
    model_name: Annotated[
        str | None, typer.Option(help="The model's name on /v2 (default: the project's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON.")] = False,
) -> None:
    """Smoke-test a server (this project's, or Triton): ready, example predictions, bad requests."""
    from .serve.bundle import EXAMPLE_FILE
    from .serve.settings import ServeSettings
    from .smoke import SmokeTestError, free_port, smoke_test

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
        name = ServeSettings.model_fields["model_name"].default
        result = smoke_test(url, model_dir / EXAMPLE_FILE, model_name or name, deadline)
    except SmokeTestError as error:
        raise _fail(f"smoke test of {url} failed: {error}") from None
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    v2, v2_bad = result["v2_request"], result["v2_bad_request"]
    typer.echo(f"Smoke test of {url} ({result['server']} server): ready after "
               f"{result['ready_after_seconds']} s")  # fmt: skip
    typer.echo(f"  v2 infer     -> {v2['status']}, labels {v2['labels']} as expected")
    typer.echo(f"  v2 bad       -> {v2_bad['status']}, {v2_bad['error']}")
    if "good_request" in result:
        good, bad = result["good_request"], result["bad_request"]
        problem = bad["detail"][0]
        typer.echo(f"  good request -> {good['status']}, the same labels")
        typer.echo(
            f"  bad request  -> {bad['status']}, {'.'.join(map(str, problem['loc']))}: "
            f"{problem['msg']}"
        )


@app.command()
def summary() -> None:
    """Print metrics, gate verdicts and where the artifacts are."""
    from .files import read_json
    from .verdict import Verdict

    paths = Paths()
    verdict = Verdict.from_json(read_json(paths.verdict))
    typer.echo("Metrics (test split):")
    for name, value in sorted(verdict.metrics.items()):
        typer.echo(f"  {name:<12} {value:.4f}")
    typer.echo(f"Baseline: {verdict.baseline.note or 'none'}")
    typer.echo("Gates:")
    for gate in verdict.gates:
        typer.echo(f"  {gate.name:<12} {gate.status:<14} {gate.detail}")
    typer.echo(f"Verdict: {'PASSED' if verdict.passed else 'REJECTED'}")
    typer.echo("Artifacts:")
    for path in (paths.bundle, *paths.artifacts[1:]):
        typer.echo(f"  {path}/")
    if paths.mlflow_run.exists():
        typer.echo(
            f"MLflow run: {paths.mlflow_run.read_text().strip()} "
            f"(mlflow ui --backend-store-uri sqlite:///{paths.mlflow}/mlflow.db)"
        )
