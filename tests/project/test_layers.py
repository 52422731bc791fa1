"""The architecture as a checked contract (issue 27; the layer map is in CONTRIBUTING.md).

* import-linter's contracts in ``pyproject.toml`` (``[tool.importlinter]``): the layers, the one
  allowed way from training into evaluation (``reasonkit.api``), no torch in the light layers;
* no module imports another package's ``_private`` name or module;
* package-internal imports sit at module top, unless a ``# lazy: <why>`` comment (on the import or
  the line above it) says why that one must wait (a heavy optional dependency, a light entry point).

import-linter runs on a copy of the tree where ``verifiers/`` sits at ``reasonkit/verifiers`` (where it
is installed), so that the imports of ``reasonkit.verifiers`` are seen too.
"""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _modules() -> list[tuple[Path, str, bool]]:
    """``(file, dotted module name, is a package __init__)`` for every module of reasonkit."""
    out = []
    for path in sorted([*(REPO / "reasonkit").rglob("*.py"), *(REPO / "verifiers").rglob("*.py")]):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[0] == "verifiers":
            parts.insert(0, "reasonkit")
        is_pkg = parts[-1] == "__init__"
        out.append((path, ".".join(parts[:-1] if is_pkg else parts), is_pkg))
    return out


def _target(module: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` statement reads from."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _package(module: str) -> str:
    """The package a module belongs to: ``reasonkit.<sub>`` for a sub-package, else the module itself."""
    parts = module.split(".")
    if len(parts) >= 2 and ((REPO / "reasonkit" / parts[1]).is_dir() or parts[1] == "verifiers"):
        return ".".join(parts[:2])
    return module


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _is_module(dotted: str) -> bool:
    return dotted in {m for _, m, _ in _modules()}


def test_import_contracts_kept(tmp_path):
    tree = tmp_path / "tree"
    ignore = shutil.ignore_patterns("__pycache__", "data")
    shutil.copytree(REPO / "reasonkit", tree / "reasonkit", ignore=ignore)
    shutil.copytree(REPO / "verifiers", tree / "reasonkit" / "verifiers", ignore=ignore)
    code = ("import sys\nfrom importlinter.cli import lint_imports_command\n"
            f"lint_imports_command([{str(REPO / 'pyproject.toml')!r}, '--no-cache'])\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=tree, capture_output=True, text=True, timeout=600,
                         env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout and "BROKEN" not in res.stdout


def test_no_module_imports_another_packages_private_names():
    bad = []
    for path, module, is_pkg in _modules():
        tree = ast.parse(path.read_text())
        bound: dict[str, str] = {}  # local name -> the reasonkit module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _target(module, is_pkg, node)
                if not (target == "reasonkit" or target.startswith("reasonkit.")):
                    continue
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    if _is_module(full):
                        bound[alias.asname or alias.name] = full
                    where = full if _is_module(full) else target
                    hidden = any(_private(p) for p in full.split(".")[1:])
                    if hidden and _package(where) != _package(module):
                        bad.append(f"{path.relative_to(REPO)}:{node.lineno} imports {full}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("reasonkit.") and alias.asname:
                        bound[alias.asname] = alias.name
                    if any(_private(p) for p in alias.name.split(".")) and _package(alias.name) != _package(module):
                        bad.append(f"{path.relative_to(REPO)}:{node.lineno} imports {alias.name}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
                    and _private(node.attr) and _package(bound[node.value.id]) != _package(module)):
                bad.append(f"{path.relative_to(REPO)}:{node.lineno} uses {bound[node.value.id]}.{node.attr}")
    assert not bad, "another package's private names:\n" + "\n".join(bad)


def test_package_imports_at_module_top_unless_lazy_says_why():
    bad = []
    for path, module, is_pkg in _modules():
        text = path.read_text()
        lines = text.splitlines()
        for fn in ast.walk(ast.parse(text)):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom):
                    targets = [_target(module, is_pkg, node)]
                elif isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                else:
                    continue
                if not any(t == "reasonkit" or t.startswith("reasonkit.") for t in targets):
                    continue
                if not any("# lazy:" in line for line in lines[max(node.lineno - 2, 0):node.end_lineno]):
                    bad.append(f"{path.relative_to(REPO)}:{node.lineno} imports {', '.join(targets)} in a function")
    assert not bad, ("package-internal imports inside functions without a `# lazy: <why>` comment:\n"
                     + "\n".join(bad))
