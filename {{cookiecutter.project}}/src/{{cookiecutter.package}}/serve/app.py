"""A lean ASGI app over one onnxruntime session.

No web framework: five routes do not need one, and skipping routing layers, dependency
injection and per-request model objects is what makes single-row latency small. Request
bodies are validated straight from bytes by pydantic-core against a validator derived from
the training schema; every client mistake is answered 4xx with the field at fault.

Routes: ``POST /predict``, ``GET /health`` (live), ``GET /ready`` (503 until the session is
loaded), ``GET /metrics`` (Prometheus), ``GET /version`` (model hash, git sha, MLflow run),
``GET /openapi.json`` (see :mod:`.openapi`), and the Open Inference Protocol under ``/v2`` (see
:mod:`.open_inference`). Both prediction routes share the batcher, the limits and the metrics.
A bundle with a linear model for encrypted inference adds ``GET /encrypted`` (what a client
needs to encrypt) and ``POST /encrypted/predict`` (see :mod:`.encrypted`).
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError

from . import open_inference as v2
from . import openapi
from .batching import Batcher
from .encrypted import EncryptedRequest, EncryptedRequestError, LinearModel, evaluate
from .metrics import Metrics
from .model import Feeds, OnnxModel, Prediction, rows_of
from .settings import ServeSettings

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"
TEXT = b"text/plain"  # an empty health answer
OCTETS = b"application/octet-stream"  # a v2 response with binary tensor data
HEADERS_KEY = "app.headers"  # where the request's scope keeps its headers as a dict
T = TypeVar("T")
Headers = list[tuple[bytes, bytes]]
Response = tuple[int, bytes, bytes, Headers]  # status, body, content type, extra headers
# A request with thousands of mistakes gets the first few and a count: error bodies stay small
# (well under 16 KiB) and never echo large client input back.
MAX_ERRORS = 10
MAX_ECHO = 64  # characters of a client-supplied name (a key, a path) quoted in an error
ROUTES = {
    "/predict": "POST",
    "/health": "GET",
    "/ready": "GET",
    "/metrics": "GET",
    "/version": "GET",
    "/openapi.json": "GET",
    "/encrypted": "GET",
    "/encrypted/predict": "POST",
}


class HTTPError(Exception):
    """A client-facing error: status code plus JSON-able detail."""

    def __init__(
        self, status: int, detail: Any, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        """Keep what the response needs."""
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or []


class ServingApp:
    """The ASGI callable; one instance per worker process."""

    def __init__(self, settings: ServeSettings) -> None:
        """Prepare state; the model loads at lifespan start-up."""
        self.settings = settings
        self.metrics = Metrics()
        self.batcher: Batcher | None = None  # set once the model is loaded
        self.load_error: str | None = None
        self.body_limit = settings.max_body_bytes or 0  # sized to the schema once it loads
        self._validator: Any = None
        self._signature: v2.Signature | None = None
        self._openapi = b""  # the document, once the model (and so the schema) is loaded
        self._linear: LinearModel | None = None  # the encrypted endpoint's model, if shipped
        self._loading: asyncio.Future[None] | None = None
        self._in_flight = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def load(self) -> None:
        """Create the onnxruntime session and the request validator from the bundle."""
        try:
            model = OnnxModel.load(self.settings.model_dir)
            rows = self.settings.max_batch_rows
            self._validator = model.schema.request_adapter(rows)
            self.body_limit = self.settings.max_body_bytes or model.schema.request_bytes(rows)
            # Before the batcher: a batcher means ready, and v2 requests need the signature.
            self._signature = v2.Signature(model)
            self._linear = LinearModel.load(self.settings.model_dir)
            if self._linear is not None:
                importlib.import_module("tenseal")  # the image must hold it: fail loading now
            self.batcher = Batcher(model, self.settings.max_batch_rows)
            name = self.settings.model_name
            document = openapi.document(self._signature, name, rows, self._linear)
            self._openapi = orjson.dumps(document)
            log.info("model %s loaded from %s", model.sha256[:12], self.settings.model_dir)
        except Exception as error:
            self.load_error = f"{type(error).__name__}: {error}"
            log.exception("cannot load the model from %s", self.settings.model_dir)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Load off the event loop so /health answers at once and /ready says 503 meanwhile.
                self._loading = asyncio.get_running_loop().run_in_executor(None, self.load)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.batcher is not None:
                    self.batcher.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @property
    def model(self) -> OnnxModel | None:
        """The loaded model, or None while loading (or after loading failed)."""
        return self.batcher.model if self.batcher else None

    # -- HTTP --------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch lifespan and HTTP events."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        protocol = v2.route(path) if path.startswith("/v2") else None
        route = path if path in ROUTES else protocol[0] if protocol else "other"
        try:
            status, body, content_type, headers = await self._dispatch(
                path, method, scope, receive, protocol
            )
        except HTTPError as error:
            status, content_type, headers = error.status, JSON, error.headers
            # Open Inference Protocol clients read errors from an "error" string.
            payload = (
                {"error": str(error.detail)} if path.startswith("/v2") else {"detail": error.detail}
            )
            body = orjson.dumps(payload)
        except Exception:
            log.exception("unexpected error answering %s %s", method, _echo(path))
            status, content_type, headers = 500, JSON, []
            key = "error" if path.startswith("/v2") else "detail"
            body = orjson.dumps({key: "internal error; see the server log"})
        self.metrics.observe_request(route, status)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _dispatch(
        self,
        path: str,
        method: str,
        scope: Scope,
        receive: Receive,
        protocol: tuple[str, str | None, str | None] | None,
    ) -> Response:
        allowed = ROUTES.get(path) or (_v2_method(protocol[0]) if protocol else None)
        if allowed is None:
            raise HTTPError(404, f"no route {_echo(path)}; routes: {', '.join(ROUTES)}, /v2")
        if method != allowed:
            raise HTTPError(405, f"{path} accepts {allowed} only", [(b"allow", allowed.encode())])
        if protocol:
            return await self._v2(protocol, scope, receive)
        if path == "/predict":
            _require_json(scope)
            body = await self._predict(scope, receive, self._answer)
            return 200, body, JSON, []
        if path.startswith("/encrypted"):
            return await self._encrypted(path, scope, receive)
        if path == "/health":
            return 200, b'{"status":"ok"}', JSON, []
        if path == "/ready":
            return self._ready()
        if path == "/openapi.json":
            if not self._openapi:
                raise HTTPError(503, "model not loaded yet; the document derives from its schema")
            return 200, self._openapi, JSON, []
        if path == "/metrics":
            text = self.metrics.render(self.model is not None, self._in_flight)
            return 200, text.encode(), b"text/plain; version=0.0.4", []
        return 200, orjson.dumps(self._version()), JSON, []

    def _ready(self) -> Response:
        if self.model is not None:
            return 200, b'{"status":"ready"}', JSON, []
        if self.load_error:
            return 503, orjson.dumps({"status": "failed", "detail": self.load_error}), JSON, []
        return 503, b'{"status":"loading"}', JSON, []

    async def _v2(
        self, protocol: tuple[str, str | None, str | None], scope: Scope, receive: Receive
    ) -> Response:
        route, name, version = protocol
        if route == "/v2":
            return 200, orjson.dumps(self._server_metadata()), JSON, []
        if route == "/v2/health/live":
            return 200, b"", TEXT, []
        # Health routes answer by status alone: 200 for true, a 4xx for false (the protocol's
        # rule; Kubernetes probes count any 4xx as a failure too).
        ready = 200 if self.model is not None else 400
        if route == "/v2/health/ready":
            return ready, b"", TEXT, []
        served = self.settings.model_name
        if name != served:
            raise HTTPError(
                404, f"unknown model {_echo(name or '')!r}; this server serves {served!r}"
            )
        if version not in (None, v2.VERSION):
            raise HTTPError(
                404, f"unknown version {_echo(version)!r} of model {name!r}; versions: {v2.VERSION}"
            )
        if route.endswith("/ready"):
            return ready, b"", TEXT, []
        if self.model is None:
            raise HTTPError(503, "model not loaded yet; see /v2/health/ready")
        if route.endswith("/infer"):
            if b"content-encoding" in _headers(scope):
                raise HTTPError(415, "compressed request bodies are not accepted; send them plain")
            body, header_length = await self._predict(scope, receive, self._infer)
            headers = (
                [] if header_length is None else [(v2.HEADER_LENGTH, str(header_length).encode())]
            )
            return 200, body, JSON if header_length is None else OCTETS, headers
        return 200, orjson.dumps(v2.model_metadata(self.model, name)), JSON, []

    def _server_metadata(self) -> dict[str, Any]:
        return {
            "name": self.settings.model_name,
            "version": v2.VERSION,
            "extensions": ["binary_tensor_data"],
        }

    def _version(self) -> dict[str, Any]:
        return {
            "model_sha256": self.model.sha256 if self.model else None,
            "framework": self.model.metadata.get("framework") if self.model else None,
            "git_sha": self.settings.git_sha,
            "mlflow_run_id": self.settings.mlflow_run_id,
        }

    async def _encrypted(self, path: str, scope: Scope, receive: Receive) -> Response:
        if self.model is None:
            raise HTTPError(503, "model not loaded yet; see /ready")
        linear = self._linear
        if linear is None:
            raise HTTPError(
                404,
                "this model has no encrypted endpoint: it needs a linear model exported with "
                "params.yaml encryption.enabled",
            )
        if path == "/encrypted":
            return 200, orjson.dumps(linear.spec()), JSON, []
        _require_json(scope)
        body = await self._predict(scope, receive, self._compute_encrypted, linear.request_bytes())
        return 200, body, JSON, []

    async def _compute_encrypted(self, batcher: Batcher, body: bytes, scope: Scope) -> bytes:
        assert self._linear is not None  # checked by _encrypted
        try:
            request = EncryptedRequest.model_validate_json(body)
        except ValidationError as error:
            raise _invalid(error) from None
        loop = asyncio.get_running_loop()
        try:
            outputs = await loop.run_in_executor(
                None, evaluate, self._linear, request.context, request.ciphertexts
            )
        except EncryptedRequestError as error:
            detail = {"loc": list(error.loc), "msg": str(error), "type": "encrypted_request"}
            raise HTTPError(422, [detail]) from None
        logits = [base64.b64encode(output).decode("ascii") for output in outputs]
        return orjson.dumps({"model_sha256": batcher.model.sha256, "logits": logits})

    async def _read_body(self, scope: Scope, receive: Receive, limit: int) -> bytes:
        declared = _headers(scope).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HTTPError(413, f"request body larger than {limit} bytes")
        seconds = self.settings.body_timeout_seconds
        # One timer per request cancels the read if the body stalls (cheaper than wait_for's
        # task per receive(), which costs single-row throughput).
        task, expired = asyncio.current_task(), []

        def expire() -> None:
            expired.append(True)
            if task is not None:
                task.cancel()

        timer = asyncio.get_running_loop().call_later(seconds, expire)
        chunks, size, more = [], 0, True
        try:
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise HTTPError(400, "client disconnected before sending the body")
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise HTTPError(413, f"request body larger than {limit} bytes")
                chunks.append(chunk)
                more = message.get("more_body", False)
        except asyncio.CancelledError:
            if not expired:
                raise
            if task is not None and hasattr(task, "uncancel"):  # Python 3.11+
                task.uncancel()
            # A client that stalls mid-body would hold its buffer forever.
            message_text = f"request body not received within {seconds:g} s"
            raise HTTPError(408, message_text, [(b"connection", b"close")]) from None
        finally:
            timer.cancel()
        return b"".join(chunks)

    async def _predict(
        self,
        scope: Scope,
        receive: Receive,
        answer: Callable[[Batcher, bytes, Scope], Awaitable[T]],
        limit: int | None = None,
    ) -> T:
        """Read the body and ``answer`` it, within the in-flight limit.

        ``limit`` caps the body in bytes; by default, the largest request of rows.
        """
        batcher = self.batcher
        if batcher is None:
            raise HTTPError(503, "model not loaded yet; see /ready")
        if self._in_flight >= self.settings.max_in_flight:
            # Shed load before reading the body: memory and the probes stay safe.
            raise HTTPError(
                503,
                f"overloaded: {self._in_flight} predictions in progress; retry shortly",
                [(b"retry-after", b"1")],
            )
        self._in_flight += 1
        try:
            body = await self._read_body(scope, receive, limit or self.body_limit)
            return await answer(batcher, body, scope)
        finally:
            self._in_flight -= 1

    async def _answer(self, batcher: Batcher, body: bytes, scope: Scope) -> bytes:
        started = time.perf_counter()
        try:
            rows = self._validator.validate_json(body)["rows"]
        except ValidationError as error:
            raise _invalid(error) from None
        prediction = await self._run(batcher, batcher.model.feeds_from_rows(rows), started)
        predictions = prediction.to_json(batcher.model.classes)
        return orjson.dumps({"model_sha256": batcher.model.sha256, "predictions": predictions})

    async def _infer(self, batcher: Batcher, body: bytes, scope: Scope) -> tuple[bytes, int | None]:
        started = time.perf_counter()
        header_length = _headers(scope).get(v2.HEADER_LENGTH)
        assert self._signature is not None  # set with the batcher
        try:
            inference = self._signature.parse(body, header_length, self.settings.max_batch_rows)
        except v2.ProtocolError as error:
            raise HTTPError(error.status, str(error)) from None
        prediction = await self._run(batcher, inference.feeds, started)
        return v2.response(inference, prediction, self.settings.model_name, batcher.model)

    async def _run(self, batcher: Batcher, feeds: Feeds, started: float) -> Prediction:
        prediction = await batcher.predict(feeds)
        self.metrics.observe_prediction(time.perf_counter() - started, rows_of(feeds))
        return prediction


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The request's headers as a dict, built once per request (several steps read them)."""
    headers = scope.get(HEADERS_KEY)
    if headers is None:
        headers = scope[HEADERS_KEY] = dict(scope["headers"])
    return headers


def _require_json(scope: Scope) -> None:
    content_type = _headers(scope).get(b"content-type", b"").split(b";")[0].strip().lower()
    if content_type != JSON:
        raise HTTPError(415, "send the rows as JSON with Content-Type: application/json")


def _v2_method(route: str) -> str:
    return "POST" if route.endswith("/infer") else "GET"


def _echo(text: str) -> str:
    """``text`` as it may appear in an error: cut to :data:`MAX_ECHO` characters."""
    return text if len(text) <= MAX_ECHO else f"{text[:MAX_ECHO]}..."


def _invalid(error: ValidationError) -> HTTPError:
    """400 for a body that is not JSON, else 422; the detail names each field at fault."""
    details = error.errors(include_url=False, include_input=False, include_context=False)
    status = 400 if any(item["type"] == "json_invalid" for item in details) else 422
    return HTTPError(status, _capped(details))


def _capped(details: list[Any]) -> list[Any]:
    """The first :data:`MAX_ERRORS` validation errors, their names cut, and how many more."""
    shown = [
        {**item, "loc": [_echo(part) if isinstance(part, str) else part for part in item["loc"]]}
        for item in details[:MAX_ERRORS]
    ]
    if len(details) > MAX_ERRORS:
        hidden = len(details) - MAX_ERRORS
        shown.append(
            {"loc": [], "msg": f"{hidden} more errors not shown", "type": "too_many_errors"}
        )
    return shown
