"""The report's four layers: each imports only the layers before it (read -> compute ->
present -> documents), nothing outside suite.record and suite.trust (the rules for what is
read from files: a leaf that imports only the standard library), and no module re-exports another's names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parents[1] / "suite" / "report"
LAYERS = ("read", "compute", "present", "documents")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return out


MODULES = sorted(p for layer in LAYERS for p in (REPORT / layer).rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPORT)))
def test_a_layer_imports_only_the_layers_before_it(path):
    mine = LAYERS.index(path.relative_to(REPORT).parts[0])
    for module in _imports(path):
        parts = module.split(".")
        if parts[0] != "suite":
            continue
        allowed = (["suite", "record"], ["suite", "trust"], ["suite", "report"])
        assert parts[:2] in allowed, f"{path}: {module}"
        if parts[:2] == ["suite", "report"]:
            assert len(parts) > 2 and parts[2] in LAYERS, f"{path}: {module} (the package face)"
            assert LAYERS.index(parts[2]) <= mine, f"{path} imports {module}, a later layer"


def test_the_entry_point_only_parses_arguments():
    assert [m for m in _imports(REPORT / "__main__.py") if m.startswith("suite.")] == [
        "suite.record",
        "suite.report.documents.standard",
    ]
    assert _imports(REPORT / "__init__.py") == []  # no re-exports from the package face


def test_no_module_re_exports_with_noqa():
    for path in REPORT.rglob("*.py"):
        assert "F401" not in path.read_text(), f"{path}: an import kept only to re-export"
