"""The ``reasonkit`` command line. Each sub-command lives in its own module and imports heavy
libraries (torch, transformers, vllm) only inside its body."""
from __future__ import annotations

import click

from . import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="reasonkit")
def main() -> None:
    """reasonkit: verifiers, evaluation and GRPO training for reasoning LLMs."""
    # lazy: each command loads its own dependencies (threads set first; `reasonkit verify` stays light)
    from .threads import prepare_env  # OpenMP's passive wait policy, before any command loads torch

    prepare_env()


def _register_commands() -> None:
    # Each command module imports torch / transformers / vllm only inside its command body.
    # lazy: each command loads its own dependencies (threads set first; `reasonkit verify` stays light)
    from .eval.cli import eval_cmd, generate_cmd, report_cmd
    # lazy: each command loads its own dependencies (threads set first; `reasonkit verify` stays light)
    from .grpo.cli import train_cmd
    # lazy: each command loads its own dependencies (threads set first; `reasonkit verify` stays light)
    from .qa.cli import qa  # checking a grader: metamorphic and differential tests
    # lazy: each command loads its own dependencies (threads set first; `reasonkit verify` stays light)
    from .run_cli import audit_cmd, view_cmd  # the hack audit and the HTML run viewer
    # lazy: each command loads its own dependencies (threads set first; `reasonkit verify` stays light)
    from .serve_cli import serve_cmd  # an OpenAI-compatible vLLM server with this host's settings
    # lazy: each command loads its own dependencies (threads set first; `reasonkit verify` stays light)
    from .sft.cli import sft_cmd
    # lazy: each command loads its own dependencies (threads set first; `reasonkit verify` stays light)
    from .verify_cli import verify

    for command in (verify, eval_cmd, report_cmd, generate_cmd, train_cmd, sft_cmd, serve_cmd, qa, audit_cmd,
                    view_cmd):
        main.add_command(command)


_register_commands()
