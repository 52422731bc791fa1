"""Tasks: what a model is asked and how its answers are scored, shared by evaluation and training.

* :mod:`reasonkit.tasks.registry` — benchmarks by name (data source, prompt template, verifiers) and
  the generators of synthetic tasks (countdown, reasoning-gym);
* :mod:`reasonkit.tasks.prompts` — prompt templates (chat messages with ``{field}`` placeholders);
* :mod:`reasonkit.tasks.data` — reading rows from local files, the hub, or the offline copies in
  ``reasonkit/data``.

Nothing here imports torch, transformers or vllm, nor the generation layer.
"""
