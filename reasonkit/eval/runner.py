"""The evaluation loop: plan -> generate -> score -> store -> summarize, one stage module each.

``run(config)`` is what ``reasonkit eval`` calls; ``evaluate(...)`` (exported as
``reasonkit.evaluate``) is the library form returning a pandas DataFrame with one row per completion
and the summary in ``df.attrs["summary"]``. Both accept an already-open ``engine`` (any
:class:`~reasonkit.engine.types.Backend`), which the GRPO trainer uses for periodic evaluation
with its own generation engine.

1. :mod:`.plan` — the benchmark, items, verifiers, adapters, resolved backend, the run directory
   (checked for resume) and the ``(item, adapter)`` groups already done;
2. :mod:`.generate` — the engine (given, or started here and closed here) and the pending items,
   generated in chunks of ``chunk_size`` items, adapter by adapter;
3. :mod:`.scoring` — every completion of a chunk scored by every verifier into a row;
4. :mod:`.store` — the chunk's rows appended and flushed, so a killed run resumes from its last chunk;
5. :mod:`.summarize` — summary.json from the rows of this run's items.

``rescore(config)`` recomputes every verdict from the saved completions (no model).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import ReasonkitError
from ..files import read_json
from reasonkit.tasks.registry import get_benchmark
from .config import EvalConfig
from .engine_io import is_error
from .generate import Progress, batches, open_backend, served, start_engine
from .plan import BASE, make_plan, previous_summary, refuse_changed_items
from reasonkit.tasks.prompts import PromptTemplate
from .scoring import batch_rows, resolve_all, score_completion
from .store import RunDir, read_samples
from .summarize import merge_timing, order_rows, summarize
from .report import print_summary

__all__ = ["BASE", "evaluate", "open_backend", "rescore", "run", "summarize", "to_dataframe"]


def run(config: EvalConfig, engine: Any = None, show: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run (or resume, or rescore) an evaluation; returns the rows of this run's items and the summary."""
    if config.rescore:
        return rescore(config, show=show)
    plan = make_plan(config, engine, open_backend)
    total = plan.total
    use = start_engine(plan, engine, total, show, opener=open_backend)
    progress = Progress(total, show)
    new_rows: list[dict[str, Any]] = []
    labels = served(plan, use, total)
    try:
        for batch in batches(plan, use, progress):
            rows = batch_rows(plan, batch, labels)
            plan.rundir.append(rows)
            new_rows.extend(rows)
    finally:
        progress.close()
        plan.rundir.close()
        use.close()
    rows = order_rows(plan.kept + new_rows, plan.items, plan.adapters)
    extra = {"model": plan.model_label, "model_path": use.model_path,
             "data_source": getattr(plan.bench, "source", None),
             "backend": getattr(use.engine, "name", None) if total else None, "backend_choice": use.choice,
             "timing": merge_timing(plan.previous, use.timing, generated=total),
             "resumed_groups": len(plan.done), "run_dir": str(plan.rundir.path)}
    if total and hasattr(use.engine, "describe"):
        extra["server"] = use.engine.describe()
    if not total:  # nothing generated now: what the generating run recorded stays
        extra.update({k: plan.previous[k] for k in ("model_path", "backend", "backend_choice", "server")
                      if plan.previous.get(k) is not None})
    summary = summarize(rows, plan.bench, plan.config.n, plan.adapters, dict(plan.config.adapters), plan.record,
                        plan.config.seed, extra)
    plan.rundir.write_summary(summary)
    return rows, summary


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
    need = {f for v in verifiers.values() for f in v.fields}
    lookup = None
    data = saved.get("data")
    user_file = bool(data) and not str(data).startswith("hub:") and Path(str(data)).expanduser().is_file()
    missing = any(not need <= set(r.get("reference") or {}) for r in rows)
    if user_file or missing:  # a user's file may have been edited since: its rows are checked
        items = bench.load(saved.get("split", "test"), data, None)
        refuse_changed_items(rows, items, data, rundir)
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
    previous = previous_summary(rundir)
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
