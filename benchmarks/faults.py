"""Fault script: how the demo project's server holds under abuse, in figures.

- slow bodies: 450 connections each declare a body just under the limit, send most of it
  and stall; peak RSS against the pod's 512 MiB limit, and /health latency meanwhile;
- saturation: 50 clients send valid 1,000-row requests for 10 s; /health latency meanwhile;
- SIGTERM: the burst of tests/drain.py (60 clients keep 1,000-row requests in flight, SIGTERM
  once the server's own ``predictions_in_flight`` gauge reads 50, stragglers around it);
  what happened to every request.

All traffic stays on 127.0.0.1 and every loop is bounded. Usage, after `make demo`:
    python benchmarks/faults.py --project build/my-ml-project
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.drain import burst

POD_LIMIT_MIB = 512


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(package: str, port: int, bundle: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SERVE_PORT": str(port), "SERVE_MODEL_DIR": str(bundle)}
    env["SERVE_LOG_LEVEL"] = "error"
    server = subprocess.Popen([sys.executable, "-m", f"{package}.serve"], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if get(port, "/ready")[0] == 200:
            return server
        time.sleep(0.1)
    raise RuntimeError("server not ready")


def get(port: int, path: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""


def post(port: int, body: bytes, timeout: float = 60) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    return response.status


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def health_prober(port: int, stop: threading.Event, latencies: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        status, _ = get(port, "/health", timeout=5)
        latencies.append((time.perf_counter() - started) * 1000 if status == 200 else 5000.0)
        time.sleep(0.02)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def slow_bodies(package: str, bundle: Path, limit: int) -> dict[str, float]:
    port = free_port()
    server = start(package, port, bundle)
    before = rss_mib(server.pid)
    sockets, peak, latencies, stop = [], before, [], threading.Event()
    prober = threading.Thread(target=health_prober, args=(port, stop, latencies))
    prober.start()
    head = (
        f"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {limit - 1}\r\n\r\n"
    ).encode()
    try:
        for _ in range(450):
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.sendall(head + b" " * (limit - 2))  # all but the last byte, then stall
            sockets.append(sock)
            peak = max(peak, rss_mib(server.pid))
        ends = time.monotonic() + 12  # past the 10 s body deadline
        while time.monotonic() < ends:
            peak = max(peak, rss_mib(server.pid))
            time.sleep(0.1)
        answered_408 = 0
        for sock in sockets:
            sock.settimeout(1)
            with contextlib.suppress(OSError):
                answered_408 += sock.recv(64).startswith(b"HTTP/1.1 408")
    finally:
        stop.set()
        prober.join()
        for sock in sockets:
            sock.close()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    return {
        "rss_before_mib": before,
        "rss_peak_mib": peak,
        "rss_peak_share_of_pod_limit": peak / POD_LIMIT_MIB,
        "answered_408": answered_408,
        "health_p99_ms": percentile(latencies, 0.99),
        "health_max_ms": max(latencies),
    }


def saturation(package: str, bundle: Path, body: bytes) -> dict[str, float]:
    port = free_port()
    server = start(package, port, bundle)
    latencies, stop, statuses = [], threading.Event(), []
    ends = time.monotonic() + 10

    def client() -> None:
        while time.monotonic() < ends:
            try:
                statuses.append(post(port, body))
            except OSError:
                statuses.append(0)

    workers = [threading.Thread(target=client) for _ in range(50)]
    prober = threading.Thread(target=health_prober, args=(port, stop, latencies))
    try:
        prober.start()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        stop.set()
        prober.join()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    return {
        "predictions_per_s": statuses.count(200) / 10,
        "shed_503": statuses.count(503),
        "failed": len(statuses) - statuses.count(200) - statuses.count(503),
        "health_p50_ms": statistics.median(latencies),
        "health_p99_ms": percentile(latencies, 0.99),
        "health_max_ms": max(latencies),
    }


def sigterm(package: str, bundle: Path, rows: list[dict[str, object]]) -> dict[str, object]:
    port = free_port()
    server = start(package, port, bundle)
    result = burst(port, rows, lambda: server.send_signal(signal.SIGTERM))
    server.wait(timeout=60)
    return {
        "in_flight_at_sigterm": result.in_flight_at_signal,
        **{f"{outcome} ({phase})": n for (outcome, phase), n in sorted(result.outcomes.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path("build/my-ml-project"))
    args = parser.parse_args()
    answers = json.loads((args.project / ".cruft.json").read_text())["context"]["cookiecutter"]
    package, bundle = answers["package"], (args.project / "models" / "serving").resolve()
    example = json.loads((bundle / "example.json").read_text())["rows"]
    rows = (example * 1000)[:1000]
    body = json.dumps({"rows": rows}).encode()
    schema = json.loads((bundle / "metadata.json").read_text())["schema"]
    sys.path.insert(0, str(args.project / "src"))
    from importlib import import_module

    limit = import_module(f"{package}.schema").Schema.model_validate(schema).request_bytes(1000)
    results = {
        "slow_bodies": slow_bodies(package, bundle, limit),
        "saturation": saturation(package, bundle, body),
        "sigterm": sigterm(package, bundle, rows),
    }
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
