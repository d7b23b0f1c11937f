"""Packages import each other in one direction only (see docs/architecture.md).

core ← schemas ← query ← store ← auth, metrics ← api, client, agent, demo ← access_cli ←
cluster_cli ← cli.
A module may import its own package and any package of a lower layer; packages of one layer do
not import each other. Imports inside functions and under ``TYPE_CHECKING`` count as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "gpufleet"

# Lowest first. ``settings`` and the dashboard's static files import nothing of gpufleet.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"core", "settings", "settings_flags", "dashboard"}),
    frozenset({"schemas"}),
    frozenset({"query"}),
    frozenset({"store"}),
    frozenset({"auth", "metrics"}),
    frozenset({"api", "client", "agent", "demo"}),
    # The commands that work on the database directly, which the entry point registers.
    frozenset({"access_cli"}),
    frozenset({"cluster_cli"}),
    frozenset({"cli", "__main__"}),
)
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}


def package_of(module: str) -> str:
    """The top-level package (or module) below ``gpufleet`` that ``module`` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every ``gpufleet`` module a source file imports, with the line it does so on."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # ``from gpufleet import access_cli`` names a module, not a package attribute.
            if node.module == "gpufleet":
                found += [(node.lineno, f"gpufleet.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.startswith("gpufleet.")]


def violations(source: Path) -> list[str]:
    """``file:line imports module`` for each import that goes against the layers."""
    found = []
    for path in sorted(source.rglob("*.py")):
        relative = path.relative_to(source.parent)
        importer = package_of(".".join(relative.with_suffix("").parts))
        for line, module in imported_modules(path):
            imported = package_of(module)
            if imported == importer:
                continue
            if RANK[imported] >= RANK[importer]:
                found.append(f"{relative}:{line} imports {module}")
    return found


def test_every_package_has_a_layer():
    packages = {p.stem if p.is_file() else p.name for p in SOURCE.iterdir()}
    packages -= {"__init__", "__pycache__", "py"}
    assert packages <= set(RANK), f"no layer for {sorted(packages - set(RANK))}"


def test_imports_go_one_way():
    assert violations(SOURCE) == []


def test_an_import_against_the_layers_is_found(tmp_path):
    (tmp_path / "gpufleet" / "core").mkdir(parents=True)
    (tmp_path / "gpufleet" / "store").mkdir()
    (tmp_path / "gpufleet" / "core" / "times.py").write_text(
        "def f():\n    from gpufleet.store.tables import workloads\n"
    )
    (tmp_path / "gpufleet" / "store" / "tables.py").write_text("from gpufleet.core import times\n")
    assert violations(tmp_path / "gpufleet") == [
        "gpufleet/core/times.py:2 imports gpufleet.store.tables"
    ]


@pytest.mark.parametrize(("importer", "imported"), [("auth", "metrics"), ("api", "demo")])
def test_packages_of_one_layer_do_not_import_each_other(tmp_path, importer, imported):
    (tmp_path / "gpufleet" / importer).mkdir(parents=True)
    (tmp_path / "gpufleet" / importer / "x.py").write_text(f"import gpufleet.{imported}.y\n")
    assert violations(tmp_path / "gpufleet") == [
        f"gpufleet/{importer}/x.py:1 imports gpufleet.{imported}.y"
    ]


def test_tests_share_helpers_through_tests_support_not_conftest():
    tests = Path(__file__).resolve().parent
    importers = [
        str(path.relative_to(tests))
        for path in sorted(tests.rglob("*.py"))
        for _, module in _imports_of(path)
        if module == "tests.conftest"
    ]
    assert importers == []


def _imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (node.lineno, node.module)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    ]
