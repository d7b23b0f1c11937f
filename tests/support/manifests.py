"""Rendering deploy/ with ``kubectl kustomize`` and validating what comes out."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from kubernetes_validate.utils import all_versions, latest_version

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# The oldest and the newest Kubernetes whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = (
    min(all_versions(), key=lambda v: tuple(map(int, v.split(".")))),
    latest_version(),
)
# Custom resources have no schema in kubernetes-validate; tests check them field by field.
CUSTOM_KINDS = {"ServiceMonitor"}


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize`` renders from a kustomization directory, in order."""
    # The system's kubectl, else the one scripts/test puts in the virtual environment.
    kubectl = shutil.which("kubectl") or shutil.which(
        "kubectl", path=os.path.dirname(sys.executable)
    )
    assert kubectl, "kubectl is needed to render deploy/ (installed by scripts/test)"
    rendered = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def validate_all(documents: Iterable[dict[str, Any]]) -> None:
    """Validate every built-in object against the oldest and the newest schema (strict)."""
    for document in documents:
        if document["kind"] in CUSTOM_KINDS:
            continue
        for kubernetes in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(document, kubernetes, strict=True)
