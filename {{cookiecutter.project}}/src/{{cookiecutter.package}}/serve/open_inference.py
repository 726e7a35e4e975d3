"""The Open Inference Protocol (KServe v2, Triton's HTTP API) over the same model and batcher.

Tensors are columns: one input per feature, named like the feature, shape ``[rows, 1]`` (or
``[rows]``), ``FP32`` for numbers and ``BYTES`` for categories, which is the ONNX model's own
signature, so a Triton server of the same ``model.onnx`` takes the same requests. The schema's
contract still holds: ranges, integers and categories are checked, and each mistake is a 400
with ``{"error": ...}`` naming the input. Tensor data comes as JSON or, with the binary tensor
data extension, as raw little-endian bytes after the JSON header.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, TypeAdapter, ValidationError

from ..schema import CategoryColumn, NumericColumn
from .model import Feeds, OnnxModel, Prediction

VERSION = "1"  # the only version served; Triton's model repository calls it 1 as well
PLATFORM = "onnxruntime_onnx"
HEADER_LENGTH = b"inference-header-content-length"
OUTPUTS = ("label", "probabilities")
MAX_SHOWN = 3  # offending positions quoted per input
PATH = re.compile(r"/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?(?P<action>/\w+)?")


class ProtocolError(ValueError):
    """A request the protocol refuses: the HTTP status and the ``error`` message."""

    def __init__(self, message: str, status: int = 400) -> None:
        """Keep the status with the message."""
        super().__init__(message)
        self.status = status


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RequestInput(_Strict):
    """One input tensor of an infer request."""

    name: str
    shape: list[NonNegativeInt] = Field(min_length=1, max_length=2)
    datatype: str
    parameters: dict[str, Any] = {}
    data: list[Any] | None = None


class RequestOutput(_Strict):
    """An output the client asks for, and whether as binary data."""

    name: str
    parameters: dict[str, Any] = {}


class InferenceRequest(_Strict):
    """The JSON part of ``POST /v2/models/{name}/infer``."""

    id: str | None = None
    parameters: dict[str, Any] = {}
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None


_REQUEST = TypeAdapter(InferenceRequest)
_NUMBERS = TypeAdapter(list[Annotated[float, Field(strict=True, allow_inf_nan=False)]])
_STRINGS = TypeAdapter(list[Annotated[str, Field(strict=True)]])


@dataclass(frozen=True)
class Inference:
    """A parsed request: the model's feeds and how to answer."""

    feeds: Feeds
    id: str | None
    outputs: dict[str, bool]  # requested output -> as binary data


def route(path: str) -> tuple[str, str | None, str | None] | None:
    """``(route, model name, version)`` of a v2 path, or None for a path outside v2.

    The route is the path with its model and version replaced by placeholders, so metrics
    count ``/v2/models/{name}/infer`` however many names clients try.
    """
    if path in ("/v2", "/v2/health/live", "/v2/health/ready"):
        return path, None, None
    if (found := PATH.fullmatch(path)) is None or found["action"] not in (None, "/ready", "/infer"):
        return None
    versions = "/versions/{version}" if found["version"] else ""
    template = "/v2/models/{name}" + versions + (found["action"] or "")
    return template, found["name"], found["version"]


def datatype(dtype: type) -> str:
    """The v2 datatype of a model input's element type."""
    return "BYTES" if dtype is object else "FP32"


def model_metadata(model: OnnxModel, name: str) -> dict[str, Any]:
    """``GET /v2/models/{name}``: the model's tensors, and its classes and hash as parameters."""
    return {
        "name": name,
        "versions": [VERSION],
        "platform": PLATFORM,
        "inputs": [
            {"name": feature, "datatype": datatype(dtype), "shape": [-1, 1]}
            for feature, dtype in model.inputs.items()
        ],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(model.classes)]},
        ],
        "parameters": {"classes": model.classes, "model_sha256": model.sha256},
    }


def parse(body: bytes, header_length: bytes | None, model: OnnxModel, max_rows: int) -> Inference:
    """Check an infer request against the model's signature and the schema.

    Raises:
        ProtocolError: naming the input (or field) at fault.
    """
    header, blob = _split(body, header_length)
    try:
        request = _REQUEST.validate_json(header)
    except ValidationError as error:
        raise ProtocolError(_first_errors(error)) from None
    names = [item.name for item in request.inputs]
    if duplicated := sorted({name for name in names if names.count(name) > 1}):
        raise ProtocolError(f"input {duplicated[0]!r} appears more than once")
    if unknown := [name for name in names if name not in model.inputs]:
        raise ProtocolError(
            f"unknown input {unknown[0][:64]!r}; the model's inputs are {', '.join(model.inputs)}"
        )
    if missing := [name for name in model.inputs if name not in names]:
        raise ProtocolError(f"missing inputs: {', '.join(missing)}")
    rows = {item.shape[0] for item in request.inputs}
    if len(rows) > 1:
        raise ProtocolError(f"inputs disagree on the number of rows: {sorted(rows)}")
    count = rows.pop()
    if not 1 <= count <= max_rows:
        raise ProtocolError(f"a request holds 1 to {max_rows} rows; the inputs hold {count}")
    reader = _BinaryReader(blob)
    feeds = {
        item.name: _tensor(item, model, reader).reshape(-1, 1)
        for item in sorted(request.inputs, key=lambda item: list(model.inputs).index(item.name))
    }
    reader.finish()
    return Inference(feeds, request.id, _outputs(request))


def _split(body: bytes, header_length: bytes | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not header_length.isdigit() or not 0 < int(header_length) <= len(body):
        raise ProtocolError(
            f"Inference-Header-Content-Length must be 1 to {len(body)} (the body's size)"
        )
    return body[: int(header_length)], body[int(header_length) :]


def _first_errors(error: ValidationError) -> str:
    details = error.errors(include_url=False, include_input=False, include_context=False)
    shown = [
        f"{'.'.join(str(part)[:64] for part in item['loc']) or 'body'}: {item['msg']}"
        for item in details[:MAX_SHOWN]
    ]
    more = f" (and {len(details) - MAX_SHOWN} more)" if len(details) > MAX_SHOWN else ""
    return "; ".join(shown) + more


def _tensor(item: RequestInput, model: OnnxModel, reader: _BinaryReader) -> np.ndarray:
    name, expected = item.name, datatype(model.inputs[item.name])
    if item.datatype != expected:
        raise ProtocolError(f"input {name!r}: datatype {item.datatype[:16]}, expected {expected}")
    if item.shape[1:] not in ([], [1]):
        raise ProtocolError(f"input {name!r}: shape {item.shape}, expected [rows, 1] or [rows]")
    count = item.shape[0]
    size = item.parameters.get("binary_data_size")
    if size is not None:
        if item.data is not None:
            raise ProtocolError(f"input {name!r}: has both data and binary_data_size")
        values = reader.take(name, size, count, expected)
    elif item.data is None:
        raise ProtocolError(f"input {name!r}: no data (nor binary_data_size)")
    else:
        values = _json_values(name, item.data, expected)
    if len(values) != count:
        raise ProtocolError(
            f"input {name!r}: shape {item.shape} needs {count} values, got {len(values)}"
        )
    column = model.schema.columns[name]
    if isinstance(column, CategoryColumn):
        _check_categories(name, values, column)
        return np.asarray(values, dtype=object)
    array = np.asarray(values, dtype=np.float64)
    _check_numbers(name, array, column)
    return array.astype(np.float32)


def _json_values(name: str, data: list[Any], expected: str) -> Sequence[Any]:
    flat = [value for row in data for value in row] if data and isinstance(data[0], list) else data
    try:
        return (_STRINGS if expected == "BYTES" else _NUMBERS).validate_python(flat)
    except ValidationError as error:
        item = error.errors(include_url=False)[0]
        raise ProtocolError(f"input {name!r}: data[{item['loc'][0]}]: {item['msg']}") from None


def _positions(mask: np.ndarray) -> str:
    found = np.flatnonzero(mask)
    shown = ", ".join(map(str, found[:MAX_SHOWN]))
    return f"at {shown}{' ...' if len(found) > MAX_SHOWN else ''}"


def _check_numbers(name: str, values: np.ndarray, column: NumericColumn) -> None:
    if not np.isfinite(values).all():
        raise ProtocolError(f"input {name!r}: not finite {_positions(~np.isfinite(values))}")
    if column.type == "integer" and (fractional := values % 1 != 0).any():
        raise ProtocolError(
            f"input {name!r}: expected integers, fractions {_positions(fractional)}"
        )
    for label, bound, beyond in (
        ("below minimum", column.min, np.less),
        ("above maximum", column.max, np.greater),
    ):
        if bound is not None and (outside := beyond(values, bound)).any():
            raise ProtocolError(f"input {name!r}: {label} {bound:g} {_positions(outside)}")


def _check_categories(name: str, values: Sequence[Any], column: CategoryColumn) -> None:
    unknown = ~np.isin(np.asarray(values, dtype=object), column.categories)
    if unknown.any():
        raise ProtocolError(
            f"input {name!r}: unknown category {_positions(unknown)}; "
            f"expected one of {', '.join(column.categories)}"
        )


class _BinaryReader:
    """Binary tensor data: each input's bytes in turn, after the JSON header."""

    def __init__(self, blob: bytes) -> None:
        self.blob, self.offset = blob, 0

    def take(self, name: str, size: Any, count: int, expected: str) -> Sequence[Any]:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ProtocolError(f"input {name!r}: binary_data_size must be a byte count")
        if self.offset + size > len(self.blob):
            raise ProtocolError(f"input {name!r}: binary_data_size {size} runs past the body's end")
        chunk = self.blob[self.offset : self.offset + size]
        self.offset += size
        if expected == "FP32":
            if size != 4 * count:
                raise ProtocolError(
                    f"input {name!r}: {count} FP32 values take {4 * count} bytes, got {size}"
                )
            return np.frombuffer(chunk, dtype="<f4").astype(np.float64)
        return _strings(name, chunk)

    def finish(self) -> None:
        if self.offset != len(self.blob):
            raise ProtocolError(
                f"{len(self.blob) - self.offset} bytes of binary data belong to no input"
            )


def _strings(name: str, chunk: bytes) -> list[str]:
    """BYTES elements: each a 4-byte little-endian length, then that many UTF-8 bytes."""
    values, offset = [], 0
    while offset < len(chunk):
        if offset + 4 > len(chunk):
            raise ProtocolError(f"input {name!r}: BYTES element {len(values)} has a cut length")
        (length,) = struct.unpack_from("<I", chunk, offset)
        end = offset + 4 + length
        if end > len(chunk):
            raise ProtocolError(f"input {name!r}: BYTES element {len(values)} runs past its data")
        try:
            values.append(chunk[offset + 4 : end].decode("utf-8"))
        except UnicodeDecodeError:
            raise ProtocolError(
                f"input {name!r}: BYTES element {len(values)} is not UTF-8"
            ) from None
        offset = end
    return values


def _outputs(request: InferenceRequest) -> dict[str, bool]:
    binary = request.parameters.get("binary_data_output") is True
    if request.outputs is None:
        return dict.fromkeys(OUTPUTS, binary)
    wanted = {}
    for output in request.outputs:
        if output.name not in OUTPUTS:
            raise ProtocolError(
                f"unknown output {output.name[:64]!r}; the model's outputs are {', '.join(OUTPUTS)}"
            )
        wanted[output.name] = output.parameters.get("binary_data", binary) is True
    return wanted


def response(
    inference: Inference, prediction: Prediction, name: str, model: OnnxModel
) -> tuple[bytes, int | None]:
    """The infer response, and the JSON header's length when binary data follows it."""
    tensors = {
        "label": ("INT64", prediction.labels.astype("<i8")),
        "probabilities": ("FP32", prediction.probabilities.astype("<f4")),
    }
    outputs, blobs = [], []
    for output, binary in inference.outputs.items():
        kind, array = tensors[output]
        tensor: dict[str, Any] = {"name": output, "datatype": kind, "shape": list(array.shape)}
        if binary:
            blobs.append(array.tobytes())
            tensor["parameters"] = {"binary_data_size": len(blobs[-1])}
        else:
            tensor["data"] = array.ravel()
        outputs.append(tensor)
    answer: dict[str, Any] = {"model_name": name, "model_version": VERSION, "outputs": outputs}
    if inference.id is not None:
        answer["id"] = inference.id
    answer["parameters"] = {"model_sha256": model.sha256}
    header = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
    return (header + b"".join(blobs), len(header)) if blobs else (header, None)
