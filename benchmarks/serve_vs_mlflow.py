"""Serving benchmark: a generated project's server against `mlflow models serve`, same ONNX model.

Also measured, for context: a minimal FastAPI app over the same model (what most teams write
first) and an empty ASGI app on the same HTTP stack (the ceiling any Python app can reach
here). Load comes from wrk (one thread, so the server keeps the other core); every server
gets one worker process and the same request, repeated: single-row by default, or a batch of
``--rows`` rows (then rows/s are reported too, beside onnxruntime called in-process with no
HTTP at all).

Usage, from the template repository after `make demo` (which bakes and reproduces the
default project into build/): `make bench`, or
    python benchmarks/serve_vs_mlflow.py --project build/my-ml-project [--duration 10]
Needs wrk (Debian/Ubuntu: apt-get install wrk), and the project installed in this Python
with its train extra (MLflow, FastAPI).
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
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

BUNDLE = Path("models/serving")
RUN_ID_FILE = Path("mlflow/last_run_id")
HERE = Path(__file__).resolve().parent
EMPTY_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await receive()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})
"""


@dataclass
class Result:
    """One server's numbers."""

    server: str
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int


@dataclass(frozen=True)
class Server:
    """How to start one contender and what to send it."""

    name: str
    command: list[str]
    ready_path: str
    predict_path: str
    body: dict


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
    url: str, body: dict, seconds: int, connections: int
) -> tuple[float, dict[str, float], int]:
    """Run wrk with a JSON POST body; return requests/s, latency percentiles (ms), errors."""
    script = (
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        handle.name,
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    Path(handle.name).unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    percentiles = {
        p: _ms(re.search(rf"^\s+{p}%\s+([\d.]+\w+)", output, re.M).group(1))
        for p in ("50", "90", "99")
    }
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return rps, percentiles, int(errors.group(1)) if errors else 0


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def measure(server: Server, port: int, args: argparse.Namespace, env: dict) -> Result:
    """Start a server, warm it up, load it with wrk, stop it."""
    local = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        server.command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(local + server.ready_path)
        url = local + server.predict_path
        wrk(url, server.body, 2, args.connections)  # warm-up
        rps, latency, errors = wrk(url, server.body, args.duration, args.connections)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return Result(server.name, rps, latency["50"], latency["90"], latency["99"], errors)


def ready_time(package: str, env: dict, port: int, attempts: int = 5) -> list[float]:
    """Seconds from process start to /ready answering 200, for several cold starts."""
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


def contenders(package: str, name: str, port: int, rows: list[dict], scratch: Path) -> list[Server]:
    """This project (both protocols), the FastAPI reference, MLflow, and the empty-app ceiling."""
    uvicorn = [sys.executable, "-m", "uvicorn", "--port", str(port), "--no-access-log"]
    uvicorn += ["--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]
    ours = {"rows": rows}
    v2 = {
        "inputs": [
            {"name": key, "datatype": "BYTES" if isinstance(value, str) else "FP32",
             "shape": [len(rows), 1], "data": [row[key] for row in rows]}
            for key, value in rows[0].items()
        ]
    }  # fmt: skip
    # MLflow's ONNX flavour takes one [N, 1] tensor per input; JSON numbers must be floats.
    tensors = {
        key: [[row[key] if isinstance(row[key], str) else float(row[key])] for row in rows]
        for key in rows[0]
    }
    run_id = RUN_ID_FILE.read_text().strip()
    mlflow = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"runs:/{run_id}/model"]
    mlflow += ["--env-manager", "local", "-w", "1", "-p", str(port)]
    return [
        Server(
            "this project", [sys.executable, "-m", f"{package}.serve"], "/ready", "/predict", ours
        ),
        Server(
            "this project, v2 infer",
            [sys.executable, "-m", f"{package}.serve"],
            "/ready",
            f"/v2/models/{name}/infer",
            v2,
        ),
        Server(
            "minimal FastAPI + onnxruntime",
            [*uvicorn, "--app-dir", str(HERE), "fastapi_reference:app"],
            "/ready",
            "/predict",
            ours,
        ),
        Server("mlflow models serve", mlflow, "/ping", "/invocations", {"inputs": tensors}),
        Server(
            "empty ASGI app (ceiling)",
            [*uvicorn, "--app-dir", str(scratch), "empty_app:app"],
            "/",
            "/",
            ours,
        ),
    ]


def main() -> int:
    """Measure every contender and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rows", type=int, default=1, help="rows per request (a batch)")
    parser.add_argument("--output", type=Path, help="also write the results as JSON")
    parser.add_argument("--project", type=Path, default=Path("build/my-ml-project"))
    args = parser.parse_args()
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

    example = json.loads((BUNDLE / "example.json").read_text())["rows"]
    rows = (example * args.rows)[: args.rows]
    port = free_port()
    env = {**os.environ, "SERVE_LOG_LEVEL": "warning", "SERVE_PORT": str(port)}
    env["BENCH_PACKAGE"] = package
    # mlflow models serve starts `uvicorn` by name: this Python's scripts must come first.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["SERVE_MODEL_DIR"] = str(BUNDLE)
    env.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{Path('mlflow/mlflow.db').resolve()}")

    starts = ready_time(package, env, port)
    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch, "empty_app.py").write_text(EMPTY_APP)
        results = [
            measure(server, port, args, env)
            for server in contenders(package, answers["project"], port, rows, Path(scratch))
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
    ours, v2, fastapi, mlflow, ceiling = results
    shape = "single-row requests" if args.rows == 1 else f"{args.rows}-row requests"
    print(f"\n{args.connections} connections, {shape}, {args.duration} s each, 1 worker\n")
    print(
        f"{'server':<32} {'req/s':>9} {'rows/s':>10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7}"
    )
    for r in results:
        print(
            f"{r.server:<32} {r.requests_per_second:>9.0f} "
            f"{r.requests_per_second * args.rows:>10.0f} {r.p50_ms:>8.2f} {r.p90_ms:>8.2f} "
            f"{r.p99_ms:>8.2f} {r.errors:>7}"
        )
    print(f"{'onnxruntime in-process, no HTTP':<32} {'':>9} {floor:>10.0f}")
    summary = {
        "throughput_vs_mlflow": ours.requests_per_second / mlflow.requests_per_second,
        "throughput_vs_fastapi": ours.requests_per_second / fastapi.requests_per_second,
        "v2_vs_predict": v2.requests_per_second / ours.requests_per_second,
        "ceiling_vs_mlflow": ceiling.requests_per_second / mlflow.requests_per_second,
        "p99_ms": ours.p99_ms,
        "rows_per_request": args.rows,
        "in_process_rows_per_second": floor,
        "ready_seconds_median": statistics.median(starts),
        "ready_seconds_max": max(starts),
    }
    print(
        f"\nthis project: {summary['throughput_vs_mlflow']:.1f}x MLflow's throughput, "
        f"{summary['throughput_vs_fastapi']:.1f}x minimal FastAPI's, p99 {ours.p99_ms:.2f} ms; "
        f"the empty app reaches {summary['ceiling_vs_mlflow']:.1f}x MLflow"
    )
    print(f"the v2 infer route: {summary['v2_vs_predict']:.2f}x /predict's throughput")
    print(
        f"ready after start: median {summary['ready_seconds_median']:.2f} s, "
        f"max {summary['ready_seconds_max']:.2f} s ({len(starts)} cold starts)"
    )
    if args.output:
        payload = {"results": [asdict(r) for r in results], "summary": summary}
        args.output.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
