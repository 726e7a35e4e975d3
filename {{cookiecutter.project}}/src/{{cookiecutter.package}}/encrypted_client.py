"""The client of the encrypted endpoint: it makes the keys, encrypts rows, decrypts the logits.

The secret key lives in :class:`Keys` and never leaves it: requests carry the ciphertexts and a
context serialized with the parameters alone. The export stage runs the same round trip against
the server's own code (:func:`..serve.encrypted.evaluate`) on the test split, and the validate
stage gates the result, so the endpoint ships only if encrypted and plaintext predictions agree.

    from {{ cookiecutter.package }}.encrypted_client import predict
    predict("http://localhost:8080", [{"age": 41, "income": 52.0, ...}])
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tenseal as ts

from .serve.encrypted import Ckks, Input, LinearModel, evaluate


def parms_id(poly_modulus_degree: int, coeff_mod_bit_sizes: list[int]) -> list[int]:
    """SEAL's hash of the parameters, which the server checks every request's context against."""
    context = ts.context(
        ts.SCHEME_TYPE.CKKS, poly_modulus_degree, coeff_mod_bit_sizes=coeff_mod_bit_sizes
    )
    return list(context.data.seal_context().key_parms_id())


def encode(inputs: Sequence[Input], columns: Mapping[str, Sequence[Any]]) -> np.ndarray:
    """The encoded inputs of the rows, one array per input: numbers, and 0/1 per category.

    Raises:
        ValueError: a column is missing or holds a category the model does not know.
    """
    known: dict[str, set[str]] = {}
    for item in inputs:
        if item.category is not None:
            known.setdefault(item.column, set()).add(item.category)
    missing = sorted({item.column for item in inputs} - set(columns))
    if missing:
        raise ValueError(f"{missing[0]}: missing from the rows")
    for column, categories in known.items():
        unknown = {str(value) for value in columns[column]} - categories
        if unknown:
            raise ValueError(f"{column}: unknown categories {sorted(unknown)[:5]}")
    return np.array(
        [
            np.asarray(columns[item.column], dtype=np.float64)
            if item.category is None
            else np.array([str(value) == item.category for value in columns[item.column]], float)
            for item in inputs
        ]
    )


class Keys:
    """A fresh CKKS key pair for one model's parameters; the secret key stays in here."""

    def __init__(self, ckks: Ckks) -> None:
        """Generate the keys (~30 ms for 8192 slots)."""
        self._context = ts.context(
            ts.SCHEME_TYPE.CKKS,
            ckks.poly_modulus_degree,
            coeff_mod_bit_sizes=ckks.coeff_mod_bit_sizes,
        )
        self._context.global_scale = 2.0**ckks.scale_bits

    def public_context(self) -> bytes:
        """The parameters without any key: all the server needs to compute on ciphertexts."""
        return self._context.serialize(
            save_public_key=False,
            save_secret_key=False,
            save_galois_keys=False,
            save_relin_keys=False,
        )

    def encrypt(self, encoded: np.ndarray) -> list[bytes]:
        """One ciphertext per encoded input, holding that input of every row."""
        return [ts.ckks_vector(self._context, values.tolist()).serialize() for values in encoded]

    def decrypt(self, outputs: Sequence[bytes]) -> np.ndarray:
        """The logits, one array per output."""
        return np.array([ts.ckks_vector_from(self._context, data).decrypt() for data in outputs])


def request_body(keys: Keys, encoded: np.ndarray) -> bytes:
    """The JSON body of ``POST /encrypted/predict``."""
    payload = {
        "context": _text(keys.public_context()),
        "ciphertexts": [_text(data) for data in keys.encrypt(encoded)],
    }
    return json.dumps(payload).encode()


def logits_of(keys: Keys, response: Mapping[str, Any]) -> np.ndarray:
    """Decrypt the ``logits`` of the endpoint's JSON answer."""
    return keys.decrypt([base64.b64decode(text) for text in response["logits"]])


def predictions(logits: np.ndarray, classes: Sequence[Any]) -> tuple[list[Any], np.ndarray]:
    """Labels and class probabilities (rows x classes) from the decrypted logits.

    One output is the log-odds of the second class (sigmoid); several are softmax logits.
    """
    if len(logits) == 1:
        second = 1 / (1 + np.exp(-logits[0]))
        probabilities = np.column_stack([1 - second, second])
    else:
        shifted = np.exp(logits - logits.max(axis=0))
        probabilities = (shifted / shifted.sum(axis=0)).T
    return [classes[index] for index in probabilities.argmax(axis=1)], probabilities


def predict(url: str, rows: Sequence[Mapping[str, Any]], timeout: float = 60.0) -> list[Any]:
    """Labels for ``rows`` from the encrypted endpoint at ``url``: the server sees ciphertexts."""
    # The URL is the caller's own server, as in smoke.py.
    with urllib.request.urlopen(f"{url}/encrypted", timeout=timeout) as answer:  # noqa: S310
        spec = json.load(answer)
    inputs = [Input.model_validate(item) for item in spec["inputs"]]
    keys = Keys(Ckks.model_validate(spec["ckks"]))
    columns = {item.column: [row[item.column] for row in rows] for item in inputs}
    request = urllib.request.Request(  # noqa: S310
        f"{url}/encrypted/predict",
        data=request_body(keys, encode(inputs, columns)),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
        return predictions(logits_of(keys, json.load(answer)), spec["classes"])[0]


def parity(
    model: LinearModel, columns: Mapping[str, Sequence[Any]], served: Sequence[Any]
) -> dict[str, float]:
    """Encrypted against plaintext predictions on the same rows, through the server's code.

    The logit error is against the same linear model in float64 (what CKKS noise costs); the
    labels are against ``served``, the ONNX model's labels (what a plaintext client gets).
    """
    encoded = encode(model.inputs, columns)
    keys = Keys(model.ckks)
    slots = model.ckks.slots
    logits = np.concatenate(
        [
            _round_trip(model, keys, encoded[:, start : start + slots])
            for start in range(0, encoded.shape[1], slots)
        ],
        axis=1,
    )
    plain = np.asarray(model.weights) @ encoded + np.asarray(model.bias)[:, None]
    labels, _ = predictions(logits, model.classes)
    return {
        "max_abs_logit_error": float(np.abs(logits - plain).max()),
        "label_agreement": float(np.mean([a == b for a, b in zip(labels, served, strict=True)])),
        "rows": len(labels),
    }


def _round_trip(model: LinearModel, keys: Keys, encoded: np.ndarray) -> np.ndarray:
    """Encrypt, serialize as a request, compute as the server does, decrypt."""
    body = json.loads(request_body(keys, encoded))
    outputs = evaluate(
        model,
        base64.b64decode(body["context"]),
        [base64.b64decode(text) for text in body["ciphertexts"]],
    )
    return keys.decrypt(outputs)


def _text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
