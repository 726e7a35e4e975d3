"""The generated server speaks to other ecosystems' clients, from their own environment.

NVIDIA's ``tritonclient`` drives the Open Inference Protocol routes (JSON and binary tensors,
and the refusals), and schemathesis fuzzes the server from its own ``/openapi.json``. Both
live in ``.venv/interop`` (``make install``): tritonclient pins an older ml-dtypes than the
project's lock.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .baking import Project
from .infra import free_port, wait_until

pytestmark = pytest.mark.e2e

INTEROP = Path(__file__).resolve().parents[1] / ".venv" / "interop" / "bin"
CLIENT = Path(__file__).parent / "clients" / "triton_client.py"
NAME = "my-ml-project"  # the default model name: the project's name
# Every check on what the server answers; positive_data_acceptance is left out because a
# JSON Schema cannot say that each feature's tensor appears once with equal row counts.
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance,negative_data_rejection"
)


@pytest.fixture(scope="module")
def server(reproduced: Project) -> Iterator[str]:
    """The reproduced default project's server on a free port: its ``host:port``."""
    if not (INTEROP / "python").exists():
        pytest.fail(f"{INTEROP.parent} is missing: run make install")
    port = free_port()
    env = {**reproduced.env, "SERVE_PORT": str(port), "SERVE_LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        [reproduced.python, "-m", f"{reproduced.package}.serve"], cwd=reproduced.root, env=env
    )
    address = f"127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://{address}/ready", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    try:
        wait_until(ready, 30, "the generated server")
        yield address
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_tritonclient_gets_the_exported_predictions_json_and_binary(
    server: str, reproduced: Project
) -> None:
    example_file = reproduced.root / "models" / "serving" / "example.json"
    run = subprocess.run(
        [str(INTEROP / "python"), str(CLIENT), server, NAME, str(example_file)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = json.loads(run.stdout)
    assert (report["live"], report["ready"], report["model_ready"]) == (True, True, True)
    schema = json.loads((example_file.parent / "metadata.json").read_text())["schema"]
    assert {tensor["name"] for tensor in report["metadata"]["inputs"]} == set(schema["columns"])
    expected = json.loads(example_file.read_text())["predictions"]
    for encoding in ("json", "binary"):
        answer: dict[str, Any] = report[encoding]
        assert answer["labels"] == [one["label"] for one in expected]
        assert answer["id"] == "r1"
        for got, want in zip(answer["probabilities"], expected, strict=True):
            assert got == pytest.approx(list(want["probabilities"].values()), abs=1e-6)
    errors = report["errors"]
    for case in ("wrong shape", "wrong datatype"):
        assert errors[case]["status"] == "400"
        assert f"input '{errors[case]['input']}'" in errors[case]["message"]
    assert "shape [3, 2]" in errors["wrong shape"]["message"]
    assert "datatype INT64, expected FP32" in errors["wrong datatype"]["message"]
    assert errors["unknown model"] == {
        "status": "404",
        "message": f"unknown model 'zz-unknown'; this server serves '{NAME}'",
    }


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(
    server: str, tmp_path: Path
) -> None:
    with urllib.request.urlopen(f"http://{server}/openapi.json", timeout=5) as answer:
        document = json.loads(answer.read())
    operations = sum(
        1 for item in document["paths"].values() for method in item if method in ("get", "post")
    )
    junit = tmp_path / "junit.xml"
    run = subprocess.run(
        [
            str(INTEROP / "st"), "run", f"http://{server}/openapi.json", "--checks", CHECKS,
            "--max-examples", "25", "--workers", "1", "--seed", "1",
            "--report", "junit", "--report-junit-path", str(junit),
        ],
        capture_output=True, text=True, check=False,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:]
    cases = ET.parse(junit).getroot().iter("testcase")  # noqa: S314 - schemathesis's own report
    outcomes = {case.get("name"): [child.tag for child in case] for case in cases}
    assert len(outcomes) == operations == 15
    assert {tag for tags in outcomes.values() for tag in tags} <= {"system-out"}
