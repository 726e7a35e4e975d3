"""Reading the generated project's dependency locks (``requirements/*.lock``)."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name


def locked(path: Path) -> dict[str, str]:
    """``name -> version`` of a lock file's pins that apply to this Python and platform.

    A pin may name extras (``ray[tune]==2.60.0``): the version is the package's.
    """
    pins = {}
    for line in path.read_text().splitlines():
        if match := re.match(
            r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^ ;\\]+)\s*(?:;\s*([^\\]+))?", line
        ):
            name, pinned, marker = match.groups()
            if marker is None or Marker(marker.strip()).evaluate():
                pins[canonicalize_name(name)] = pinned
    return pins
