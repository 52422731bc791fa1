"""Importing reasonkit and its verifiers pulls in no torch / transformers / vllm, and nothing
installs a top-level module called `verifiers` (that name belongs to another PyPI project)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "vllm")

# Every module of the verifier suite, plus the CLI. A module listed here that does not exist in
# the tree is a failure (the list follows the files in verifiers/, see test below).
VERIFIER_MODULES = sorted(p.stem for p in (REPO / "verifiers").glob("*.py") if p.stem != "__init__")


def _run(code: str, cwd: Path) -> dict:
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


SUITE = {"base", "countdown", "format", "gsm8k", "stepwise", "math", "compose", "rewards", "batch"}
NAMES = {"countdown", "format", "format_soft", "gsm8k", "gsm8k_flexible", "stepwise", "math"}


def test_expected_verifier_modules_exist():
    # The suite's modules as the issue names them; imported below with every other file in verifiers/.
    missing = SUITE - set(VERIFIER_MODULES)
    assert not missing, f"verifier modules missing from verifiers/: {sorted(missing)}"


def test_imports_pull_in_no_heavy_libraries(tmp_path):
    mods = ["reasonkit", "reasonkit.verifiers", "reasonkit.cli", "reasonkit.verify_cli",
            *(f"reasonkit.verifiers.{m}" for m in VERIFIER_MODULES)]
    code = (
        "import importlib, json, sys\n"
        f"for m in {mods!r}: importlib.import_module(m)\n"
        f"print(json.dumps({{'heavy': sorted(k for k in sys.modules if k.split('.')[0] in {HEAVY!r}),"
        " 'registered': __import__('reasonkit.verifiers', fromlist=['x']).verifier_names()}))\n"
    )
    out = _run(code, tmp_path)
    assert out["heavy"] == [], f"importing the verifier suite pulled in {out['heavy']}"
    assert NAMES <= set(out["registered"])


def test_plain_import_registers_the_suite(tmp_path):
    # `import reasonkit.verifiers` alone (what a TRL user does) must register every verifier
    code = "import json, reasonkit.verifiers as v\nprint(json.dumps(v.verifier_names()))\n"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    names = set(json.loads(res.stdout.strip().splitlines()[-1]))
    assert NAMES <= names


def test_no_top_level_verifiers_module(tmp_path):
    # cwd=tmp_path keeps the repo folder off sys.path: only site-packages (and .pth / editable
    # finders) are searched. An editable install must map only reasonkit.verifiers.
    code = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.find_spec('verifiers')\n"
        "print(json.dumps({'spec': None if spec is None else str(spec.origin)}))\n"
    )
    out = _run(code, tmp_path)
    assert out["spec"] is None, f"a top-level `verifiers` module is importable: {out['spec']}"


def test_reasonkit_verifiers_comes_from_repo_or_installed_package(tmp_path):
    code = (
        "import json, reasonkit, reasonkit.verifiers as v\n"
        "print(json.dumps({'verifiers': v.__file__, 'reasonkit': reasonkit.__file__}))\n"
    )
    out = _run(code, tmp_path)
    vfile = Path(out["verifiers"]).resolve()
    in_repo = vfile == (REPO / "verifiers" / "__init__.py").resolve()
    installed = vfile.parent.name == "verifiers" and vfile.parent.parent.name == "reasonkit"
    assert in_repo or installed, f"reasonkit.verifiers loaded from an unexpected place: {vfile}"
    assert Path(out["reasonkit"]).resolve().parent.name == "reasonkit"
