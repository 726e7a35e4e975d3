"""The OpenAPI 3.1 document of the server, derived from the model's training schema.

``/predict`` takes exactly the rows the schema allows (the same validator serves requests), and
the Open Inference Protocol routes are described with the model's tensors, so clients can be
generated from ``GET /openapi.json`` and API fuzzers (schemathesis) can check the server.
A bundle with an encrypted endpoint adds its two routes.
"""

from __future__ import annotations

from typing import Any

from .encrypted import EncryptedRequest, LinearModel
from .open_inference import VERSION, Signature, model_metadata

REF = "#/components/schemas/{model}"
JSON = "application/json"


def _content(schema: dict[str, Any], kind: str = JSON) -> dict[str, Any]:
    return {"content": {kind: {"schema": schema}}}


def _answers(ok: dict[str, Any], errors: dict[int, str], error: str) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK", **ok}}
    for status, why in errors.items():
        answer: dict[str, Any] = {
            "description": why,
            **_content({"$ref": f"#/components/schemas/{error}"}),
        }
        if status == 405:
            answer["headers"] = {"Allow": {"schema": {"type": "string"}}}
        responses[str(status)] = answer
    return responses


def _encrypted_routes(get: Any) -> dict[str, Any]:
    """``GET /encrypted`` and ``POST /encrypted/predict`` (see :mod:`.encrypted`)."""
    logits = {
        "type": "object",
        "required": ["model_sha256", "logits"],
        "properties": {
            "model_sha256": {"type": "string"},
            "logits": {"type": "array", "items": {"type": "string", "format": "base64"}},
        },
    }
    return {
        "/encrypted": get(
            _content({"type": "object"}),
            "What a client needs to encrypt: inputs, classes, CKKS parameters",
            {503: "Not loaded"},
        ),
        "/encrypted/predict": {
            "post": {
                "summary": "Encrypted logits from CKKS ciphertexts of the encoded rows",
                "requestBody": {
                    "required": True,
                    **_content({"$ref": "#/components/schemas/EncryptedRequest"}),
                },
                "responses": _answers(
                    _content(logits),
                    {
                        400: "Not JSON",
                        405: "Method not allowed",
                        408: "Body too slow",
                        413: "Body too large",
                        415: "Not JSON content",
                        422: "Not a context or ciphertexts this model computes on",
                        503: "Not loaded or overloaded",
                    },
                    "Detail",
                ),
            }
        },
    }


def _json_of(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Move a pydantic JSON Schema's ``$defs`` into the components; return the rest."""
    defs.update(schema.pop("$defs", {}))
    return schema


def document(
    signature: Signature, name: str, max_rows: int, linear: LinearModel | None = None
) -> dict[str, Any]:
    """The whole document for a server of the signature's model under ``name``."""
    model = signature.model
    schemas: dict[str, Any] = {}
    request = _json_of(
        model.schema.request_adapter(max_rows).json_schema(ref_template=REF), schemas
    )
    infer = _json_of(signature.request.json_schema(ref_template=REF), schemas)
    classes = [str(cls) for cls in model.classes]
    metadata = model_metadata(model, name)
    schemas.update(
        {
            "PredictRequest": request,
            "PredictResponse": {
                "type": "object",
                "required": ["model_sha256", "predictions"],
                "properties": {
                    "model_sha256": {"type": "string"},
                    "predictions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["label", "probabilities"],
                            "properties": {
                                "label": {"enum": model.classes},
                                "probabilities": {
                                    "type": "object",
                                    "required": classes,
                                    "properties": {cls: {"type": "number"} for cls in classes},
                                    "additionalProperties": False,
                                },
                            },
                        },
                    },
                },
            },
            "Detail": {"type": "object", "required": ["detail"], "properties": {"detail": {}}},
            "InferenceRequest": infer,
            "InferenceResponse": {
                "type": "object",
                "required": ["model_name", "model_version", "outputs"],
                "properties": {
                    "model_name": {"const": name},
                    "model_version": {"type": "string"},
                    "id": {"type": "string"},
                    "parameters": {"type": "object"},
                    "outputs": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/OutputTensor"},
                    },
                },
            },
            "OutputTensor": {
                "type": "object",
                "required": ["name", "datatype", "shape"],
                "properties": {
                    "name": {"enum": [output["name"] for output in metadata["outputs"]]},
                    "datatype": {"enum": ["INT64", "FP32"]},
                    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                    "data": {"type": "array", "items": {"type": "number"}},
                    "parameters": {"type": "object"},
                },
            },
            "ModelMetadata": {
                "type": "object",
                "required": ["name", "versions", "platform", "inputs", "outputs"],
                "properties": {key: {} for key in metadata},
            },
            "ServerMetadata": {
                "type": "object",
                "required": ["name", "version", "extensions"],
                "properties": {
                    "name": {"type": "string"},
                    "version": {"type": "string"},
                    "extensions": {"type": "array", "items": {"type": "string"}},
                },
            },
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            },
            "Status": {
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"type": "string"}},
            },
        }
    )
    status = _content({"$ref": "#/components/schemas/Status"})
    empty = {"content": {"text/plain": {"schema": {"type": "string", "maxLength": 0}}}}
    not_ready = {"description": "Not ready", **empty}
    rejected = {
        400: "Malformed request",
        404: "Unknown model or version",
        405: "Method not allowed",
    }
    # The served name and version: other values are answered 404, which the document says.
    model_path = [{"name": "name", "in": "path", "required": True, "schema": {"enum": [name]}}]
    versioned = [
        *model_path,
        {"name": "version", "in": "path", "required": True, "schema": {"enum": [VERSION]}},
    ]

    def get(
        ok: dict[str, Any],
        summary: str,
        errors: dict[int, str] | None = None,
        error: str = "Detail",
    ) -> dict[str, Any]:
        return {
            "get": {
                "summary": summary,
                "responses": _answers(ok, {405: "Method not allowed", **(errors or {})}, error),
            }
        }

    def model_routes(prefix: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
        ready = get(empty, "Whether the model is ready (by status)", rejected, "Error")
        ready["get"]["responses"]["400"] = not_ready
        return {
            prefix: {
                "parameters": parameters,
                **get(
                    _content({"$ref": "#/components/schemas/ModelMetadata"}),
                    "Model metadata",
                    {**rejected, 503: "Model not loaded"},
                    "Error",
                ),
            },
            f"{prefix}/ready": {"parameters": parameters, **ready},
            f"{prefix}/infer": {
                "parameters": parameters,
                "post": {
                    "summary": "Predict from tensors (Open Inference Protocol)",
                    "requestBody": {
                        "required": True,
                        **_content({"$ref": "#/components/schemas/InferenceRequest"}),
                    },
                    "responses": _answers(
                        _content({"$ref": "#/components/schemas/InferenceResponse"}),
                        {
                            **rejected,
                            408: "Body too slow",
                            413: "Body too large",
                            415: "Compressed body",
                            503: "Not loaded or overloaded",
                        },
                        "Error",
                    ),
                },
            },
        }

    ready_v2 = get(empty, "Whether the server is ready (by status)", error="Error")
    ready_v2["get"]["responses"]["400"] = not_ready
    paths: dict[str, Any] = {
        "/predict": {
            "post": {
                "summary": "Predict from rows of feature values",
                "requestBody": {
                    "required": True,
                    **_content({"$ref": "#/components/schemas/PredictRequest"}),
                },
                "responses": _answers(
                    _content({"$ref": "#/components/schemas/PredictResponse"}),
                    {
                        400: "Not JSON",
                        405: "Method not allowed",
                        408: "Body too slow",
                        413: "Body too large",
                        415: "Not JSON content",
                        422: "Rows break the schema",
                        503: "Not loaded or overloaded",
                    },
                    "Detail",
                ),
            }
        },
        "/health": get(status, "Liveness"),
        "/ready": get(status, "Readiness", {503: "Loading, or the model failed to load"}),
        "/metrics": get(
            {"content": {"text/plain": {"schema": {"type": "string"}}}}, "Prometheus metrics"
        ),
        "/version": get(_content({"type": "object"}), "Model hash, git sha and MLflow run"),
        "/openapi.json": get(_content({"type": "object"}), "This document"),
        "/v2": get(
            _content({"$ref": "#/components/schemas/ServerMetadata"}),
            "Server metadata",
            error="Error",
        ),
        "/v2/health/live": get(empty, "Liveness (by status)", error="Error"),
        "/v2/health/ready": ready_v2,
        **model_routes("/v2/models/{name}", model_path),
        **model_routes("/v2/models/{name}/versions/{version}", versioned),
    }
    if linear is not None:
        schemas["EncryptedRequest"] = _json_of(
            EncryptedRequest.model_json_schema(ref_template=REF), schemas
        )
        paths.update(_encrypted_routes(get))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": name,
            "version": model.sha256[:12],
            "description": __doc__.split("\n\n")[0],
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
