"""Serving benchmark: a generated project's server against the ecosystem's, same ONNX model.

Contenders, each one worker process, each sent the same request over and over by the same
load generator (wrk, one thread, so the server keeps the other core):
- this project's server on ``/predict``, and on the Open Inference Protocol's
  ``/v2/models/<name>/infer`` with JSON tensors and with binary tensors;
- ``mlflow models serve`` of the MLflow run's model;
- a FastAPI app written the way FastAPI's documentation shows (``async def``, pydantic rows);
- a BentoML 1.4 service (benchmarks/bentoml_service.py, from .venv/bench);
- a real Triton 2.51 (nvidia-pytriton's bundle, from .venv/interop) serving the exported
  model repository through its python backend, JSON and binary tensors;
- an empty ASGI app on the generated server's HTTP stack: the ceiling of any Python app here;
- the same app and the empty app under granian, an HTTP server written in Rust, to see whether
  it would raise that ceiling (benchmarks/granian_app.py).
Single-row requests by default, or batches of ``--rows`` rows (then rows/s too, beside
onnxruntime called in-process with no HTTP at all). Each load runs ``--repeats`` times; the
table shows medians and the spread (lowest to highest).

Usage, from the template repository after `make demo` (which bakes and reproduces the
default project into build/): `make bench`, or
    python benchmarks/serve_vs_mlflow.py --project build/my-ml-project [--rows 1000]
Needs wrk (Debian/Ubuntu: apt-get install wrk), the project installed in this Python with its
train extra (MLflow, FastAPI), and `make install-bench` for the BentoML and Triton contenders.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BUNDLE = Path("models/serving")
TRITON_REPOSITORY = Path("models/triton")
RUN_ID_FILE = Path("mlflow/last_run_id")
HERE = Path(__file__).resolve().parent
TEMPLATE = HERE.parent
BENTOML_PYTHON = TEMPLATE / ".venv" / "bench" / "bin" / "python"
TRITON_PYTHON = TEMPLATE / ".venv" / "interop" / "bin" / "python"
TRITON_SERVER = TEMPLATE / "tests" / "clients" / "triton_server.py"
OUTPUTS = ("label", "probabilities")
EMPTY_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await receive()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})
"""
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Load:
    """One request, sent over and over: where to, its body and headers."""

    key: str
    label: str
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))


@dataclass(frozen=True)
class Server:
    """How to start one contender, and the loads it gets."""

    port: int
    command: list[str]
    ready_path: str
    loads: list[Load]
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    """One load's numbers over its repeats."""

    key: str
    server: str
    requests_per_second: list[float]
    p50_ms: list[float]
    p99_ms: list[float]
    errors: int

    @property
    def median(self) -> float:
        """Median requests per second."""
        return statistics.median(self.requests_per_second)


def wait_for(url: str, deadline: float = 60.0) -> float:
    """Seconds until ``url`` answers 200."""
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                if reply.status == 200:
                    return time.monotonic() - started
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"{url} not ready after {deadline} s")


def wrk(
    load: Load, url: str, seconds: int, connections: int
) -> tuple[float, dict[str, float], int]:
    """Run wrk with the load's body and headers: requests/s, latency percentiles (ms), errors."""
    with tempfile.TemporaryDirectory() as scratch:
        body = Path(scratch, "body")
        body.write_bytes(load.body)
        headers = "".join(
            f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in load.headers.items()
        )
        script = Path(scratch, "load.lua")
        script.write_text(
            f'wrk.method = "POST"\n{headers}'
            f'local file = io.open({json.dumps(str(body))}, "rb")\n'
            'wrk.body = file:read("*a")\nfile:close()\n'
        )
        command = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
        ]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    percentiles = {
        p: _ms(re.search(rf"^\s+{p}%\s+([\d.]+\w+)", output, re.M).group(1)) for p in ("50", "99")
    }
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return rps, percentiles, int(errors.group(1)) if errors else 0


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def answered(url: str, load: Load) -> None:
    """Send the load's request once: a contender that refuses it would be measured refusing."""
    call = urllib.request.Request(url, data=load.body, headers=load.headers)
    try:
        with urllib.request.urlopen(call, timeout=30) as reply:
            reply.read()
    except urllib.error.HTTPError as error:
        sys.exit(f"{load.label}: {url} answered {error.code}: {error.read()[:500]!r}")


def measure(server: Server, args: argparse.Namespace, env: dict) -> list[Result]:
    """Start a server, then for each of its loads: check, warm up, load it ``repeats`` times."""
    local = f"http://127.0.0.1:{server.port}"
    process = subprocess.Popen(
        server.command, env={**env, **server.env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    results = []
    try:
        wait_for(local + server.ready_path, deadline=180)
        for load in server.loads:
            url = local + load.path
            answered(url, load)
            wrk(load, url, 2, args.connections)
            runs = [wrk(load, url, args.duration, args.connections) for _ in range(args.repeats)]
            results.append(
                Result(
                    load.key, load.label, [rps for rps, _, _ in runs],
                    [latency["50"] for _, latency, _ in runs],
                    [latency["99"] for _, latency, _ in runs], sum(e for _, _, e in runs),
                )
            )  # fmt: skip
            print(f"  {load.label}: {results[-1].median:.0f} req/s", flush=True)
    finally:
        process.terminate()
        process.wait(timeout=60)
    return results


def ready_time(package: str, env: dict, attempts: int = 5) -> list[float]:
    """Seconds from process start to /ready answering 200, for several cold starts."""
    port = free_port()
    env = {**env, "SERVE_PORT": str(port)}
    times = []
    for _ in range(attempts):
        started = time.monotonic()
        server = subprocess.Popen(
            [sys.executable, "-m", f"{package}.serve"], env=env, stderr=subprocess.DEVNULL
        )
        try:
            wait_for(f"http://127.0.0.1:{port}/ready")
            times.append(time.monotonic() - started)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return times


def free_port() -> int:
    """A local TCP port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def json_inputs(tensors: list[dict[str, Any]]) -> bytes:
    """An Open Inference Protocol request body of JSON ``tensors``."""
    return json.dumps({"inputs": tensors}).encode()


def binary_tensors(tensors: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    """JSON ``tensors`` sent with the binary tensor data extension, both ways, and the headers."""
    inputs, blobs = [], []
    for tensor in tensors:
        values = tensor["data"]
        if tensor["datatype"] == "BYTES":
            encoded = [value.encode() for value in values]
            blob = b"".join(struct.pack("<I", len(value)) + value for value in encoded)
        else:
            blob = np.asarray(values, dtype="<f4").tobytes()
        blobs.append(blob)
        described = {key: value for key, value in tensor.items() if key != "data"}
        inputs.append({**described, "parameters": {"binary_data_size": len(blob)}})
    outputs = [{"name": name, "parameters": {"binary_data": True}} for name in OUTPUTS]
    header = json.dumps({"inputs": inputs, "outputs": outputs}).encode()
    headers = {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(header)),
    }
    return header + b"".join(blobs), headers


def v2_loads(owner: str, label: str, path: str, tensors: list[dict[str, Any]]) -> list[Load]:
    """The JSON and the binary Open Inference Protocol request to one server."""
    body, headers = binary_tensors(tensors)
    return [
        Load(f"{owner}-v2-json", f"{label}, v2 JSON", path, json_inputs(tensors)),
        Load(f"{owner}-v2-binary", f"{label}, v2 binary", path, body, headers),
    ]


def contenders(
    package: str, name: str, rows: list[dict], scratch: Path, chosen: Sequence[str]
) -> list[Server]:
    """Every contender the arguments chose, each with its loads and its own port.

    A port each: a server that has exited may leave a child behind on its port for a while
    (pytriton's tritonserver does).
    """
    port = {key: free_port() for key in CONTENDERS}

    def uvicorn(key: str, folder: Path, app: str) -> list[str]:
        """The command of an ASGI app on the generated server's HTTP stack."""
        command = [sys.executable, "-m", "uvicorn", "--port", str(port[key]), "--no-access-log"]
        command += ["--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]
        return [*command, "--app-dir", str(folder), app]

    def granian(key: str, folder: Path, app: str) -> list[str]:
        """The command of an ASGI app under granian: one worker, one runtime thread."""
        command = [sys.executable, "-m", "granian", "--interface", "asgi", "--port", str(port[key])]
        command += ["--workers", "1", "--runtime-threads", "1", "--loop", "uvloop", "--no-ws"]
        return [*command, "--log-level", "warning", "--working-dir", str(folder), app]

    ours = json.dumps({"rows": rows}).encode()
    # The rows as v2 tensors, built by the project's smoke test: the requests its CI sends.
    shapes = importlib.import_module(f"{package}.serve.model").OnnxModel.load(BUNDLE).shapes
    tensors = importlib.import_module(f"{package}.smoke").tensors(rows, shapes)
    infer = f"/v2/models/{name}/infer"
    # MLflow's ONNX flavour takes each input as nested lists of the tensor's shape ([N, 1] for
    # a feature); JSON numbers must be floats.
    mlflow_inputs = {
        tensor["name"]: np.asarray(
            [value if isinstance(value, str) else float(value) for value in tensor["data"]],
            dtype=object,
        )
        .reshape(tensor["shape"])
        .tolist()
        for tensor in tensors
    }
    run_id = RUN_ID_FILE.read_text().strip()
    mlflow = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"runs:/{run_id}/model"]
    mlflow += ["--env-manager", "local", "-w", "1", "-p", str(port["mlflow"])]
    bentoml = [str(BENTOML_PYTHON), "-m", "bentoml", "serve", "bentoml_service:Classifier"]
    bentoml += ["--port", str(port["bentoml"]), "--working-dir", str(HERE)]
    triton = [str(TRITON_PYTHON), str(TRITON_SERVER), str(TRITON_REPOSITORY.resolve()), name]
    triton += [str(port["triton"]), str(free_port()), str(free_port())]
    servers = {
        "ours": Server(
            port["ours"], [sys.executable, "-m", f"{package}.serve"], "/ready",
            [Load("ours-predict", "this project, /predict", "/predict", ours),
             *v2_loads("ours", "this project", infer, tensors)],
            {"SERVE_PORT": str(port["ours"])},
        ),
        "fastapi": Server(
            port["fastapi"], uvicorn("fastapi", HERE, "fastapi_reference:app"), "/ready",
            [Load("fastapi", "FastAPI async def + onnxruntime", "/predict", ours)],
        ),
        "bentoml": Server(
            port["bentoml"], bentoml, "/readyz",
            [Load("bentoml", "BentoML 1.4 service", "/predict", ours)],
            {"BENTOML_DO_NOT_TRACK": "True", "BENTOML_HOME": str(scratch / "bentoml")},
        ),
        "triton": Server(
            port["triton"], triton, f"/v2/models/{name}/ready",
            v2_loads("triton", "Triton 2.51 (pytriton)", infer, tensors),
        ),
        "mlflow": Server(
            port["mlflow"], mlflow, "/ping",
            [Load("mlflow", "mlflow models serve", "/invocations",
                  json.dumps({"inputs": mlflow_inputs}).encode())],
        ),
        "empty": Server(
            port["empty"], uvicorn("empty", scratch, "empty_app:app"), "/",
            [Load("empty", "empty ASGI app (ceiling)", "/", ours)],
        ),
        "granian": Server(
            port["granian"], granian("granian", HERE, "granian_app:app"), "/ready",
            [Load("granian-predict", "this project on granian, /predict", "/predict", ours),
             Load("granian-v2-json", "this project on granian, v2 JSON", infer,
                  json_inputs(tensors))],
        ),
        "empty-granian": Server(
            port["empty-granian"], granian("empty-granian", scratch, "empty_app:app"), "/",
            [Load("empty-granian", "empty ASGI app on granian", "/", ours)],
        ),
    }  # fmt: skip
    return [servers[key] for key in chosen]


CONTENDERS = ("ours", "fastapi", "bentoml", "triton", "mlflow", "empty", "granian", "empty-granian")


def main() -> int:
    """Measure every contender and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of each load")
    parser.add_argument("--repeats", type=int, default=3, help="loads per contender; medians shown")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rows", type=int, default=1, help="rows per request (a batch)")
    parser.add_argument(
        "--contenders", default=",".join(CONTENDERS),
        help=f"comma-separated, from {','.join(CONTENDERS)} (ours and mlflow are always run)",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, help="also write the results as JSON")
    parser.add_argument("--project", type=Path, default=Path("build/my-ml-project"))
    args = parser.parse_args()
    chosen = [key for key in CONTENDERS if key in {"ours", "mlflow", *args.contenders.split(",")}]
    if args.output:
        args.output = args.output.resolve()
    answers = json.loads((args.project / ".cruft.json").read_text())["context"]["cookiecutter"]
    package = answers["package"]
    importlib.import_module(package)  # the project must be installed in this Python
    os.chdir(args.project)
    if not shutil.which("wrk"):
        sys.exit("wrk not found: install it (apt-get install wrk) and run again")
    if not (BUNDLE / "example.json").exists() or not RUN_ID_FILE.exists():
        sys.exit("no exported model or MLflow run: run `dvc repro` first")
    for key, python in (("bentoml", BENTOML_PYTHON), ("triton", TRITON_PYTHON)):
        if key in chosen and not python.exists():
            sys.exit(f"{python} is missing: run `make install-bench`, or leave out {key}")

    example = json.loads((BUNDLE / "example.json").read_text())["rows"]
    rows = (example * args.rows)[: args.rows]
    env = {**os.environ, "SERVE_LOG_LEVEL": "warning"}
    env["BENCH_PACKAGE"] = package
    # mlflow models serve starts `uvicorn` by name: this Python's scripts must come first.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["SERVE_MODEL_DIR"] = str(BUNDLE.resolve())
    env.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{Path('mlflow/mlflow.db').resolve()}")

    starts = ready_time(package, env)
    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch, "empty_app.py").write_text(EMPTY_APP)
        results = [
            result
            for server in contenders(package, answers["project"], rows, Path(scratch), chosen)
            for result in measure(server, args, env)
        ]
    report(results, starts, args, in_process_rows_per_second(package, rows))
    return 1 if any(result.errors for result in results) else 0


def in_process_rows_per_second(package: str, rows: list[dict], seconds: float = 2.0) -> float:
    """onnxruntime alone on the same rows, in this process: the floor no server goes below."""
    model = importlib.import_module(f"{package}.serve.model").OnnxModel.load(BUNDLE)
    feeds = model.feeds_from_rows(rows)
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.predict(feeds)
        calls += 1
    return calls * len(rows) / (time.perf_counter() - started)


def report(
    results: list[Result], starts: list[float], args: argparse.Namespace, floor: float
) -> None:
    """Print the table and the ratios; write JSON when asked."""
    shape = "single-row requests" if args.rows == 1 else f"{args.rows}-row requests"
    print(
        f"\n{args.connections} connections, {shape}, 1 worker each; "
        f"medians of {args.repeats} loads of {args.duration} s, spread lowest-highest\n"
    )
    print(
        f"{'server':<36} {'req/s':>9} {'spread':>13} {'rows/s':>10} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'errors':>6}"
    )
    for r in results:
        spread = f"{min(r.requests_per_second):.0f}-{max(r.requests_per_second):.0f}"
        print(
            f"{r.server:<36} {r.median:>9.0f} {spread:>13} {r.median * args.rows:>10.0f} "
            f"{statistics.median(r.p50_ms):>7.2f} {statistics.median(r.p99_ms):>7.2f} "
            f"{r.errors:>6}"
        )
    print(f"{'onnxruntime in-process, no HTTP':<36} {'':>9} {'':>13} {floor:>10.0f}")
    medians = {r.key: r.median for r in results}
    ours = medians["ours-predict"]
    ratios = {
        f"predict_vs_{key}": ours / medians[key]
        for key in ("mlflow", "fastapi", "bentoml", "triton-v2-json", "triton-v2-binary")
        if key in medians
    }
    ratios["v2_json_vs_predict"] = medians["ours-v2-json"] / ours
    ratios["v2_binary_vs_predict"] = medians["ours-v2-binary"] / ours
    for route in ("v2-json", "v2-binary"):  # the batch route: columns, not per-row objects
        ratios[f"{route.replace('-', '_')}_vs_mlflow"] = (
            medians[f"ours-{route}"] / medians["mlflow"]
        )
    if "empty" in medians:
        ratios["predict_vs_empty_app"] = ours / medians["empty"]
    if "granian-predict" in medians:
        ratios["granian_vs_uvicorn_predict"] = medians["granian-predict"] / ours
    if "empty-granian" in medians and "empty" in medians:
        ratios["granian_vs_uvicorn_empty_app"] = medians["empty-granian"] / medians["empty"]
    summary = {
        **ratios,
        "throughput_vs_mlflow": ratios["predict_vs_mlflow"],
        "p99_ms": statistics.median(next(r for r in results if r.key == "ours-predict").p99_ms),
        "rows_per_request": args.rows,
        "v2_json_rows_per_second": medians["ours-v2-json"] * args.rows,
        "v2_binary_rows_per_second": medians["ours-v2-binary"] * args.rows,
        "in_process_rows_per_second": floor,
        "ready_seconds_median": statistics.median(starts),
        "ready_seconds_max": max(starts),
    }
    print("\nratios of median req/s (predict_vs_X: this project's /predict over X):")
    for key, ratio in ratios.items():
        print(f"  {key:<26} {ratio:6.2f}x")
    print(
        f"this project's /predict: p99 {summary['p99_ms']:.2f} ms; ready after start: median "
        f"{summary['ready_seconds_median']:.2f} s, max {summary['ready_seconds_max']:.2f} s "
        f"({len(starts)} cold starts)"
    )
    if args.output:
        payload = {"results": [asdict(r) for r in results], "summary": summary}
        args.output.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
