"""The package's architecture, checked: layers without cycles (import-linter), imports at module
level, models that only model."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "recbole_rlmm"

#: Modules allowed to import a module of the package inside a function, and why: the command
#: line answers ``--help`` without torch or RecBole, and ``import recbole_rlmm`` costs nothing
#: (each such import carries a ``lazy:`` comment giving the reason).
LAZY_IMPORTERS = {
    "recbole_rlmm/__init__.py": "the public names load on first use (PEP 562)",
    "recbole_rlmm/compat/numerics.py": "the LightGCN repair needs torch, the import of the package must not",
    "recbole_rlmm/cli/run.py": "torch and RecBole load when a run starts",
    "recbole_rlmm/cli/experiment.py": "torch and RecBole load when compare/tune start",
    "recbole_rlmm/cli/inference.py": "torch and RecBole load when recommend/export/gates/serve start",
    "recbole_rlmm/cli/prepare.py": "pandas loads when prepare starts",
}


def _function_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a package module inside a function of ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("recbole_rlmm"):
                found.append((inner.lineno, inner.module or ""))
            elif isinstance(inner, ast.Import):
                found += [(inner.lineno, a.name) for a in inner.names if a.name.startswith("recbole_rlmm")]
    return found


def test_package_modules_are_imported_at_module_level() -> None:
    """No module imports a package module inside a function, but the listed lazy ones, each
    import with a ``lazy:`` comment; function-local imports hid import cycles."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        lines = path.read_text(encoding="utf-8").splitlines()
        for lineno, module in _function_imports(path):
            if rel not in LAZY_IMPORTERS:
                offenders.append(f"{rel}:{lineno} imports {module} inside a function")
                continue
            window = " ".join(lines[lineno - 2 : lineno + 3])
            if "lazy:" not in window and rel != "recbole_rlmm/__init__.py":
                offenders.append(f"{rel}:{lineno} imports {module} lazily without a `lazy:` reason")
    assert not offenders, "\n".join(offenders)


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter is in the test extra")
def test_layer_contract_holds() -> None:
    """The layers and acyclic-siblings contracts of pyproject.toml ([tool.importlinter])."""
    out = subprocess.run(["lint-imports"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "broken" in out.stdout and "0 broken" in out.stdout


def test_the_command_line_loads_neither_torch_nor_recbole() -> None:
    code = "import sys, recbole_rlmm.cli as cli; cli.build_parser(); print('torch' in sys.modules, 'recbole' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr


@pytest.mark.parametrize("path", sorted((PACKAGE / "model").glob("*.py")), ids=lambda p: p.name)
def test_models_only_model(path: Path) -> None:
    """A model reads its configuration and the training data: no validation data, no yaml,
    no statistics test, no key validation, no timing, no logging of decisions."""
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    imported = {
        (n.module or "") for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
    } | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    for banned in ("yaml", "recbole_rlmm.plan", "recbole_rlmm.runner", "recbole_rlmm.keys.values",
                   "recbole_rlmm.keys.sources", "recbole_rlmm.timing", "logging", "time", "recbole_rlmm.config"):
        assert not any(m == banned or m.startswith(banned + ".") for m in imported), (path.name, banned)
    for word in ("valid_data", "validation_probe", "read_yaml", "modality_signal", "perf_counter"):
        assert word not in text, (path.name, word)
