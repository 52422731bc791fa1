"""The plan stage of ``reasonkit eval``: what this run is and what is left to generate.

:func:`make_plan` loads the benchmark's items and verifiers, lists the adapters (``base`` first
unless ``--skip-base``), resolves the backend (:func:`resolve_backend`: under ``auto`` a resumed run
keeps the engine its start chose), writes the run's ``config.json`` record (:func:`config_record`,
the identity keys of :mod:`reasonkit.eval.identity`) and opens the run directory
(:meth:`reasonkit.eval.store.RunDir.prepare`: a changed identity key is refused, incomplete groups
and failed requests are dropped). The kept rows tell which ``(item, adapter)`` groups are done; a
saved row generated for other content under the same id is refused (:func:`refuse_changed_items`).
It says on stderr when it resumes (issue 28: never silently).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ReasonkitError
from ..files import read_json
from ..records import BASE
from reasonkit.tasks.registry import Benchmark, configure_benchmark
from .config import RESUME_KEYS, EvalConfig
from .identity import changed_items, engine_identity
from .scoring import resolve_all
from .store import RunDir
from reasonkit.engine import choose_backend

DEFAULT_MODEL_LABEL = "default:SmolLM2-135M-Instruct"


@dataclass
class Plan:
    """Everything the later stages need to know about a run, decided before any generation."""
    config: EvalConfig
    bench: Benchmark
    items: list[dict[str, Any]]
    verifiers: dict[str, Any]
    adapters: list[str]
    model_label: str
    rundir: RunDir
    backend: str            # the resolved backend name
    why: str                # why it was chosen (``--backend auto``)
    record: dict[str, Any]  # config.json
    previous: dict[str, Any]  # the run directory's earlier summary.json ({} when none)
    kept: list[dict[str, Any]]  # saved rows of complete groups
    done: set[tuple[str, str]]  # (item_id, adapter) groups already there
    early_engine: Any = None    # (engine, model_path) opened to ask an OpenAI server for its model

    @property
    def pending(self) -> list[dict[str, Any]]:
        """Items with at least one adapter left to generate, in data order."""
        return [it for it in self.items if any((it["id"], a) not in self.done for a in self.adapters)]

    @property
    def total(self) -> int:
        """Prompts left to generate (one per item and adapter not done)."""
        return sum((it["id"], a) not in self.done for it in self.items for a in self.adapters)


def build_benchmark(config: EvalConfig) -> Benchmark:
    return configure_benchmark(config.benchmark, verifiers=config.verifiers or None, columns=config.columns,
                               seed=config.seed, template=config.template, system=config.system,
                               prefill=config.prefill, raw=config.raw, few_shot=config.few_shot,
                               constant_prompt=config.constant_prompt)


def config_record(config: EvalConfig, bench: Benchmark, model_label: str, backend: str) -> dict[str, Any]:
    """config.json: the config as given plus the resolved identity keys (:mod:`reasonkit.eval.identity`)."""
    d = config.to_dict()
    d.update({"benchmark_version": bench.version, "template": bench.template.to_dict(),
              "verifiers": list(bench.verifiers), "adapters": [list(a) for a in config.adapters],
              "model": model_label, "columns": dict(bench.columns), "resolved_backend": backend,
              "engine_options": engine_identity(config.backend_options)})
    return d


def resolve_backend(config: EvalConfig, engine: Any, rundir: RunDir, prompts: int) -> tuple[str, str]:
    """``(backend, why)``: an engine's own name; under ``auto`` on resume, what the run's start chose
    (choosing again by the tokens left could switch engines mid-run); else ``choose_backend``."""
    if engine is not None:
        return str(getattr(engine, "name", config.backend)), "engine given"
    saved_path = rundir.path / "config.json"
    if config.backend == "auto" and saved_path.exists():
        saved = read_json(saved_path).get("resolved_backend")
        if saved:
            return choose_backend(saved)[0], f"as chosen when {rundir.path} was started"
    return choose_backend(config.backend, prompts * config.n * config.max_tokens)


def previous_summary(rundir: RunDir) -> dict[str, Any]:
    """The run directory's summary.json, or {} when there is none (or it does not parse)."""
    try:
        previous = read_json(rundir.path / "summary.json")
    except ReasonkitError:
        return {}
    return previous if isinstance(previous, dict) else {}


def refuse_changed_items(rows: list[dict[str, Any]], items: list[dict[str, Any]], source: Any, rundir: RunDir) -> None:
    """One line when saved rows were generated for other content under the same item id (issue 23, c)."""
    changed = changed_items(rows, items)
    if changed:
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        raise ReasonkitError(f"{source or 'the data'}: item {changed[0]}{more} is not the one {rundir.path} was "
                             "generated for (the data was edited in place); use another --output or delete the "
                             "directory")


def make_plan(config: EvalConfig, engine: Any, open_backend) -> Plan:
    """The plan of a run (see the module docstring). ``open_backend(config)`` is called only for
    ``--backend openai`` without ``--model``, to ask the server which model it serves."""
    bench = build_benchmark(config)
    items = bench.load(config.split, config.data, config.limit)
    verifiers = resolve_all(bench.verifiers)
    adapters = ([] if config.skip_base and config.adapters else [BASE]) + [name for name, _ in config.adapters]
    early = None
    if config.backend == "openai" and not config.model and engine is None:
        # the model is the server's only base model: ask it (cheap: /v1/models) so the records name it
        early = open_backend(config)
        config = replace(config, model=early[0].model)
    model_label = str(config.model) if config.model else DEFAULT_MODEL_LABEL
    rundir = RunDir(config.run_dir())
    resolved, why = resolve_backend(config, early[0] if early else engine, rundir, len(items) * len(adapters))
    record = config_record(config, bench, model_label, resolved)
    previous = previous_summary(rundir) if rundir.exists() else {}
    kept = rundir.prepare(record, RESUME_KEYS, config.n)
    config.to_yaml(rundir.path / "config.yaml")  # the resolved config: `reasonkit eval --config` re-runs it
    refuse_changed_items(kept, items, getattr(bench, "source", None) or config.data, rundir)
    plan = Plan(config, bench, items, verifiers, adapters, model_label, rundir, resolved, why, record, previous,
                kept, {(r["item_id"], r["adapter"]) for r in kept}, early)
    if plan.done:  # an existing run directory is reused: say so (issue 28: never silently)
        groups = {(it["id"], a) for it in items for a in adapters}
        print(f"resuming {rundir.path}: {len(plan.done & groups)} of {len(items) * len(adapters)} item groups are "
              f"already there; {plan.total} to generate (--output DIR for a fresh run)", file=sys.stderr)
    return plan
