"""The serving bundle: ``model.onnx``, ``metadata.json``, ``example.json`` and a manifest.

With the encrypted endpoint on, also ``linear.json`` (see :mod:`.encrypted`).

The manifest lists every file with its SHA-256, so a bundle that was changed or truncated
after ``export`` is refused when it loads, and CI/CD can name the exact model it ships.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
EXAMPLE_FILE = "example.json"  # test rows and their expected predictions, for smoke tests
MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1


class BundleError(ValueError):
    """The bundle is incomplete or does not match its manifest."""


def _json(payload: Any) -> bytes:
    return (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode()


def write_bundle(
    folder: Path,
    onnx_bytes: bytes,
    metadata: Mapping[str, Any],
    example: Mapping[str, Any],
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Write the bundle into an empty ``folder``; return its manifest.

    ``extra`` adds JSON files by name (the encrypted endpoint's ``linear.json``).
    """
    contents = {
        MODEL_FILE: onnx_bytes,
        METADATA_FILE: _json(metadata),
        EXAMPLE_FILE: _json(example),
        **{name: _json(payload) for name, payload in (extra or {}).items()},
    }
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    manifest = {
        "version": MANIFEST_VERSION,
        "model_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()},
    }
    (folder / MANIFEST_FILE).write_bytes(_json(manifest))
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    """The bundle's manifest, after checking every listed file against its hash.

    Raises:
        BundleError: naming the missing or changed file.
    """
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"{path} is missing: re-run the export stage")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("version") != MANIFEST_VERSION:
        raise BundleError(f"{path}: manifest version {manifest.get('version')!r} is not supported")
    for name, expected in manifest["files"].items():
        file = folder / name
        if not file.is_file():
            raise BundleError(f"{file} is missing from the bundle")
        if hashlib.sha256(file.read_bytes()).hexdigest() != expected:
            raise BundleError(f"{file} does not match the bundle manifest (changed after export)")
    return manifest


def bundle_sha256(folder: Path) -> str:
    """One hash for the whole bundle: the SHA-256 of its (verified) manifest."""
    read_manifest(folder)
    return hashlib.sha256((folder / MANIFEST_FILE).read_bytes()).hexdigest()
