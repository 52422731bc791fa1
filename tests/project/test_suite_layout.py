"""The layout of the test suite (issue 27, item 6): test modules sit in one folder per layer below tests/,
import no other test module (shared code goes in tests/conftest.py or a helper module at tests/), and
no two share a basename (pytest's default import mode imports each test file as a top-level module
named after it, so a second ``test_x.py`` in another folder would not import)."""
from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
LAYERS = {"verifiers", "engine", "tasks", "eval", "train", "cli", "qa", "benchmarks", "docs", "project"}
TEST_FILES = sorted(TESTS.rglob("test_*.py"))


def imported_test_modules(source: str) -> list[str]:
    """Names of test modules (``test_*``) that ``source`` imports, at any depth of a dotted name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.ImportFrom):  # relative: `from . import test_x` or `from .test_x import f`
            names = [node.module] if node.module else [alias.name for alias in node.names]
        else:
            continue
        found += [name for name in names if any(part.startswith("test_") for part in name.split("."))]
    return found


@pytest.mark.parametrize("source, expected", [
    ("from test_grpo_trainer import make_trainer", ["test_grpo_trainer"]),
    ("import test_grpo_trainer as t", ["test_grpo_trainer"]),
    ("from tests.train.test_sft import x", ["tests.train.test_sft"]),
    ("from . import test_sft", ["test_sft"]),
    ("def f():\n    import test_models\n", ["test_models"]),
    ("from train_fakes import make_trainer\nimport pytest", []),
    ("from reasonkit.grpo import trainer", []),
])
def test_the_scan_finds_test_module_imports(source, expected):
    assert imported_test_modules(source) == expected


def test_the_suite_is_found():
    assert len(TEST_FILES) > 50 and Path(__file__).resolve() in TEST_FILES


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: str(p.relative_to(TESTS)))
def test_no_test_module_imports_another(path):
    assert imported_test_modules(path.read_text()) == [], \
        f"{path.relative_to(TESTS)} imports a test module: move the shared code to tests/conftest.py or a helper module"


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: str(p.relative_to(TESTS)))
def test_each_test_module_sits_in_a_layer_folder(path):
    assert path.parent.parent == TESTS and path.parent.name in LAYERS, \
        f"{path.relative_to(TESTS)}: test modules go in tests/<layer>/ with <layer> one of {sorted(LAYERS)}"


def test_no_two_test_modules_share_a_basename():
    twice = [name for name, n in Counter(p.name for p in TEST_FILES).items() if n > 1]
    assert twice == []


def test_layer_folders_are_not_packages():
    # no __init__.py: with one, pytest would import tests/<layer>/test_x.py as <layer>.test_x, and the
    # folder names (verifiers, train, ...) would shadow or be shadowed by real top-level modules
    assert sorted(p.relative_to(TESTS).as_posix() for p in TESTS.rglob("__init__.py")) == []
