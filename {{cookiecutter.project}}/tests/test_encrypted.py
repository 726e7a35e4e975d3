"""Encrypted inference: the client's round trip, the server's refusals, and the keys it never holds.

The linear model served here has seeded random weights over your schema's inputs, so these
tests hold for any framework; the gate on your own model's encrypted parity runs in export.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tenseal as ts
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from {{ cookiecutter.package }}.config import EncryptionParams, Paths
from {{ cookiecutter.package }}.encrypted_client import (
    Keys,
    encode,
    logits_of,
    parity,
    parms_id,
    predictions,
    request_body,
)
from {{ cookiecutter.package }}.schema import Schema
from {{ cookiecutter.package }}.serve.app import ServingApp
from {{ cookiecutter.package }}.serve.encrypted import (
    LINEAR_FILE,
    Ckks,
    LinearModel,
    inputs,
)
from {{ cookiecutter.package }}.serve.settings import ServeSettings
from {{ cookiecutter.package }}.tabular import fitted_on_bounds, folded, preprocessor

from .conftest import rebundle
from .test_serve_properties import call

DEFAULTS = EncryptionParams()


def ckks(**changed: Any) -> Ckks:
    chosen = DEFAULTS.model_dump(exclude={"enabled"}) | changed
    return Ckks(
        **chosen, parms_id=parms_id(chosen["poly_modulus_degree"], chosen["coeff_mod_bit_sizes"])
    )


@pytest.fixture(scope="module")
def columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in rows[0]}


@pytest.fixture(scope="module")
def linear(schema: Schema, columns: dict[str, list[Any]]) -> LinearModel:
    """Seeded random weights over your schema's inputs, for the first two classes.

    The decision boundary sits in the widest gap between the test rows' logits, scaled to 1
    from the nearest: both labels occur, and each is decided far beyond the CKKS noise.
    """
    encoded_inputs = inputs(schema)
    weights = np.random.default_rng(0).normal(size=len(encoded_inputs))
    ordered = np.sort(weights @ encode(encoded_inputs, columns))
    widest = int(np.diff(ordered).argmax())
    middle, half = (ordered[widest] + ordered[widest + 1]) / 2, np.diff(ordered)[widest] / 2
    return LinearModel(
        inputs=encoded_inputs,
        classes=schema.target.classes[:2],
        ckks=ckks(),
        weights=[(weights / half).tolist()],
        bias=[-middle / half],
    )


def noise_bound(logits: np.ndarray) -> float:
    """CKKS's error is relative to the values: 1e-3 of the largest logit, and at least 1e-3."""
    return 1e-3 * max(1.0, float(np.abs(logits).max()))


def served(paths: Paths, folder: Path, linear: LinearModel | None) -> ServingApp:
    """The exported model's bundle, with ``linear`` added when given: the endpoint on."""
    rebundle(paths, folder, extra={LINEAR_FILE: linear.model_dump(mode="json")} if linear else {})
    app = ServingApp(ServeSettings(model_dir=folder))
    app.load()
    assert app.model is not None, app.load_error
    return app


@pytest.fixture(scope="module")
def app(paths: Paths, linear: LinearModel, tmp_path_factory: pytest.TempPathFactory) -> ServingApp:
    return served(paths, tmp_path_factory.mktemp("encrypted"), linear)


def post(app: ServingApp, body: bytes, path: str = "/encrypted/predict") -> tuple[int, Any]:
    """``body`` to ``path`` through the ASGI app (GET for paths other than a predict route)."""
    status, content = call(app, "POST" if path.endswith("predict") else "GET", path, body)
    return status, json.loads(content)


def test_the_endpoint_answers_what_the_plaintext_model_says_and_only_the_client_can_read_it(
    app: ServingApp, linear: LinearModel, columns: dict[str, list[Any]]
) -> None:
    encoded = encode(linear.inputs, columns)
    keys = Keys(linear.ckks)
    status, answer = post(app, request_body(keys, encoded))
    assert status == 200, answer
    plain = np.asarray(linear.weights) @ encoded + np.asarray(linear.bias)[:, None]
    logits = logits_of(keys, answer)
    assert np.abs(logits - plain).max() < noise_bound(plain)
    labels = predictions(logits, linear.classes)[0]
    assert labels == predictions(plain, linear.classes)[0]
    assert set(labels) == set(linear.classes)
    # What the server holds, it cannot decrypt: the request's context carries no secret key.
    context = ts.context_from(base64.b64decode(json.loads(request_body(keys, encoded))["context"]))
    assert not context.has_secret_key()
    result = ts.ckks_vector_from(context, base64.b64decode(answer["logits"][0]))
    with pytest.raises(ValueError, match="doesn't hold a secret_key"):
        result.decrypt()


def test_the_spec_tells_a_client_everything_but_the_weights(
    app: ServingApp, linear: LinearModel
) -> None:
    status, spec = post(app, b"", "/encrypted")
    assert status == 200
    assert set(spec) == {"inputs", "classes", "ckks", "outputs", "max_rows"}
    assert spec["max_rows"] == DEFAULTS.poly_modulus_degree // 2
    assert [item["column"] for item in spec["inputs"]] == [item.column for item in linear.inputs]


def test_the_openapi_document_describes_the_endpoint_only_when_the_model_has_one(
    app: ServingApp, paths: Paths, tmp_path: Path
) -> None:
    encrypted = post(app, b"", "/openapi.json")[1]
    assert {"/encrypted", "/encrypted/predict"} <= set(encrypted["paths"])
    request = encrypted["components"]["schemas"]["EncryptedRequest"]
    assert request["required"] == ["context", "ciphertexts"]
    assert "422" in encrypted["paths"]["/encrypted/predict"]["post"]["responses"]
    plain = post(served(paths, tmp_path, None), b"", "/openapi.json")[1]
    assert not any(path.startswith("/encrypted") for path in plain["paths"])


def bodies(linear: LinearModel, columns: dict[str, list[Any]]) -> dict[str, tuple[bytes, str, int]]:
    """Broken requests, each with the field the answer must name and its status."""
    keys = Keys(linear.ckks)
    good = json.loads(request_body(keys, encode(linear.inputs, columns)))
    public, ciphertexts = good["context"], good["ciphertexts"]
    with_secret = ts.context(
        ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=DEFAULTS.coeff_mod_bit_sizes
    )
    with_secret.global_scale = 2.0**DEFAULTS.scale_bits
    other = Keys(ckks(poly_modulus_degree=4096, coeff_mod_bit_sizes=[40, 20, 40], scale_bits=20))
    coarse = Keys(ckks(scale_bits=25))
    shorter = Keys(linear.ckks).encrypt(
        encode(linear.inputs, {k: v[:1] for k, v in columns.items()})
    )

    def body(context: str = public, texts: list[str] = ciphertexts) -> bytes:
        return json.dumps({"context": context, "ciphertexts": texts}).encode()

    text = lambda data: base64.b64encode(data).decode()  # noqa: E731
    return {
        "secret key": (body(text(with_secret.serialize(save_secret_key=True))), "secret key", 422),
        "other parameters": (body(text(other.public_context())), "parameters differ", 422),
        "other scale": (body(text(coarse.public_context())), "global_scale", 422),
        "not a context": (body(text(b"not a context")), "TenSEAL context", 422),
        "one ciphertext short": (body(texts=ciphertexts[:-1]), "ciphertexts", 422),
        "random bytes": (
            body(texts=[text(np.random.default_rng(1).bytes(4000))] * len(ciphertexts)),
            "not a CKKS vector",
            422,
        ),
        "truncated": (
            body(texts=[text(base64.b64decode(c)[:100_000]) for c in ciphertexts]),
            "not a CKKS vector",
            422,
        ),
        "empty": (body(texts=[""] * len(ciphertexts)), "holds 0 rows", 422),
        "uneven rows": (body(texts=[*ciphertexts[:-1], text(shorter[-1])]), "same 1 to", 422),
        "not base64": (body(texts=["%%%"] * len(ciphertexts)), "ciphertexts", 422),
        "not JSON": (b"{", "Invalid JSON", 400),
    }


@pytest.mark.parametrize(
    "case",
    ["secret key", "other parameters", "other scale", "not a context", "one ciphertext short",
     "random bytes", "truncated", "empty", "uneven rows", "not base64", "not JSON"],
)  # fmt: skip
def test_the_endpoint_refuses_what_it_cannot_compute_on_with_the_field_at_fault(
    case: str, app: ServingApp, linear: LinearModel, columns: dict[str, list[Any]]
) -> None:
    body, named, expected = bodies(linear, columns)[case]
    status, answer = post(app, body)
    assert status == expected, answer
    assert named in json.dumps(answer["detail"])


@pytest.fixture(scope="module")
def valid(linear: LinearModel, columns: dict[str, list[Any]]) -> dict[str, Any]:
    return json.loads(request_body(Keys(linear.ckks), encode(linear.inputs, columns)))


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_mutated_contexts_and_ciphertexts_get_a_422_or_an_answer_never_a_500(
    data: st.DataObject, app: ServingApp, valid: dict[str, Any]
) -> None:
    """SEAL parses untrusted bytes here: random byte changes and cuts anywhere in the context
    or a ciphertext must never reach a 500 (or crash the process)."""
    body = json.loads(json.dumps(valid))
    field = data.draw(st.sampled_from(["context", "first", "last"]))
    index = {"first": 0, "last": -1}.get(field)
    raw = bytearray(
        base64.b64decode(body["context"] if index is None else body["ciphertexts"][index])
    )
    for position, value in data.draw(
        st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)), max_size=8)
    ):
        raw[position] = value
    raw = raw[: data.draw(st.just(len(raw)) | st.integers(0, len(raw)))]
    mutated = base64.b64encode(bytes(raw)).decode()
    if index is None:
        body["context"] = mutated
    else:
        body["ciphertexts"][index] = mutated
    status, answer = post(app, json.dumps(body).encode())
    assert status in (200, 422), answer


def test_a_body_beyond_every_ciphertext_and_the_context_is_refused_before_it_is_read(
    app: ServingApp, linear: LinearModel
) -> None:
    status, answer = post(app, b"x" * (linear.request_bytes() + 1))
    assert status == 413
    assert answer["detail"] == f"request body larger than {linear.request_bytes()} bytes"


def test_a_model_without_the_endpoint_says_how_to_get_one(paths: Paths, tmp_path: Path) -> None:
    status, answer = post(served(paths, tmp_path, None), b"", "/encrypted")
    assert (status, answer["detail"].split(":")[0]) == (404, "this model has no encrypted endpoint")


def test_parity_measures_the_noise_and_a_coarse_scale_breaks_it(
    linear: LinearModel, columns: dict[str, list[Any]]
) -> None:
    plain = np.asarray(linear.weights) @ encode(linear.inputs, columns)
    served = predictions(plain + np.asarray(linear.bias)[:, None], linear.classes)[0]
    fine = parity(linear, columns, served)
    assert fine["max_abs_logit_error"] < noise_bound(plain)
    assert (fine["label_agreement"], fine["rows"]) == (1.0, len(served))
    coarse = parity(linear.model_copy(update={"ckks": ckks(scale_bits=21)}), columns, served)
    assert coarse["max_abs_logit_error"] > 100 * fine["max_abs_logit_error"]


def test_probabilities_come_from_a_sigmoid_for_one_output_and_a_softmax_for_several() -> None:
    logit = np.array([[-2.0, 0.5, 3.0]])
    labels, sigmoid = predictions(logit, ["no", "yes"])
    assert labels == ["no", "yes", "yes"]
    both = np.vstack([np.zeros(3), logit[0]])
    assert np.allclose(predictions(both, ["no", "yes"])[1], sigmoid)
    assert np.allclose(sigmoid.sum(axis=1), 1.0)


def test_encoding_refuses_a_missing_column_and_unknown_categories(
    linear: LinearModel, columns: dict[str, list[Any]]
) -> None:
    column = linear.inputs[0].column
    with pytest.raises(ValueError, match=f"{column}: missing from the rows"):
        encode(linear.inputs, {name: values for name, values in columns.items() if name != column})
    for category in sorted({item.column for item in linear.inputs if item.category is not None}):
        with pytest.raises(ValueError, match=f"{category}: unknown categories \\['nowhere'\\]"):
            encode(linear.inputs, columns | {category: ["nowhere"] * len(columns[category])})


@pytest.mark.parametrize(
    "private", [False, True], ids=["standardized", "scaled by the schema's ranges"]
)
def test_a_logistic_regression_folds_into_weights_over_the_unscaled_inputs(
    private: bool,
    schema: Schema,
    bounded: Schema,
    training_split: pd.DataFrame,
    rows: list[dict[str, Any]],
) -> None:
    """Standardized (the default) or scaled by declared ranges (private training): both
    scalings fold into the weights, and the probabilities are the pipeline's."""
    used = bounded if private else schema
    features, target = training_split[used.features], training_split[used.target.name]
    preprocess = fitted_on_bounds(used) if private else preprocessor(used).fit(features)
    model = Pipeline([("preprocess", preprocess), ("classifier", LogisticRegression())])
    model.fit(features, target)
    classifier = model.steps[-1][1]
    weights, bias = folded(preprocess, classifier.coef_, classifier.intercept_, used)
    frame = pd.DataFrame(rows)
    logits = weights @ encode(inputs(used), frame.to_dict(orient="list")) + bias[:, None]
    probabilities = predictions(logits, used.target.classes)[1]
    assert np.abs(probabilities - model.predict_proba(frame)).max() < 1e-9
