"""The one harness every script in ``benchmarks/`` measures and records with.

A script is run as ``python benchmarks/<script>.py`` (Python puts the script's own folder first on
``sys.path``, so ``import harness`` needs no path hack; tests load scripts through
``tests/bench_scripts.py``, which does the same). It uses four things from here:

- ``common_args(parser)``: the flags every script shares: ``--record`` (write the results into
  ``--results``, default ``benchmarks/results/``), ``--results DIR``, ``--suffix`` (other shapes and
  hosts: ``grpo-avx2``), ``--quick`` (a smoke run) and, where the script times rounds, ``--rounds``.
- ``start(__file__, args, argv)``: a :class:`Run` holding the command line, the settings and the
  machine, described with one schema by :func:`machine` *before* the measurement (the load average
  then is the one that matters).
- ``rounds(sides, n)``: every side timed ``n`` times, interleaved (side A, B, C, then A, B, C again,
  so a slow spell of a shared machine hits every side of a round), summarised by :func:`summarize`:
  per side the timings, the median and the min-max spread, the ratio of medians to a named baseline
  and the per-round ratios (median, min-max).
- ``Run.record(results, md_lines)``: ``STEM.json`` + ``STEM.md`` side by side, the JSON in one
  schema: ``{"benchmark", "command", "machine", "settings", "results", "recorded_at"}``.
- ``save_state(work, name, obj)``: a script's bookkeeping as JSON in its work folder (never in the results).

Recording policy: a result lands in ``benchmarks/results/`` only from an explicit full run, one given
``--record``. A run without it (every smoke and quick run, whatever its sizes) prints its table and
writes nothing there; pointed elsewhere with ``--results DIR`` it writes there. ``--record`` together
with ``--quick`` is refused (exit 2): a smoke run is never a recorded result.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
VERSIONS = ("torch", "transformers", "vllm", "trl", "peft", "accelerate", "deepspeed", "lm-eval", "math-verify",
            "reasoning-gym")
SCHEMA = ("benchmark", "command", "machine", "settings", "results", "recorded_at")


def fail(message: str, script: str | None = None) -> None:
    """Bad input: one line on stderr naming the flag, exit code 2 (the house rule for user errors)."""
    name = script or Path(sys.argv[0]).name or "benchmark"
    sys.stderr.write(f"{name}: {message}\n")
    raise SystemExit(2)


# --- the machine --------------------------------------------------------------------------------

def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""


def cpu_model(default: str = "") -> str:
    """The CPU's model name from /proc/cpuinfo; ``default`` where there is none."""
    return next((ln.split(":", 1)[1].strip() for ln in _read("/proc/cpuinfo").splitlines()
                 if ln.startswith("model name")), default)


def _memory_gib() -> float | None:
    kib = next((ln.split()[1] for ln in _read("/proc/meminfo").splitlines() if ln.startswith("MemTotal:")), None)
    return round(int(kib) / 1024**2, 1) if kib else None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git() -> dict:
    def git(*cmd: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", str(ROOT), *cmd], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def _gpu() -> str | None:
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        except Exception:  # noqa: BLE001 - a broken driver is "no GPU" for the description
            return None
        return None
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        names = [ln.strip() for ln in out.stdout.splitlines() if ln.strip()]
        return ", ".join(names) if out.returncode == 0 and names else None
    return None


def machine() -> dict:
    """The machine, one schema for every script: CPU model, architecture, cores, torch's CPU kernel
    level, memory, the load average now (call it before the measurement), the GPU if any, the Python
    and library versions, and the git commit with a dirty flag. Versions come from the installed
    distributions, so describing the machine imports nothing; ``torch_cpu_capability`` is filled only
    where the script has imported torch already (``None`` otherwise)."""
    torch = sys.modules.get("torch")
    capability = None
    if torch is not None:
        try:
            capability = torch.backends.cpu.get_cpu_capability()
        except AttributeError:
            capability = None
    return {
        "cpu": cpu_model(platform.processor() or "unknown CPU"),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "torch_cpu_capability": capability,
        "memory_gib": _memory_gib(),
        "load_avg_before": [round(x, 2) for x in os.getloadavg()],
        "gpu": _gpu(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {name: v for name in VERSIONS if (v := _version(name))},
        "git": _git(),
    }


def machine_line(m: dict) -> str:
    """The machine as one Markdown line (every results page describes its machine the same way)."""
    kernels = f", torch kernels {m['torch_cpu_capability']}" if m.get("torch_cpu_capability") else ""
    mem = f", {m['memory_gib']} GiB" if m.get("memory_gib") else ""
    gpu = f"; GPU {m['gpu']}" if m.get("gpu") else "; no GPU"
    versions = ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items()
                         if k in ("torch", "transformers", "vllm", "trl", "lm-eval", "math-verify"))
    git = m.get("git") or {}
    commit = f"; commit {git['commit'][:10]}{' (dirty)' if git.get('dirty') else ''}" if git.get("commit") else ""
    load = m.get("load_avg_before") or [0.0]
    return (f"Machine: {m['cpu']} ({m['arch']}{kernels}), {m['cores']} cores{mem}{gpu}; load average before the "
            f"run {load[0]:.1f}; Python {m['python']}{', ' + versions if versions else ''}{commit}.")


# --- rounds, medians, spreads -------------------------------------------------------------------

def spread(values: list[float]) -> dict:
    """``{"median", "min", "max"}`` of ``values`` (``None``s where there are none)."""
    values = list(values)
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(times: dict[str, list[float]], baseline: str | None = None) -> dict[str, dict]:
    """Per side: ``seconds`` (every round), ``median``, ``min``, ``max``; against ``baseline`` (a side's
    name) also ``vs_baseline`` (median over the baseline's median) and, where both sides have the same
    number of rounds, ``round_ratios`` (each round's side / baseline) with their ``median``, ``min`` and
    ``max`` as ``round_ratio``: with interleaved rounds, a slow spell of the machine cancels out of them."""
    if baseline is not None and baseline not in times:
        raise ValueError(f"baseline {baseline!r} is not one of the sides {sorted(times)}")
    out = {name: {"seconds": list(t), **spread(t)} for name, t in times.items()}
    if baseline is None:
        return out
    base = out[baseline]
    for name, row in out.items():
        row["vs_baseline"] = row["median"] / base["median"] if base["median"] else None
        if len(times[name]) == len(times[baseline]) and all(times[baseline]):
            row["round_ratios"] = [a / b for a, b in zip(times[name], times[baseline])]
            row["round_ratio"] = spread(row["round_ratios"])
    return out


def rounds(sides: dict[str, Callable[[], Any]], n: int, *, interleave: bool = True, baseline: str | None = None,
           clock: Callable[[], float] = time.perf_counter, alternate: bool = False,
           report: Callable[[str, int, float], None] | None = None) -> dict[str, dict]:
    """Time every side ``n`` times and :func:`summarize` them. Interleaved (the default): round by round,
    every side once per round (``alternate``: the order reversed every other round, so no side always
    runs right after the same other one); else each side's ``n`` runs back to back. A side's callable
    may return a number: that is taken as its time (a script that times only part of its work, or
    that reads the time from a subprocess); otherwise ``clock`` around the call is. ``report(name,
    round, seconds)`` is called after each run (progress lines)."""
    if n < 1:
        raise ValueError(f"rounds: n must be at least 1, not {n}")
    names = list(sides)
    if interleave:
        order = [(r, name) for r in range(n) for name in (names[::-1] if alternate and r % 2 else names)]
    else:
        order = [(r, name) for name in names for r in range(n)]
    times: dict[str, list[float]] = {name: [] for name in names}
    for r, name in order:
        t0 = clock()
        value = sides[name]()
        seconds = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else clock() - t0
        times[name].append(seconds)
        if report:
            report(name, r, seconds)
    return summarize(times, baseline)


# --- flags, the run, the record -----------------------------------------------------------------

def common_args(parser: argparse.ArgumentParser, *, rounds: int | None = None, quick: str | None = "print only") \
        -> argparse.ArgumentParser:
    """Add the shared flags: ``--record/--no-record``, ``--results DIR``, ``--suffix``; ``--rounds`` when
    ``rounds`` is its default; ``--quick`` (alias ``--smoke``) unless ``quick`` is None (scripts whose
    smoke run is only smaller sizes)."""
    parser.add_argument("--record", action=argparse.BooleanOptionalAction, default=False,
                        help="an explicit full run: write the results into --results (default: print only)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="folder for the results files (default benchmarks/results/, written only with "
                             "--record; another folder is written on any run)")
    parser.add_argument("--suffix", default="", help="appended to the results file name (other shapes, hosts)")
    if rounds is not None:
        parser.add_argument("--rounds", type=int, default=rounds, help=f"interleaved timing rounds (default {rounds})")
    if quick is not None:
        parser.add_argument("--quick", "--smoke", dest="quick", action="store_true", help=f"smoke run: {quick}")
    return parser


def check_args(args: argparse.Namespace, script: str | None = None) -> argparse.Namespace:
    """Refuse what the shared flags must not be: ``--rounds`` below 1, a recorded smoke run."""
    if getattr(args, "rounds", 1) is not None and getattr(args, "rounds", 1) < 1:
        fail(f"--rounds {args.rounds} must be at least 1", script)
    if getattr(args, "quick", False) and args.record:
        fail("--record with --quick: a smoke run is never recorded (drop --quick for a full run)", script)
    return args


def _is_results_dir(folder: Path) -> bool:
    """``benchmarks/results/`` or a folder inside it: the recorded results, written only with ``--record``."""
    folder, results = Path(folder).resolve(), RESULTS.resolve()
    return folder == results or results in folder.parents


def path(stem: Path, ext: str) -> Path:
    """``stem`` + ``ext``. Not ``with_suffix``: a stem like ``learning-beta0.04`` keeps its ``.04``."""
    stem = Path(stem)
    return stem.with_name(stem.name + ext)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def write(stem: Path, record: dict, md_lines: list[str]) -> Path:
    """Write ``record`` as JSON and ``md_lines`` as Markdown next to each other; returns the .md path."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    path(stem, ".json").write_text(json.dumps(_jsonable(record), indent=2) + "\n")
    md = path(stem, ".md")
    md.write_text("\n".join(md_lines) + "\n")
    print(f"recorded {md}")
    return md


def save_state(folder: Path, name: str, obj: Any) -> Path:
    """A script's own bookkeeping as JSON in its work folder (e.g. what a stage took, for a later
    ``--reuse``); never into the recorded results, which only :func:`write` writes."""
    folder = Path(folder)
    if _is_results_dir(folder):
        fail(f"{folder}: a work folder inside benchmarks/results/ (state is never written there)")
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / name
    out.write_text(json.dumps(_jsonable(obj), indent=2) + "\n")
    return out


def results_of(record: dict) -> dict:
    """The figures of a results JSON: its ``results`` in this schema; the whole object in the per-script
    layouts recorded before the harness (those files keep their content until a script re-records)."""
    return record["results"] if "recorded_at" in record and "results" in record else record


def load(file: Path) -> dict:
    """A results JSON's figures (:func:`results_of`)."""
    return results_of(json.loads(Path(file).read_text()))


class Run:
    """One invocation of a script: the command, the settings, the machine (described at the start)."""

    def __init__(self, script: str, args: argparse.Namespace, argv: list[str] | None = None,
                 benchmark: str | None = None, describe: bool = True):
        name = Path(script).stem
        self.script, self.args = Path(script).name, args
        self.benchmark = benchmark or name.removeprefix("bench_")
        argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
        self.command = f"python benchmarks/{self.script} {shlex.join(argv)}".strip()
        self.machine = machine() if describe else None

    @property
    def settings(self) -> dict:
        return {k: v for k, v in vars(self.args).items() if k not in ("record", "results")}

    def stem(self, name: str | None = None, folder: Path | None = None) -> Path | None:
        """Where ``name`` (default the benchmark) + ``--suffix`` is recorded: in ``folder`` (default
        ``--results``; a script's partial run names its work folder); ``None`` where this run records
        nothing (no ``--record`` and the folder is ``benchmarks/results/``)."""
        folder = Path(folder if folder is not None else getattr(self.args, "results", RESULTS))
        if _is_results_dir(folder) and not getattr(self.args, "record", False):
            return None
        return folder / f"{name or self.benchmark}{getattr(self.args, 'suffix', '')}"

    def record(self, results: Any, md_lines: list[str], name: str | None = None, folder: Path | None = None) \
            -> Path | None:
        """Write ``STEM.json`` (the one schema) and ``STEM.md``; print why not and return ``None`` on a
        run that does not record."""
        stem = self.stem(name, folder)
        if stem is None:
            print(f"not recorded: {self.script} writes benchmarks/results/ only on a full run given --record "
                  "(--results DIR writes another folder)")
            return None
        if getattr(self.args, "quick", False) and _is_results_dir(stem.parent):
            fail("--record with --quick: a smoke run is never recorded", self.script)
        if self.machine is None:
            self.machine = machine()
        rec = {"benchmark": self.benchmark, "command": self.command, "machine": self.machine,
               "settings": self.settings, "results": results,
               "recorded_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
        return write(stem, rec, md_lines)


def start(script: str, args: argparse.Namespace, argv: list[str] | None = None, benchmark: str | None = None) -> Run:
    """Check the shared flags and describe the machine: call it before measuring anything."""
    check_args(args, Path(script).name)
    return Run(script, args, argv, benchmark)
