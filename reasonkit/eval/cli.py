"""``reasonkit eval``, ``reasonkit report`` and ``reasonkit generate``. Heavy libraries load inside the
command bodies only.

``reasonkit eval``'s options are generated from :class:`reasonkit.eval.config.EvalConfig`'s fields by
:mod:`reasonkit.config_cli` (no hand-written option list): flags override ``--config FILE.yaml``, which
overrides the dataclass defaults. ``generate`` offers the same server flags, from the same fields."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ..config_cli import field_options, overrides
from ..errors import ReasonkitError
from .config import EvalConfig
from .report import print_summary, report
from reasonkit.engine import choose_backend
from reasonkit.engine.types import SamplingConfig
from .engine_io import engine_prompt
from ..files import read_text
from .runner import BASE, open_backend, run
from reasonkit.tasks.prompts import PromptTemplate, prompt_text

CTX = {"help_option_names": ["-h", "--help"]}


# The server flags of eval, also offered by generate (generated from the same EvalConfig fields).
SERVER_FIELDS = ("base_url", "concurrency", "api_key_env", "backend_options", "chat_template_kwargs")
_OPTIONS = field_options(EvalConfig)  # every EvalConfig field is a flag (reasonkit.config_cli)
_SERVER_OPTIONS = [opt for opt in _OPTIONS if opt[0] in SERVER_FIELDS]


def server_options(f):
    """The flags shared by eval and generate for engines and OpenAI-compatible servers."""
    for _, _, opt in reversed(_SERVER_OPTIONS):
        f = click.option(*opt.opts, opt.name, multiple=opt.multiple, type=opt.type, default=None,
                         metavar=opt.metavar, help=opt.help)(f)
    return f


def _eval(**kwargs: Any) -> None:
    """Evaluate a model and LoRA adapters on a benchmark; write samples.jsonl and summary.json.

    \b
    Examples:
      reasonkit eval                                   # embedded model, gsm8k, 8 items
      reasonkit eval --model Qwen/Qwen2.5-0.5B-Instruct --lora runs/grpo/checkpoint-200 --limit all
      reasonkit eval -b countdown --n 8 --temperature 0.7 --lora a=ckpt-a --lora b=ckpt-b
      reasonkit eval -b custom --data qa.jsonl --column question=prompt --verifier gsm8k
      reasonkit eval --output runs/eval/x --rescore --verifier gsm8k_flexible
      reasonkit eval --backend openai --base-url http://127.0.0.1:8000/v1 --model base --lora my-adapter
      reasonkit eval --config eval.yaml --limit all    # a YAML file of EvalConfig fields; flags win
    """
    config_file, quiet = kwargs.pop("config_file"), kwargs.pop("quiet")
    flags = overrides(_OPTIONS, kwargs)
    config = EvalConfig.from_yaml(config_file, **flags) if config_file else EvalConfig(**flags)
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


eval_cmd = click.Command(
    "eval",
    callback=_eval,
    context_settings=CTX,
    help=_eval.__doc__,
    params=[
        click.Option(["--config", "config_file"], type=click.Path(dir_okay=False), default=None, metavar="FILE.yaml",
                     help="YAML config (EvalConfig field names as keys); flags given here override it. Every run "
                     "saves its resolved config as OUTPUT/config.yaml."),
        *[opt for _, _, opt in _OPTIONS],
        click.Option(["--quiet", "-q", "quiet"], is_flag=True, default=False, help="No progress bar."),
    ],
)


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
    server = overrides(_SERVER_OPTIONS, dict(base_url=base_url, concurrency=concurrency, api_key_env=api_key_env,
                                              backend_options=backend_options,
                                              chat_template_kwargs=chat_template_kwargs))
    config = EvalConfig(model=model, lora=lora, backend=name, n=n, temperature=temperature, top_p=top_p,
                        max_tokens=max_tokens, seed=seed, limit=None, **server)
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
