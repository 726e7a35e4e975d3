"""Point a kustomize overlay's ``images:`` entry at ``image@digest``, touching nothing else.

A text edit, not a YAML round trip: comments, ordering and formatting of the overlay stay
exactly as people wrote them, so the rollout commit's diff is the image change and nothing more.
"""

from __future__ import annotations

import re

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class OverlayError(ValueError):
    """The overlay has no ``images:`` entry for the container, or the input is malformed."""


def set_image(text: str, name: str, image: str, digest: str) -> str:
    """Return ``text`` with the ``images:`` entry ``name`` set to ``newName: image`` and ``digest``.

    Raises:
        OverlayError: when ``digest`` is not a sha256 digest or the entry does not exist.
    """
    if not DIGEST.fullmatch(digest):
        raise OverlayError(f"digest must look like sha256:<64 hex>, got {digest!r}")
    if "@" in image or not image:
        raise OverlayError(f"image must be a repository without tag or digest, got {image!r}")
    lines = text.splitlines(keepends=True)
    start = _entry_start(lines, name)
    indent = len(lines[start]) - len(lines[start].lstrip(" -"))
    end = start + 1
    while end < len(lines) and _inside_entry(lines[end], indent):
        end += 1
    entry = [line for line in lines[start:end] if not re.match(r"\s*newTag:", line)]
    values = {"newName": image, "digest": digest}
    for key, value in values.items():
        pattern = re.compile(rf"^(\s*(?:- )?{key}:\s*)\S+(.*)$", re.S)
        for index, line in enumerate(entry):
            if match := pattern.match(line):
                entry[index] = f"{match.group(1)}{value}{match.group(2)}"
                break
        else:
            newline = "\n" if not entry[-1].endswith("\n") else ""
            entry[-1] += newline
            entry.append(f"{' ' * indent}{key}: {value}\n")
    return "".join([*lines[:start], *entry, *lines[end:]])


def _entry_start(lines: list[str], name: str) -> int:
    in_images = False
    for index, line in enumerate(lines):
        if re.match(r"^images:\s*(#.*)?$", line):
            in_images = True
        elif in_images and re.match(r"^\S", line) and not line.startswith("#"):
            break
        elif in_images and re.match(rf"^\s*- name:\s*{re.escape(name)}\s*(#.*)?$", line):
            return index
    raise OverlayError(f"no images: entry named {name!r} in the overlay's kustomization.yaml")


def _inside_entry(line: str, indent: int) -> bool:
    stripped = line.lstrip(" ")
    if not stripped.strip() or stripped.startswith("#"):
        return len(line) - len(stripped) >= indent
    return len(line) - len(stripped) >= indent and not stripped.startswith("- ")
