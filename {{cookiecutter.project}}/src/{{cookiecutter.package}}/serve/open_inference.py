"""The Open Inference Protocol (KServe v2, Triton's HTTP API) over the same model and batcher.

Tensors are columns: one input per feature, named like the feature, shape ``[rows, 1]`` (or
``[rows]``; an image's ``[rows, height, width, channels]``), ``FP32`` for numbers and pixels
and ``BYTES`` for categories, which is the ONNX model's own
signature, so a Triton server of the same ``model.onnx`` takes the same requests. The schema's
contract still holds: ranges, integers and categories are checked, and each mistake is a 400
with ``{"error": ...}`` naming the input. Tensor data comes as JSON or, with the binary tensor
data extension, as raw little-endian bytes after the JSON header.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

import numpy as np
import orjson
from pydantic import ConfigDict, Field, NonNegativeInt, TypeAdapter, ValidationError
from typing_extensions import NotRequired, TypedDict  # pydantic: Python < 3.12; 3.10 too

from ..schema import FLOAT32_MAX, CategoryColumn, ImageColumn, NumericColumn
from .model import Feeds, OnnxModel, Prediction

VERSION = "1"  # the only version served; Triton's model repository calls it 1 as well
PLATFORM = "onnxruntime_onnx"
HEADER_LENGTH = b"inference-header-content-length"
OUTPUTS = ("label", "probabilities")
MAX_SHOWN = 3  # validation errors quoted in one answer
PATH = re.compile(r"/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?(?P<action>/\w+)?")


class ProtocolError(ValueError):
    """A request the protocol refuses: the HTTP status and the ``error`` message."""

    def __init__(self, message: str, status: int = 400) -> None:
        """Keep the status with the message."""
        super().__init__(message)
        self.status = status


def _strict(cls: Any) -> Any:
    cls.__pydantic_config__ = ConfigDict(extra="forbid")
    return cls


class RequestOutput(TypedDict):
    """An output the client asks for, and whether as binary data."""

    name: Literal["label", "probabilities"]
    parameters: NotRequired[dict[str, Any]]


_strict(RequestOutput)


def _element(column: NumericColumn | CategoryColumn | ImageColumn) -> Any:
    """One tensor element as the schema allows it: a category, or a finite float in range.

    Integers arrive as floats in ``FP32`` tensors (``41.0``), so they are checked as whole
    numbers rather than as JSON integers.
    """
    if isinstance(column, CategoryColumn):
        return Literal[tuple(column.categories)]
    whole = {"multiple_of": 1} if column.type == "integer" else {}
    low, high = _bounds(column)
    return Annotated[float, Field(strict=True, allow_inf_nan=False, ge=low, le=high, **whole)]


def _bounds(column: NumericColumn | ImageColumn) -> tuple[float, float]:
    low = -FLOAT32_MAX if column.min is None else column.min
    high = FLOAT32_MAX if column.max is None else column.max
    return low, high


BulkDecoder = Callable[[bytes], Any]  # an input's binary data -> its values, or None


def _bulk_decoder(column: NumericColumn | CategoryColumn | ImageColumn) -> BulkDecoder:
    """Decode and check one input's binary data in bulk (numpy, one regular expression).

    Returns None when the data breaks a rule: the element-wise path then finds and names
    the first element at fault, with the same messages as for JSON data.
    """
    if isinstance(column, CategoryColumn):
        # Each allowed element as it is encoded: its 4-byte length, then its UTF-8 bytes.
        encoded = {
            struct.pack("<I", len(raw)) + raw: category
            for category in column.categories
            for raw in [category.encode()]
        }
        each = re.compile(b"|".join(re.escape(element) for element in encoded), re.S)

        def categories(chunk: bytes) -> list[str] | None:
            found = each.findall(chunk)
            if b"".join(found) != chunk:  # bytes between or after the allowed elements
                return None
            return [encoded[element] for element in found]

        return categories
    low, high = _bounds(column)
    whole = column.type == "integer"

    def numbers(chunk: bytes) -> np.ndarray | None:
        values = np.frombuffer(chunk, dtype="<f4")
        wide = values.astype(np.float64)  # compared as the JSON path compares: as doubles
        inside = np.isfinite(wide).all() and wide.min(initial=low) >= low
        inside = inside and wide.max(initial=high) <= high
        if not inside or (whole and not (wide == np.floor(wide)).all()):
            return None
        return values

    return numbers


class Signature:
    """The model's tensors as validators, built once per model.

    One pydantic-core validator checks an infer request's JSON whole, each input's
    datatype and values by the input's name (flattened data, in row-major order); binary
    data is checked by the same per-input value validators.
    """

    def __init__(self, model: OnnxModel) -> None:
        """Derive the validators from the model's inputs and the schema's columns."""
        self.model = model
        elements = {name: _element(model.schema.columns[name]) for name in model.inputs}
        self.values = {name: TypeAdapter(list[element]) for name, element in elements.items()}
        self.bulk = {name: _bulk_decoder(model.schema.columns[name]) for name in model.inputs}
        tensors = tuple(
            _strict(
                TypedDict(  # type: ignore[operator]
                    f"Input{index}",
                    {
                        "name": Literal[name],
                        "datatype": Literal[datatype(model.inputs[name])],
                        "shape": Annotated[
                            list[NonNegativeInt],
                            Field(min_length=1, max_length=1 + len(model.shapes[name])),
                        ],
                        "parameters": NotRequired[dict[str, Any]],
                        "data": NotRequired[list[element]],
                    },
                )
            )
            for index, (name, element) in enumerate(elements.items())
        )
        tensor = Annotated[Union[tensors], Field(discriminator="name")]  # noqa: UP007
        request = TypedDict(  # type: ignore[operator]  # noqa: UP013
            "InferenceRequest",
            {
                "id": NotRequired[str],
                "parameters": NotRequired[dict[str, Any]],
                "inputs": Annotated[list[tensor], Field(min_length=1)],
                "outputs": NotRequired[list[RequestOutput]],
            },
        )
        self.request = TypeAdapter(_strict(request))

    def parse(self, body: bytes, header_length: bytes | None, max_rows: int) -> Inference:
        """Check an infer request against the model's signature and the schema.

        Raises:
            ProtocolError: naming the input (or field) at fault.
        """
        header, blob = _split(body, header_length)
        try:
            request = self.request.validate_json(header)
        except ValidationError as error:
            raise ProtocolError(_described(error)) from None
        inputs = request["inputs"]
        names = {item["name"] for item in inputs}  # each a model input: the validator saw to it
        if len(names) < len(inputs):
            repeated = next(n for n in names if [i["name"] for i in inputs].count(n) > 1)
            raise ProtocolError(f"input {repeated!r} appears more than once")
        if len(names) < len(self.values):
            missing = [name for name in self.values if name not in names]
            raise ProtocolError(f"missing inputs: {', '.join(missing)}")
        rows = {item["shape"][0] for item in inputs}
        if len(rows) > 1:
            raise ProtocolError(f"inputs disagree on the number of rows: {sorted(rows)}")
        count = rows.pop()
        if not 1 <= count <= max_rows:
            raise ProtocolError(f"a request holds 1 to {max_rows} rows; the inputs hold {count}")
        reader = _BinaryReader(blob)
        feeds = {item["name"]: self._column(item, reader) for item in inputs}  # binary in order
        reader.finish()
        return Inference(feeds, request.get("id"), _outputs(request))

    def _column(self, item: dict[str, Any], reader: _BinaryReader) -> np.ndarray:
        name, shape = item["name"], item["shape"]
        dims = self.model.shapes[name]
        if shape[1:] != dims and not (dims == [1] and shape[1:] == []):
            expected = f"[rows, {', '.join(map(str, dims))}]" + " or [rows]" * (dims == [1])
            raise ProtocolError(f"input {name!r}: shape {shape}, expected {expected}")
        size = item.get("parameters", {}).get("binary_data_size")
        if size is not None:
            if "data" in item:
                raise ProtocolError(f"input {name!r}: has both data and binary_data_size")
            chunk = reader.take(name, size, item)
            values = self.bulk[name](chunk)
            if values is None:  # a fault somewhere: find and name it element by element
                try:
                    values = self.values[name].validate_python(_elements(name, item, chunk))
                except ValidationError as error:
                    raise ProtocolError(_described(error, data_of=name)) from None
        elif "data" in item:
            values = item["data"]
        else:
            raise ProtocolError(f"input {name!r}: no data (nor binary_data_size)")
        if len(values) != math.prod(shape):
            raise ProtocolError(
                f"input {name!r}: shape {shape} needs {math.prod(shape)} values, got {len(values)}"
            )
        return np.asarray(values, dtype=self.model.inputs[name]).reshape(-1, *dims)


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
            {"name": feature, "datatype": datatype(dtype), "shape": [-1, *model.shapes[feature]]}
            for feature, dtype in model.inputs.items()
        ],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(model.classes)]},
        ],
        "parameters": {"classes": model.classes, "model_sha256": model.sha256},
    }


def _split(body: bytes, header_length: bytes | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not header_length.isdigit() or not 0 < int(header_length) <= len(body):
        raise ProtocolError(
            f"Inference-Header-Content-Length must be 1 to {len(body)} (the body's size)"
        )
    return body[: int(header_length)], body[int(header_length) :]


def _described(error: ValidationError, data_of: str | None = None) -> str:
    """The first few errors, each with where it is: ``input 'age': data[3]: ...``.

    ``data_of`` names the input when ``error`` comes from checking its data alone.
    """
    details = error.errors(include_url=False, include_input=False, include_context=False)
    shown = []
    for item in details[:MAX_SHOWN]:
        where = list(item["loc"])
        if data_of is not None:
            where = ["inputs", 0, data_of, "data", *where]
        if where[:1] == ["inputs"] and len(where) > 2:  # inputs, index, name, field, ...
            name, field, *rest = where[2:]
            place = f"input {str(name)[:64]!r}: {field}" + "".join(f"[{part}]" for part in rest)
        else:
            place = ".".join(str(part)[:64] for part in where) or "body"
        shown.append(f"{place}: {item['msg']}")
    more = f" (and {len(details) - MAX_SHOWN} more)" if len(details) > MAX_SHOWN else ""
    return "; ".join(shown) + more


class _BinaryReader:
    """Binary tensor data: each input's bytes in turn, after the JSON header."""

    def __init__(self, blob: bytes) -> None:
        self.blob, self.offset = blob, 0

    def take(self, name: str, size: Any, item: dict[str, Any]) -> bytes:
        """The input's ``size`` bytes, the next ones."""
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ProtocolError(f"input {name!r}: binary_data_size must be a byte count")
        if self.offset + size > len(self.blob):
            raise ProtocolError(f"input {name!r}: binary_data_size {size} runs past the body's end")
        if item["datatype"] == "FP32" and size != 4 * math.prod(item["shape"]):
            count = math.prod(item["shape"])
            raise ProtocolError(
                f"input {name!r}: {count} FP32 values take {4 * count} bytes, got {size}"
            )
        self.offset += size
        return self.blob[self.offset - size : self.offset]

    def finish(self) -> None:
        if self.offset != len(self.blob):
            raise ProtocolError(
                f"{len(self.blob) - self.offset} bytes of binary data belong to no input"
            )


def _elements(name: str, item: dict[str, Any], chunk: bytes) -> list[Any]:
    """Binary data as a list of values (floats or strings), one element at a time."""
    if item["datatype"] == "BYTES":
        return _strings(name, chunk)
    return np.frombuffer(chunk, dtype="<f4").tolist()


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


def _outputs(request: dict[str, Any]) -> dict[str, bool]:
    binary = request.get("parameters", {}).get("binary_data_output") is True
    if "outputs" not in request:
        return dict.fromkeys(OUTPUTS, binary)
    return {
        output["name"]: output.get("parameters", {}).get("binary_data", binary) is True
        for output in request["outputs"]
    }


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
