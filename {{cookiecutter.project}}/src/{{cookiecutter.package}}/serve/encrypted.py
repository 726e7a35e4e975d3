"""Inference on encrypted rows: a linear model evaluated on CKKS ciphertexts (TenSEAL, SEAL).

The client encodes its rows (each number as it is, one indicator per category), packs every
row's value of one encoded input into one ciphertext, and sends the ciphertexts with a context
that carries the encryption parameters and no key. The server multiplies each ciphertext by its
weight and adds them up. Products with plaintext weights need no evaluation keys, so the server
never holds a key of any kind and cannot decrypt what it computes; the client decrypts the
logits. One request costs the same for 1 row as for ``poly_modulus_degree / 2`` rows.

Only linear models qualify (a logistic regression): the export stage writes
:data:`LINEAR_FILE` into the bundle when ``params.yaml: encryption.enabled`` and the model is
linear, and the validate stage gates the encrypted predictions against the plaintext ones.
TenSEAL is imported only when such a bundle loads: other images do not contain it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Base64Bytes, BaseModel, ConfigDict, Field

from ..schema import CategoryColumn, Schema

LINEAR_FILE = "linear.json"  # in the serving bundle: the linear model the endpoint evaluates
MAX_CONTEXT_BYTES = 1_048_576  # parameters only take ~100 bytes; a public key fits too
U64 = 8  # bytes per coefficient of a ciphertext polynomial


class Ckks(BaseModel):
    """The CKKS parameters the model was validated with; clients must encrypt with them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    poly_modulus_degree: int
    coeff_mod_bit_sizes: list[int]
    scale_bits: int
    parms_id: list[int]  # SEAL's hash of the parameters, which a client's context must match

    @property
    def slots(self) -> int:
        """Rows one ciphertext holds: the most one request may send."""
        return self.poly_modulus_degree // 2

    @property
    def ciphertext_bytes(self) -> int:
        """The size of a fresh ciphertext uncompressed: two polynomials, one per data prime."""
        return 2 * self.poly_modulus_degree * (len(self.coeff_mod_bit_sizes) - 1) * U64 + 1024


class Input(BaseModel):
    """One encoded input: a number column, or one category of a category column (0 or 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    category: str | None = None

    @property
    def name(self) -> str:
        """``column``, or ``column=category`` for an indicator."""
        return self.column if self.category is None else f"{self.column}={self.category}"


def inputs(schema: Schema) -> list[Input]:
    """The encoded inputs of a schema's rows: the numbers, then an indicator per category."""
    columns = schema.columns.items()
    numbers = [Input(column=name) for name, col in columns if not isinstance(col, CategoryColumn)]
    return numbers + [
        Input(column=name, category=str(category))
        for name, col in columns
        if isinstance(col, CategoryColumn)
        for category in col.categories
    ]


class LinearModel(BaseModel):
    """Logits as weights times encoded inputs plus bias.

    One output (the log-odds of the second class) for two classes, else one per class (softmax).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    inputs: list[Input]
    classes: list[Any]
    ckks: Ckks
    weights: list[list[float]]  # per output, per input
    bias: list[float]  # per output

    @classmethod
    def load(cls, folder: Path) -> LinearModel | None:
        """The bundle's linear model; None when the bundle has no encrypted endpoint."""
        path = folder / LINEAR_FILE
        if not path.is_file():
            return None
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))

    def spec(self) -> dict[str, Any]:
        """What a client needs to encrypt for this model: everything except the weights."""
        return self.model_dump(mode="json", exclude={"weights", "bias"}) | {
            "outputs": len(self.bias),
            "max_rows": self.ckks.slots,
        }

    def request_bytes(self) -> int:
        """The largest valid request body: every ciphertext and the context, in base64."""
        raw = len(self.inputs) * self.ckks.ciphertext_bytes + MAX_CONTEXT_BYTES
        return raw * 4 // 3 + 4096


class EncryptedRequest(BaseModel):
    """The body of ``POST /encrypted/predict``: base64 of TenSEAL's serializations."""

    model_config = ConfigDict(extra="forbid")

    context: Base64Bytes = Field(max_length=MAX_CONTEXT_BYTES)
    ciphertexts: list[Base64Bytes] = Field(min_length=1)


class EncryptedRequestError(ValueError):
    """A request the endpoint cannot compute on; ``loc`` names the field at fault."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        """Keep the field and the message for the 4xx detail."""
        super().__init__(message)
        self.loc = loc


def evaluate(model: LinearModel, context: bytes, ciphertexts: list[bytes]) -> list[bytes]:
    """The encrypted logits, one serialized CKKS vector per output.

    Raises:
        EncryptedRequestError: the context holds a secret key or other parameters, or a
            ciphertext does not parse, is empty, too long, or differs in length from the others.
    """
    import tenseal as ts

    try:
        keys = ts.context_from(context)
    except (ValueError, RuntimeError, TypeError):
        raise EncryptedRequestError(("context",), "not a serialized TenSEAL context") from None
    if keys.has_secret_key():
        raise EncryptedRequestError(
            ("context",),
            "the context holds a secret key: serialize it with save_secret_key=False; "
            "this server never takes one",
        )
    ckks = model.ckks
    if list(keys.data.seal_context().key_parms_id()) != ckks.parms_id:
        raise EncryptedRequestError(
            ("context",),
            f"encryption parameters differ from the model's (CKKS, poly_modulus_degree "
            f"{ckks.poly_modulus_degree}, coeff_mod_bit_sizes {ckks.coeff_mod_bit_sizes}); "
            "see GET /encrypted",
        )
    if keys.global_scale != 2.0**ckks.scale_bits:
        raise EncryptedRequestError(
            ("context",), f"global_scale must be 2**{ckks.scale_bits}, as GET /encrypted says"
        )
    if len(ciphertexts) != len(model.inputs):
        raise EncryptedRequestError(
            ("ciphertexts",),
            f"{len(ciphertexts)} ciphertexts; the model takes {len(model.inputs)}, one per "
            "input in GET /encrypted's order",
        )
    vectors = []
    for index, data in enumerate(ciphertexts):
        try:
            vector = ts.ckks_vector_from(keys, data)
        except (ValueError, RuntimeError, TypeError):
            raise EncryptedRequestError(
                ("ciphertexts", index), "not a CKKS vector under the request's context"
            ) from None
        rows = vector.size()
        if not 1 <= rows <= ckks.slots or (vectors and rows != vectors[0].size()):
            raise EncryptedRequestError(
                ("ciphertexts", index),
                f"holds {rows} rows; every ciphertext must hold the same 1 to {ckks.slots} rows",
            )
        vectors.append(vector)
    try:
        outputs = zip(model.weights, model.bias, strict=True)
        return [_logit(vectors, weights, bias).serialize() for weights, bias in outputs]
    except (ValueError, RuntimeError) as error:  # e.g. a ciphertext at another scale or level
        raise EncryptedRequestError(("ciphertexts",), f"cannot compute on them: {error}") from None


def _logit(vectors: list[Any], weights: list[float], bias: float) -> Any:
    total = vectors[0] * weights[0]
    for vector, weight in zip(vectors[1:], weights[1:], strict=True):
        total += vector * weight
    return total + bias
