"""The generated server and its Triton model repository among other ecosystems' tools.

NVIDIA's ``tritonclient`` drives the Open Inference Protocol routes (JSON and binary tensors,
and the refusals); the same client gets the same predictions from a real tritonserver serving
the exported model repository; schemathesis fuzzes the server from its own ``/openapi.json``.
They live in ``.venv/interop`` (``make install``, from ``requirements-interop.txt``).
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
TRITON = Path(__file__).parent / "clients" / "triton_server.py"
NAME = "my-ml-project"  # the default model name: the project's name
# Every check on what the server answers; positive_data_acceptance is left out because a
# JSON Schema cannot say that each feature's tensor appears once with equal row counts.
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance,negative_data_rejection"
)


def answers(url: str) -> bool:
    """Whether ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 - a local test server
            return answer.status == 200
    except OSError:
        return False


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

    try:
        wait_until(lambda: answers(f"http://{address}/ready"), 30, "the generated server")
        yield address
    finally:
        process.terminate()
        process.wait(timeout=30)


def ask(address: str, project: Project) -> dict[str, Any]:
    """What tritonclient got from the server at ``address`` for the bundle's example rows.

    Its predictions, as JSON and as binary tensors, must be the ones export computed.
    """
    example_file = project.root / "models" / "serving" / "example.json"
    run = subprocess.run(
        [str(INTEROP / "python"), str(CLIENT), address, NAME, str(example_file)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = json.loads(run.stdout)
    assert (report["live"], report["ready"], report["model_ready"]) == (True, True, True)
    schema = json.loads((example_file.parent / "metadata.json").read_text())["schema"]
    assert {tensor["name"] for tensor in report["metadata"]["inputs"]} == set(schema["columns"])
    expected = json.loads(example_file.read_text())["predictions"]
    for encoding in ("json", "binary"):
        answer: dict[str, Any] = report[encoding]
        labels = [label[0] if isinstance(label, list) else label for label in answer["labels"]]
        assert labels == [one["label"] for one in expected]
        assert answer["id"] == "r1"
        for got, want in zip(answer["probabilities"], expected, strict=True):
            assert got == pytest.approx(list(want["probabilities"].values()), abs=1e-6)
    return report


def test_tritonclient_gets_the_exported_predictions_json_and_binary(
    server: str, reproduced: Project
) -> None:
    report = ask(server, reproduced)
    # The label is per row ([rows]), as the ONNX graph has it; Triton reshapes it the same way.
    assert all(isinstance(label, int) for label in report["json"]["labels"])
    errors = report["errors"]
    for case in ("wrong shape", "wrong datatype"):
        assert errors[case]["status"] == "400"
        assert f"input '{errors[case]['input']}'" in errors[case]["message"]
    assert "shape [3, 2]" in errors["wrong shape"]["message"]
    assert "datatype: Input should be 'FP32'" in errors["wrong datatype"]["message"]
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
        capture_output=True, text=True, check=False, cwd=tmp_path,  # its cache goes there
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:]
    cases = ET.parse(junit).getroot().iter("testcase")  # noqa: S314 - schemathesis's own report
    outcomes = {case.get("name"): [child.tag for child in case] for case in cases}
    assert len(outcomes) == operations == 15
    assert {tag for tags in outcomes.values() for tag in tags} <= {"system-out"}


def test_a_real_tritonserver_serves_the_exported_repository_with_the_same_predictions(
    reproduced: Project,
) -> None:
    """The repository ``export`` writes, in tritonserver 2.51 (nvidia-pytriton's bundle).

    That bundle has only the python backend, so the model runs through onnxruntime inside
    it; ``triton_server.py`` parses ``config.pbtxt`` with Triton's ``model_config_pb2``,
    checks it against the ONNX graph and binds exactly its tensors and batching.
    """
    repository = reproduced.root / "models" / "triton"
    config = (repository / NAME / "config.pbtxt").read_text()
    assert (repository / NAME / "1" / "model.onnx").read_bytes() == (
        reproduced.root / "models" / "serving" / "model.onnx"
    ).read_bytes()
    ports = [str(free_port()) for _ in range(3)]
    process = subprocess.Popen(
        [str(INTEROP / "python"), str(TRITON), str(repository), NAME, *ports],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    address = f"127.0.0.1:{ports[0]}"
    try:
        parsed = json.loads(process.stdout.readline())  # the config, as Triton's schema read it
        wait_until(lambda: answers(f"http://{address}/v2/models/{NAME}/ready"), 120, "tritonserver")
        report = ask(address, reproduced)
        # The project's own smoke test, unchanged, judges Triton as it judges its server.
        smoked = json.loads(reproduced.cli("smoke", "--url", f"http://{address}", "--json").stdout)
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert parsed["platform"] == "onnxruntime_onnx"
    assert parsed["maxBatchSize"] == 1000
    assert [t["name"] for t in parsed["input"]] == [t["name"] for t in report["metadata"]["inputs"]]
    assert "instance_group [ { count: 1 kind: KIND_CPU } ]" in config
    expected = json.loads((reproduced.root / "models/serving/example.json").read_text())
    assert smoked["server"] == "another Open Inference Protocol server"
    assert smoked["v2_request"] == {
        "status": 200,
        "labels": [one["label"] for one in expected["predictions"]],
    }
    assert smoked["v2_bad_request"]["status"] == 400
    assert "good_request" not in smoked  # Triton has no /predict, and none was asked of it
    # The same refusals, in Triton's words: the client needs no change to talk to either.
    assert {case: error["status"] for case, error in report["errors"].items()} == {
        "wrong shape": "400",
        "wrong datatype": "400",
        "unknown model": "404",
    }
