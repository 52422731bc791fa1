"""Rollouts on a vLLM server (``reasonkit train --backend vllm-server --base-url URL``).

The server is started separately (see docs/evaluation.md, "Servers and replicas")::

    VLLM_ALLOW_RUNTIME_LORA_UPDATING=True python -m vllm.entrypoints.openai.api_server \\
        --model DIR --enable-lora --max-lora-rank 16 --logprobs-mode processed_logprobs

Per step (:meth:`ServerRollouts.sync`): the main process saves the LoRA adapter — only the adapter —
to ``OUTPUT/.sync/step-N`` and loads it on every replica with ``/v1/load_lora_adapter`` under a
new name ``rk-<run id>-step-N``; the previous name is unloaded. The server reads the adapter files
from that path, so it must see the trainer's output directory at the same path (one machine, or a
shared disk). The other processes wait at a barrier and then sample from the same name.

Generation (:meth:`ServerRollouts.generate`): prompts are tokenized here (``add_special_tokens=False``,
as the in-process backends do) and sent as token ids to ``/v1/completions`` with ``logprobs=0`` and
vLLM's ``return_token_ids``, so the completion token ids and the sampler's log-prob of each come back
(``--logprobs-mode processed_logprobs`` makes them the temperature-scaled ones the trainer
recomputes). A request that fails after its retries fails the step with one line
(:class:`~reasonkit.errors.ReasonkitError`); the data position is restored and ``--resume``
continues from the last checkpoint.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Callable, Sequence

from reasonkit.errors import ReasonkitError
from reasonkit.grpo.rollout import flatten_outputs
from reasonkit.engine import get_backend
from reasonkit.engine.types import Adapter


def run_id(out: Path) -> str:
    return hashlib.sha1(str(Path(out).resolve()).encode()).hexdigest()[:8]


class ServerRollouts:
    """Options (``backend_options``): ``served_model`` (the server's base model name; default the
    only one it serves) and every option of the openai backend (``timeout``, ``max_retries``,
    ``concurrency``, ``api_key_env``, ...)."""

    def __init__(self, base_url: Sequence[str], sync_dir: str | Path, out: Path, tokenizer, *, is_main: bool = True,
                 barrier: Callable[[], None] = lambda: None, options: dict | None = None):
        opts = dict(options or {})
        served = opts.pop("served_model", None)
        self.backend = get_backend("openai", served, base_url=list(base_url), **opts)
        if not self.backend.vllm:
            raise ReasonkitError("--backend vllm-server needs a vLLM server (its /v1/models does not say vllm): "
                                 "adapter loading and token ids are vLLM extensions")
        self.tokenizer = tokenizer
        self.sync_dir = Path(sync_dir).resolve()
        self.prefix = f"rk-{run_id(out)}-step-"
        self.is_main, self.barrier = is_main, barrier
        self.current: str | None = None
        self._path: Path | None = None
        if is_main:  # adapters of an earlier, interrupted run of this output directory
            for name in [m for m in self.backend.models if m.startswith(self.prefix)]:
                try:
                    self.backend.unload_adapter(name)
                except ReasonkitError:
                    pass
            self.sync_dir.mkdir(parents=True, exist_ok=True)

    def sync(self, model, step: int) -> None:
        name = f"{self.prefix}{step}"
        path = self.sync_dir / f"step-{step}"
        if self.is_main:
            if path.exists():
                shutil.rmtree(path)
            model.save_pretrained(str(path))  # a peft model writes only the adapter
            self.backend.load_adapter(name, str(path))
            if self.current is not None and self.current != name:
                try:
                    self.backend.unload_adapter(self.current)
                except ReasonkitError as exc:  # the new one is loaded: a leftover is no reason to stop
                    self.backend._warn(f"could not unload {self.current}: {exc}")
                if self._path is not None:
                    shutil.rmtree(self._path, ignore_errors=True)
        self.barrier()
        if not self.is_main:
            self.backend.adapters[name] = Adapter(name, str(path))
            self.backend.models[name] = {"id": name}
        self.current, self._path = name, path

    def generate(self, prompts: Sequence[str], items: Sequence[dict], sampling):
        from dataclasses import replace

        ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        outputs = self.backend.generate(ids, replace(sampling, logprobs=True), adapter=self.current)
        failed = [c.error for o in outputs for c in o.completions if c.error]
        if failed:
            raise ReasonkitError(f"{len(failed)} rollout request(s) to the vLLM server failed ({failed[0][:200]}); "
                                 "fix the server and continue with --resume")
        for out, prompt, token_ids in zip(outputs, prompts, ids):
            out.prompt = prompt
            out.prompt_token_ids = list(token_ids)
            for c in out.completions:
                if not c.token_ids and c.text:
                    raise ReasonkitError("the server returned no token ids (needs vLLM >= 0.10.2 for "
                                         "return_token_ids)")
                if c.logprobs is not None and len(c.logprobs) != len(c.token_ids):
                    c.logprobs = None
        return flatten_outputs(outputs, list(prompts), list(items), sampling.n)

    def close(self) -> None:
        if self.is_main and self.current is not None:
            try:
                self.backend.unload_adapter(self.current)
            except ReasonkitError:
                pass
            shutil.rmtree(self.sync_dir, ignore_errors=True)
