"""The import layers of ARCHITECTURE.md, enforced over the source with `ast`.

A module may import its own package and the layers below it, never a peer or a layer above.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "funnelcheck"

# Lowest first; the names are top-level modules or packages of funnelcheck ("" is funnelcheck/__init__).
LAYERS = [
    {"", "findings", "atomicfile", "resources"},
    {"yamlload", "reference"},
    {"model", "fixer"},
    {"load", "resolve"},
    {"engine"},
    {"checks", "git", "pipeline"},
    {"render"},
    {"web", "github"},
    {"commands"},
    {"cli"},
    {"__main__"},
]
LEVEL = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def _unit(dotted: str) -> str:
    """`funnelcheck.load.registry` -> `load`; `funnelcheck` -> ''."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported funnelcheck module) for every import statement, lazy ones inside functions included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "funnelcheck":
            if node.module == "funnelcheck":
                out += [(node.lineno, f"funnelcheck.{a.name}") for a in node.names if a.name != "__version__"]
            else:
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "funnelcheck"]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import; the layer test reads absolute ones")
    return out


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "templates" not in p.parts)


def test_every_module_belongs_to_a_layer():
    units = {_unit(".".join(("funnelcheck",) + p.relative_to(PACKAGE).with_suffix("").parts)) for p in _modules()}
    units = {u.removesuffix(".py") for u in units} - {"__init__"}
    assert units - set(LEVEL) == set(), "add new modules to LAYERS here and to ARCHITECTURE.md"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_imports_only_go_down(path):
    rel = path.relative_to(PACKAGE).with_suffix("").parts
    own = "" if rel == ("__init__",) else rel[0]
    bad = []
    for line, target in _imports(path):
        unit = _unit(target)
        if unit == own:
            continue
        if LEVEL[unit] >= LEVEL[own]:
            bad.append(f"{path.name}:{line} imports {target} ({unit!r} is not below {own!r})")
    assert not bad, "\n".join(bad)


def test_the_rule_catches_an_upward_import(tmp_path):
    """The checker itself: a planted upward import is reported (so a silent parser cannot pass the suite)."""
    planted = tmp_path / "model.py"
    planted.write_text("def f():\n    from funnelcheck.engine.run import run_whatif\n")
    found = [(line, _unit(t)) for line, t in _imports(planted)]
    assert found == [(2, "engine")] and LEVEL["engine"] > LEVEL["model"]
