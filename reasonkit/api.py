"""The public Python API of the evaluation harness: what code outside ``reasonkit.eval`` may call.

* :func:`evaluate` — a model (and adapters) on a benchmark, as a pandas DataFrame
  (``reasonkit.evaluate`` is this function);
* :func:`evaluate_rows` — the same run, as the rows and summary the harness writes (``samples.jsonl``,
  ``summary.json``), for callers that keep going with them: training's periodic held-out evaluation
  (:mod:`reasonkit.grpo.evaluation`) and the warm start's sampling (:mod:`reasonkit.sft.loop`);
* :func:`read_samples` — the rows of a run directory's ``samples.jsonl``.

The import contract (``[tool.importlinter]`` in ``pyproject.toml``) lets training reach the
evaluation layer only through this module.
"""
from __future__ import annotations

from typing import Any

from reasonkit.eval.config import EvalConfig
from reasonkit.eval.runner import evaluate, run
from reasonkit.eval.store import read_samples

__all__ = ["evaluate", "evaluate_rows", "read_samples"]


def evaluate_rows(*, engine: Any = None, show: bool = True,
                  **options: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run an evaluation (``options`` are :class:`~reasonkit.eval.config.EvalConfig` fields; ``engine``
    reuses an open backend) and return ``(rows, summary)`` as written to the run directory."""
    return run(EvalConfig(**options), engine=engine, show=show)
