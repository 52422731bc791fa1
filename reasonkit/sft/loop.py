"""The rejection-sampling fine-tuning loop and its run directory.

Layout of ``OUTPUT`` (one ``iter-N`` per iteration)::

    config.yaml             the resolved SFTConfig (compared when the same command is run again)
    iter-N/samples/         the eval run that sampled k completions per item (samples.jsonl, summary.json)
    iter-N/kept.jsonl       the completions kept by the filter this iteration (reasonkit.sft.select)
    iter-N/adapter/         the model fine-tuned on everything kept so far
    metrics.jsonl           one line per iteration: items, samples, correct share, kept, loss, minutes
    adapter/                the last iteration's adapter: what `reasonkit eval --lora` takes

Running the same command again continues an interrupted run: a sampling run resumes as any eval run
does, and an iteration whose adapter is complete is not trained again. A changed setting that alters
what the run computes is refused in one line (``output``, ``backend`` and its options may change).
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from reasonkit.api import evaluate_rows, read_samples
from reasonkit.errors import ReasonkitError
from reasonkit.files import read_json, to_json, write_lines, write_text

from .config import SFTConfig
from .select import merge, select, verifier_columns
from reasonkit.tasks.registry import configure_benchmark
from reasonkit.engine.models import resolve_model
from .finetune import finetune


def _echo(show: bool, text: str) -> None:
    if show:
        import click

        click.echo(text, err=True)


def check_output(cfg: SFTConfig, out: Path) -> None:
    """Write ``config.yaml``, or check that a run already there was started with the same settings."""
    import yaml

    saved_path = out / "config.yaml"
    if saved_path.is_file():
        saved = yaml.safe_load(saved_path.read_text()) or {}
        mine = cfg.identity()
        for key, value in mine.items():
            if key in saved and saved[key] != value:
                raise ReasonkitError(f"{out} holds an sft run with {key} = {saved[key]!r}, not {value!r}; "
                                         "run it with the same settings to continue it, or choose another --output")
        return
    out.mkdir(parents=True, exist_ok=True)
    write_text(saved_path, yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True))


def headline_verifier(cfg: SFTConfig) -> str:
    if cfg.verifier:
        return cfg.verifier

    bench = configure_benchmark(cfg.dataset, columns=cfg.columns or None, seed=cfg.seed)
    if not bench.verifiers:
        raise ReasonkitError(f"dataset {cfg.dataset!r} names no verifier; pass --verifier NAME")
    return bench.verifiers[0]


def read_from_samples(path: str, verifier: str | None) -> tuple[list[dict[str, Any]], str]:
    """The rows of an eval run's samples.jsonl and the verifier that filters them."""
    rows, _ = read_samples(Path(path), strict=True)
    if not rows:
        raise ReasonkitError(f"--from-samples {path}: no rows")
    for i, row in enumerate(rows, start=1):
        missing = [k for k in ("item_id", "prompt", "completion") if k not in row]
        if missing:
            raise ReasonkitError(f"--from-samples {path} line {i}: no {missing[0]!r} (not an eval run's samples.jsonl)")
    scored = verifier_columns(rows)
    if verifier is None:
        summary = Path(path).with_name("summary.json")
        primary = read_json(summary).get("primary_verifier") if summary.is_file() else None
        verifier = primary if primary in scored else (scored[0] if scored else None)
    if verifier is None or verifier not in scored:
        raise ReasonkitError(f"--from-samples {path}: no verdicts of {verifier!r} (scored by: "
                                 f"{', '.join(scored) or 'none'}); pass --verifier, or rescore the run with it")
    return rows, verifier


def sample(cfg: SFTConfig, adapter: str | None, out: Path, show: bool) -> list[dict[str, Any]]:
    """k completions per item from the current policy: an eval run into ``out`` (resumable)."""
    rows, _ = evaluate_rows(model=cfg.model, lora=(f"policy={adapter}",) if adapter else (), skip_base=bool(adapter),
                            benchmark=cfg.dataset, data=cfg.data, split=cfg.split, limit=cfg.limit,
                            n=cfg.samples_per_item, temperature=cfg.temperature, top_p=cfg.top_p,
                            max_tokens=cfg.max_tokens, stop=cfg.stop, seed=cfg.seed, output=str(out), template=cfg.template,
                            few_shot=cfg.sample_few_shot,
                            system=cfg.system, prefill=cfg.prefill, raw=cfg.raw, columns=cfg.columns,
                            verifiers=(cfg.verifier,) if cfg.verifier else (), backend=cfg.backend,
                            backend_options=cfg.backend_options, show=show)
    return rows


def plain_prompts(cfg: SFTConfig, model_path: str, kept: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``kept`` with each prompt rendered again without the worked examples (``sample_few_shot``): the
    model is fine-tuned on the prompt it will be asked, not on the scaffold it was sampled from."""
    from transformers import AutoTokenizer

    bench = configure_benchmark(cfg.dataset, columns=cfg.columns or None, seed=cfg.seed, template=cfg.template,
                                system=cfg.system, prefill=cfg.prefill, raw=cfg.raw)
    items = {str(it["id"]): it for it in bench.load(cfg.split, cfg.data, cfg.limit)}
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    out = []
    for row in kept:
        item = items.get(str(row["item_id"]))
        if item is None:
            raise ReasonkitError(f"item {row['item_id']}: sampled but no longer in the data ({cfg.data or cfg.dataset}); "
                                 "was the file edited while the run was stopped?")
        out.append({**row, "prompt": bench.render(item, tokenizer)})
    return out


def run_sft(cfg: SFTConfig, show: bool = True) -> dict[str, Any]:
    """Run (or continue) every iteration; returns the last iteration's metrics and the adapter path."""
    out = cfg.run_dir()
    check_output(cfg, out)
    model_path = resolve_model(cfg.model)
    verifier = None if cfg.from_samples else headline_verifier(cfg)
    adapter, kept_all, last = cfg.init_adapter, [], {}
    metrics_path = out / "metrics.jsonl"
    done_iters = {m["iteration"] for m in map(json.loads, metrics_path.read_text().splitlines())} \
        if metrics_path.is_file() else set()
    for it in range(1, cfg.iterations + 1):
        idir = out / f"iter-{it}"
        t0 = time.perf_counter()
        if it == 1 and cfg.from_samples:
            rows, verifier = read_from_samples(cfg.from_samples, cfg.verifier)
        else:
            _echo(show, f"iteration {it}/{cfg.iterations}: sampling {cfg.samples_per_item} per item")
            rows = sample(cfg, adapter, idir / "samples", show)
        sample_s = time.perf_counter() - t0
        kept = select(rows, verifier, cfg.max_per_item, cfg.shortest_first, iteration=it)
        if cfg.sample_few_shot and not (it == 1 and cfg.from_samples):
            kept = plain_prompts(cfg, model_path, kept)
        idir.mkdir(parents=True, exist_ok=True)
        write_lines((to_json(r) for r in kept), idir / "kept.jsonl")
        kept_all = merge(kept_all, kept, cfg.max_per_item, cfg.shortest_first)
        items = {str(r["item_id"]) for r in rows}
        scored = [r for r in rows if r.get("finish_reason") != "error"]
        line = {"iteration": it, "verifier": verifier, "items": len(items), "samples": len(scored),
                "correct_share": sum(r.get(f"{verifier}.correct") is True for r in scored) / max(1, len(scored)),
                "truncated_share": sum(r.get("finish_reason") == "length" for r in scored) / max(1, len(scored)),
                "items_solved": len({r["item_id"] for r in kept}), "kept": len(kept), "kept_total": len(kept_all),
                "sample_minutes": round(sample_s / 60, 3)}
        _echo(show, f"iteration {it}: {line['items_solved']}/{line['items']} items have a correct completion; "
                    f"training on {len(kept_all)} completions")
        if not kept_all:
            raise ReasonkitError(f"iteration {it}: no completion of {len(items)} items was correct by {verifier!r}; "
                                     "nothing to fine-tune on (raise --samples-per-item or --max-tokens, or start from "
                                     "easier items)")
        target = idir / "adapter"
        t1 = time.perf_counter()
        if (target / "adapter_config.json").is_file() or (target / "config.json").is_file():
            _echo(show, f"iteration {it}: {target} is complete; not trained again")
            trained = {}
        else:
            shutil.rmtree(target.with_name(target.name + ".tmp"), ignore_errors=True)

            trained = finetune(cfg, kept_all, model_path, target, show=show)
        line.update(trained, train_minutes=round((time.perf_counter() - t1) / 60, 3))
        if it not in done_iters:
            with metrics_path.open("a") as fh:
                fh.write(to_json(line) + "\n")
        adapter, last = str(target.resolve()), line
    final = out / "adapter"
    if final.exists():
        shutil.rmtree(final)
    shutil.copytree(adapter, final)
    return {**last, "adapter": str(final)}
