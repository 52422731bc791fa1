"""``reasonkit eval``, ``reasonkit report`` and ``reasonkit generate``. Heavy libraries load inside the
command bodies only."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..config_cli import parse_pairs
from ..errors import ReasonkitError
from .config import EvalConfig
from .report import print_summary, report
from .runner import run, BASE, open_backend
from reasonkit.tasks.prompts import PromptTemplate, prompt_text
from reasonkit.engine import choose_backend
from reasonkit.engine.types import SamplingConfig
from .engine_io import engine_prompt
from ..files import read_text

CTX = {"help_option_names": ["-h", "--help"]}


def _limit(value: str) -> int | None:
    if value.strip().lower() in ("all", "none"):
        return None
    try:
        return int(value)
    except ValueError:
        raise ReasonkitError(f"--limit {value!r}: give a number of items or 'all'") from None


def server_options(f):
    """The flags shared by eval and generate for engines and OpenAI-compatible servers."""
    for opt in reversed([
        click.option("--base-url", "base_url", multiple=True, metavar="URL",
                     help="--backend openai: server base URL ending in /v1; repeat for replicas."),
        click.option("--concurrency", default=None, type=int, help="--backend openai: requests in flight "
                     "(default 64 per replica)."),
        click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True,
                     help="Environment variable holding the API key (never written anywhere)."),
        click.option("--backend-options", "backend_options", default=None, metavar="K=V,...",
                     help="Engine options, e.g. tensor_parallel_size=2,max_model_len=4096 (vllm) or "
                     "timeout=600,max_retries=8 (openai)."),
        click.option("--chat-template-kwargs", "chat_template_kwargs", default=None, metavar="K=V,...",
                     help="Passed to the chat template, e.g. enable_thinking=false."),
    ]):
        f = opt(f)
    return f


def _columns(specs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for spec in specs:
        name, sep, col = spec.partition("=")
        if not sep or not name.strip() or not col.strip():
            raise ReasonkitError(f"--column {spec!r}: write FIELD=COLUMN, e.g. --column question=problem")
        out[name.strip()] = col.strip()
    return out


@click.command("eval", context_settings=CTX)
@click.option("--model", "-m", default=None, help="Hub id, local directory or .gguf file. "
              "Default: the embedded SmolLM2-135M-Instruct (offline).")
@click.option("--lora", multiple=True, metavar="[NAME=]PATH",
              help="A peft LoRA adapter; repeat for several. Base and adapters run side by side in one engine. "
              "With --backend openai: the served adapter's NAME.")
@click.option("--benchmark", "-b", default="gsm8k", show_default=True, help="gsm8k, math500, countdown, custom, or "
              "rg:TASK[:difficulty=0,test_size=N,KEY=V] (reasoning-gym).")
@click.option("--backend", default="auto", show_default=True,
              help="auto (chosen by the run's cost; the choice and reason are printed), vllm, hf, "
              "openai (a server: see --base-url).")
@click.option("--split", default="test", show_default=True, type=click.Choice(["test", "train"]))
@click.option("--limit", default="8", show_default=True, help="First N items ('all' for every item).")
@click.option("--n", "n", default=1, show_default=True, type=int, help="Samples per item (pass@k, maj@k for k<=n).")
@click.option("--temperature", default=0.0, show_default=True, type=float, help="0 = greedy.")
@click.option("--top-p", default=1.0, show_default=True, type=float)
@click.option("--max-tokens", default=256, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--data", default=None, metavar="PATH", help="Data file (.jsonl/.json/.parquet/.csv) or hub:org/name[:config].")
@click.option("--output", "-o", default=None, metavar="DIR",
              help="Run directory (default runs/eval/<benchmark>-<model>). The same command resumes it.")
@click.option("--rescore", is_flag=True, help="Recompute verdicts from the completions saved in --output; no model.")
@click.option("--verifier", "verifiers", multiple=True, help="Verifier(s) to score with (replaces the benchmark's; "
              "required for custom). The first one is the headline.")
@click.option("--template", default=None, help="User message with {fields}, or a file: .txt/.md (the message), "
              ".jinja ({{ field }} placeholders), .json/.yaml (a full template).")
@click.option("--constant-prompt", is_flag=True, help="Accept a --template with no {field} (same prompt for all).")
@click.option("--system", default=None, help="System prompt, or a .txt/.md file holding it ('' for none).")
@click.option("--prefill", default=None, help="Assistant pre-fill, or a .txt/.md file ('' for none).")
@click.option("--raw", is_flag=True, help="No chat template (base models).")
@click.option("--few-shot", default=0, show_default=True, type=int, help="Worked examples from the train split.")
@click.option("--column", "columns", multiple=True, metavar="FIELD=COLUMN", help="Map a data column to a field.")
@click.option("--stop", multiple=True, help="Stop string (repeatable).")
@click.option("--chunk-size", default=64, show_default=True, type=int, help="Items per saved chunk.")
@click.option("--score-truncated", is_flag=True, help="Score completions that hit --max-tokens as answers.")
@click.option("--batch-size", default=None, type=int, help="hf backend: sequences per generate batch.")
@click.option("--dtype", default=None, help="Model dtype: auto, float32, bfloat16, float16.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@server_options
def eval_cmd(model, lora, benchmark, backend, split, limit, n, temperature, top_p, max_tokens, seed, data, output,
             rescore, verifiers, template, constant_prompt, system, prefill, raw, few_shot, columns, stop,
             chunk_size, score_truncated, batch_size, dtype, quiet, base_url, concurrency, api_key_env, backend_options,
             chat_template_kwargs):
    """Evaluate a model and LoRA adapters on a benchmark; write samples.jsonl and summary.json.

    \b
    Examples:
      reasonkit eval                                   # embedded model, gsm8k, 8 items
      reasonkit eval --model Qwen/Qwen2.5-0.5B-Instruct --lora runs/grpo/checkpoint-200 --limit all
      reasonkit eval -b countdown --n 8 --temperature 0.7 --lora a=ckpt-a --lora b=ckpt-b
      reasonkit eval -b custom --data qa.jsonl --column question=prompt --verifier gsm8k
      reasonkit eval --output runs/eval/x --rescore --verifier gsm8k_flexible
      reasonkit eval --backend openai --base-url http://127.0.0.1:8000/v1 --model base --lora my-adapter
    """
    config = EvalConfig(model=model, lora=lora, benchmark=benchmark, backend=backend, split=split,
                        limit=_limit(limit), n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                        seed=seed, data=data, output=output, rescore=rescore, verifiers=verifiers,
                        template=template, system=system, prefill=prefill, raw=raw, few_shot=few_shot,
                        constant_prompt=constant_prompt,
                        columns=_columns(columns), stop=stop, chunk_size=chunk_size, score_truncated=score_truncated,
                        backend_options={**{k: v for k, v in (("batch_size", batch_size), ("dtype", dtype)) if v},
                                         **parse_pairs("--backend-options", backend_options)},
                        base_url=base_url, concurrency=concurrency, api_key_env=api_key_env,
                        chat_template_kwargs=parse_pairs("--chat-template-kwargs", chat_template_kwargs))
    try:
        rows, summary = run(config, show=not quiet)
    except KeyboardInterrupt:
        click.echo(f"interrupted: finished chunks are saved in {config.run_dir()}; run the same command to resume",
                   err=True)
        sys.exit(130)
    print_summary(summary, rows)
    click.echo(f"wrote {len(rows)} samples to {Path(summary['run_dir']) / 'samples.jsonl'}")
    failed = (summary.get("failures") or {}).get("groups", 0)
    if failed:
        first = summary["failures"].get("first") or ""
        click.echo(f"Error: {failed} of {len(rows) // max(config.n, 1)} requests failed and were not scored "
                   f"(first: {first[:160]}); run the same command again to retry only those", err=True)
        sys.exit(1)


@click.command("report", context_settings=CTX)
@click.argument("runs", nargs=-1, required=True, metavar="RUN [RUN ...]")
@click.option("--csv", "csv_path", default=None, metavar="FILE", help="Also write the table as CSV.")
@click.option("--markdown", "md_path", default=None, metavar="FILE", help="Also write the table as markdown.")
@click.option("--verifier", default=None, help="Headline verifier for the paired test (default: the run's first).")
def report_cmd(runs, csv_path, md_path, verifier):
    """Show eval runs (and the adapters inside them) side by side, each column tested against the first
    with an exact paired sign test (McNemar's exact test for one sample per item)."""
    report(runs, csv=csv_path, md=md_path, verifier=verifier)
    for path in (csv_path, md_path):
        if path:
            click.echo(f"wrote {path}")


@click.command("generate", context_settings=CTX)
@click.argument("prompts", nargs=-1)
@click.option("--model", "-m", default=None, help="Default: the embedded SmolLM2-135M-Instruct.")
@click.option("--lora", multiple=True, metavar="[NAME=]PATH", help="Adapter(s); each prompt is answered by each.")
@click.option("--file", "file_", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Prompts, one per line.")
@click.option("--backend", default="auto", show_default=True)
@click.option("--system", default=None, help="System prompt.")
@click.option("--prefill", default="", help="Assistant pre-fill.")
@click.option("--raw", is_flag=True, help="No chat template.")
@click.option("--n", "n", default=1, show_default=True, type=int)
@click.option("--temperature", default=0.0, show_default=True, type=float)
@click.option("--top-p", default=1.0, show_default=True, type=float)
@click.option("--max-tokens", default=256, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@server_options
def generate_cmd(prompts, model, lora, file_, backend, system, prefill, raw, n, temperature, top_p, max_tokens, seed,
                 base_url, concurrency, api_key_env, backend_options, chat_template_kwargs):
    """Generate completions for PROMPTS (or --file) with the model and each --lora adapter."""
    system, prefill = prompt_text("--system", system), prompt_text("--prefill", prefill)
    texts = list(prompts)
    if file_ is not None:
        texts += [line for line in read_text(file_, label="--file ").splitlines() if line.strip()]
    if not texts:
        raise ReasonkitError("no prompt: give PROMPT arguments or --file prompts.txt")

    name, why = choose_backend(backend, len(texts) * n * max_tokens * max(1, len(lora)))
    if backend == "auto":
        click.echo(f"backend {name} (auto: {why})", err=True)
    config = EvalConfig(model=model, lora=lora, backend=name, n=n, temperature=temperature, top_p=top_p,
                        max_tokens=max_tokens, seed=seed, limit=None, base_url=base_url, concurrency=concurrency,
                        api_key_env=api_key_env, backend_options=parse_pairs("--backend-options", backend_options),
                        chat_template_kwargs=parse_pairs("--chat-template-kwargs", chat_template_kwargs))
    engine, _ = open_backend(config)
    from types import SimpleNamespace

    failures = 0
    try:
        template = PromptTemplate(user="{question}", system=system or None, prefill=prefill, raw=raw)
        bench = SimpleNamespace(template=template, render=template.render)
        rendered = [engine_prompt(bench, {"question": t}, engine, None if getattr(engine, "chat_api", False) or raw
                                  else engine.tokenizer, config.chat_template_kwargs) for t in texts]
        sampling = SamplingConfig(n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
        # With --lora, each adapter answers (that is what one tries after training); else the base.
        names = [name for name, _ in config.adapters] or [BASE]
        for name in names:
            outs = engine.generate(rendered, sampling, adapter=None if name == BASE else name)
            for text, out in zip(texts, outs):
                for i, comp in enumerate(out.completions):
                    if comp.error is not None:
                        failures += 1
                        click.echo(click.style(f"### {text}", bold=True) + f"  [{name}: request failed: {comp.error}]")
                        continue
                    tag = f"[{name}" + (f" #{i}" if n > 1 else "") + f", {comp.num_tokens} tokens, " \
                        f"{comp.finish_reason}]"
                    click.echo(click.style(f"### {text}", bold=True) + f"  {tag}")
                    click.echo(prefill + comp.text)
                    click.echo()
    finally:
        engine.close()
    if failures:
        click.echo(f"Error: {failures} completion(s) failed after their retries (shown above)", err=True)
        sys.exit(1)
