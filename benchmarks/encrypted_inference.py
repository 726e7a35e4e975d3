"""Encrypted inference's cost: latency per row, bytes per request and context size.

Bakes the default project with `encryption.enabled`, runs its pipeline (the encrypted parity
gate included), starts its server, and in the project's own environment sends test rows
through the encrypted endpoint (`encrypted_client`: keys, encryption, `POST
/encrypted/predict`, decryption) and, for comparison, through `/predict` in plaintext: one row,
then batches up to a full ciphertext (4096 rows at the default parameters). Each size is
timed `--repeats` times; the table gives medians.

Usage, from the template repository:
    python benchmarks/encrypted_inference.py [--repeats 5] [--output F]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.baking import bake, edit_params, install
from tests.infra import free_port

SIZES = [1, 64, 4096]

# Runs inside the baked project. argv: server URL, repeats, sizes (JSON).
CLIENT = """
import json, statistics, sys, time, urllib.request
import pandas as pd
from my_ml_project.encrypted_client import Keys, encode, logits_of, request_body
from my_ml_project.serve.encrypted import Ckks, Input

url, repeats, sizes = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
test = pd.read_csv("data/prepared/test.csv").drop(columns=["approved"])
spec = json.load(urllib.request.urlopen(url + "/encrypted"))
inputs, ckks = [Input(**item) for item in spec["inputs"]], Ckks(**spec["ckks"])

def post(path, body):
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url + path, data=body, headers=headers)
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)

def timed(action):
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started

results = []
for size in sizes:
    rows = test.sample(size, replace=True, random_state=0)
    columns = rows.to_dict(orient="list")
    plain_body = json.dumps({"rows": rows.astype(object).to_dict(orient="records")}).encode()
    runs = []
    for _ in range(repeats):
        keys, keygen = timed(lambda: Keys(ckks))
        body, encrypt = timed(lambda: request_body(keys, encode(inputs, columns)))
        answer, server = timed(lambda: post("/encrypted/predict", body))
        _, decrypt = timed(lambda: logits_of(keys, answer))
        _, plain = timed(lambda: post("/predict", plain_body))
        runs.append({"keygen": keygen, "encrypt": encrypt, "request": server, "decrypt": decrypt,
                     "plaintext": plain, "request_bytes": len(body),
                     "response_bytes": len(json.dumps(answer)),
                     "context_bytes": len(keys.public_context())})
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    results.append({"rows": size, **median})
print(json.dumps(results))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed requests per size")
    parser.add_argument("--output", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        project = install(bake(Path(scratch)), Path(scratch, "venv"))
        edit_params(project.root, "encryption", enabled=True)
        project.dvc("repro")
        port = free_port()
        env = {
            **project.env,
            "SERVE_PORT": str(port),
            "SERVE_LOG_LEVEL": "warning",
            "SERVE_MAX_BATCH_ROWS": str(max(SIZES)),  # /predict takes the same batches
        }
        server = subprocess.Popen(
            [project.python, "-m", "my_ml_project.serve"], cwd=project.root, env=env
        )
        try:
            project.cli("smoke", "--url", f"http://127.0.0.1:{port}")  # waits until ready
            printed = project.run(
                project.python, "-c", CLIENT, f"http://127.0.0.1:{port}",
                str(args.repeats), json.dumps(SIZES),
            )  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=30)
        parity = json.loads((project.root / "metrics/encrypted_parity.json").read_text())
    results = json.loads(printed.stdout)
    print(
        f"\nencrypted parity on {parity['rows']} test rows: max logit error "
        f"{parity['max_abs_logit_error']:.2g}, label agreement {parity['label_agreement']:.2%}"
    )
    print(f"public context (parameters, no key): {results[0]['context_bytes']} bytes")
    print(
        f"\n{'rows':>5} {'keygen ms':>9} {'encrypt ms':>10} {'request ms':>10} "
        f"{'decrypt ms':>10} {'ms/row':>8} {'plain ms':>8} {'x plain':>8} {'request KB':>10} "
        f"{'answer KB':>9}"
    )
    for row in results:
        total = row["keygen"] + row["encrypt"] + row["request"] + row["decrypt"]
        print(
            f"{row['rows']:>5} {row['keygen'] * 1e3:>9.1f} {row['encrypt'] * 1e3:>10.1f} "
            f"{row['request'] * 1e3:>10.1f} {row['decrypt'] * 1e3:>10.1f} "
            f"{total * 1e3 / row['rows']:>8.3f} {row['plaintext'] * 1e3:>8.2f} "
            f"{total / row['plaintext']:>8.0f} {row['request_bytes'] / 1e3:>10.0f} "
            f"{row['response_bytes'] / 1e3:>9.0f}"
        )
    if args.output:
        args.output.write_text(json.dumps({"parity": parity, "sizes": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
