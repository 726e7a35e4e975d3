"""``export``: the ONNX serving bundle, its parity with the native model, and its MLflow log.

Written by :mod:`..publish`, with a Triton model repository of the same ONNX file (see
:mod:`..model_repository`), and with ``encryption.enabled`` the linear model of the encrypted
endpoint with its parity (see :mod:`..serve.encrypted`).
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np

from .. import frameworks
from ..config import EncryptionParams, Params, Paths, StageError
from ..data import read_prepared
from ..files import write_json
from ..frameworks import Framework
from ..publish import EXAMPLE_ROWS, parity, publish
from ..schema import Schema
from ..serve.encrypted import LINEAR_FILE, Ckks, EncryptedRequestError, LinearModel, inputs
from ..serve.model import OnnxModel
from ..tracking import pipeline_run


def encrypted_endpoint(
    framework: Framework,
    native: Any,
    schema: Schema,
    encryption: EncryptionParams,
    columns: dict[str, Any],
    native_probabilities: np.ndarray,
    served: np.ndarray,
) -> tuple[LinearModel | None, dict[str, Any]]:
    """The linear model the encrypted endpoint serves, and its parity on the test rows.

    None, and the reason in the result, when encryption is off or the model is not linear:
    the framework offers no weights, or its probabilities are not the logistic (softmax) of
    them on the test rows.
    """
    if not encryption.enabled:
        return None, {"enabled": False}
    try:  # TenSEAL: only projects that encrypt need it
        from .. import encrypted_client
    except ModuleNotFoundError as error:
        raise StageError(
            f"params.yaml: encryption.enabled needs TenSEAL, which is not installed ({error}); "
            "it has wheels for Python 3.11 and newer"
        ) from None
    form = framework.linear(native, schema)
    if form is not None:
        weights, bias = form
        plain = weights @ encrypted_client.encode(inputs(schema), columns) + bias[:, None]
        _, probabilities = encrypted_client.predictions(plain, schema.target.classes)
        form = form if np.abs(probabilities - native_probabilities).max() <= 1e-6 else None
    if form is None:
        reason = f"the {framework.NAME} model is not linear; encrypted inference needs one"
        return None, {"enabled": True, "applicable": False, "reason": reason}
    weights, bias = form
    ckks = Ckks(
        **encryption.model_dump(exclude={"enabled"}),
        parms_id=encrypted_client.parms_id(
            encryption.poly_modulus_degree, encryption.coeff_mod_bit_sizes
        ),
    )
    model = LinearModel(
        inputs=inputs(schema),
        classes=schema.target.classes,
        ckks=ckks,
        weights=weights.tolist(),
        bias=bias.tolist(),
    )
    try:
        result = encrypted_client.parity(model, columns, served)
    except EncryptedRequestError as error:  # e.g. a scale the moduli cannot rescale
        raise StageError(
            f"params.yaml: encryption: cannot compute on the test split: {error}"
        ) from None
    return model, {"enabled": True, "applicable": True, **result}


def run(params: Params, paths: Paths) -> None:
    """Write the serving bundle and the parity metrics; the validate stage gates parity."""
    framework = frameworks.load()
    schema = Schema.load(paths.schema)
    native = framework.load(paths.model)
    onnx_bytes = framework.to_onnx(native, schema)
    metadata = {"schema": schema.model_dump(mode="json"), "framework": framework.NAME}
    model = OnnxModel(onnx_bytes, metadata)

    features, _ = read_prepared(paths.test, schema)
    columns = {name: features[name].to_list() for name in schema.features}
    native_probabilities = framework.predict_proba(native, features)
    result = parity(model, native_probabilities, columns)
    served = model.predict_columns(columns).labels
    linear, encrypted = encrypted_endpoint(
        framework, native, schema, params.encryption, columns, native_probabilities, served
    )
    extra = {LINEAR_FILE: linear.model_dump(mode="json")} if linear else {}
    rows = features.head(EXAMPLE_ROWS).astype(object).to_dict(orient="records")
    publish(paths, model, onnx_bytes, rows, result, extra)
    write_json(paths.encrypted_parity, encrypted)
    if linear:
        with pipeline_run(paths):
            mlflow.log_metrics(
                {
                    f"encrypted_parity.{name}": encrypted[name]
                    for name in ("max_abs_logit_error", "label_agreement")
                }
            )
