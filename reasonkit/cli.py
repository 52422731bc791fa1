"""The ``reasonkit`` command line. Each sub-command lives in its own module and imports heavy
libraries (torch, transformers, vllm) only inside its body."""
from __future__ import annotations

import click

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reasonkit")
def main() -> None:
    """reasonkit: verifiers, evaluation and GRPO training for reasoning LLMs."""


def _register_commands() -> None:
    # Sub-commands are added here as modules land; a missing module must not break the others.
    import importlib

    for module, attr in [
        ("reasonkit.verify_cli", "verify"),
        ("reasonkit.eval.cli", "eval_cmd"),
        ("reasonkit.eval.cli", "report_cmd"),
        ("reasonkit.eval.cli", "generate_cmd"),
        ("reasonkit.grpo.cli", "train_cmd"),
    ]:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        main.add_command(getattr(mod, attr))


_register_commands()
