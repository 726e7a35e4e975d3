"""The generated project's kustomize overlays rendered as Argo CD would: ``kubectl kustomize``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml


def render(project: Path, environment: str) -> list[dict[str, Any]]:
    overlay = project / "deploy" / "k8s" / "overlays" / environment
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, check=True
    )
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def with_components(project: Path, root: Path, *components: str) -> list[dict[str, Any]]:
    """The production overlay rendered with ``components`` added (in a copy under ``root``)."""
    shutil.copytree(project / "deploy", root / "deploy")
    overlay = root / "deploy" / "k8s" / "overlays" / "production" / "kustomization.yaml"
    listed = "".join(f"  - ../../components/{component}\n" for component in components)
    overlay.write_text(overlay.read_text() + f"components:\n{listed}")
    return render(root, "production")


def pod_of(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    """The pod template of the one Deployment among ``rendered``."""
    (deployment,) = [r for r in rendered if r["kind"] == "Deployment"]
    return deployment["spec"]["template"]["spec"]
