"""A small OpenAI-compatible HTTP server on 127.0.0.1 for fault-injection tests.

It answers ``/v1/models``, ``/v1/completions`` and ``/v1/chat/completions``. The completion for a
prompt is ``<answer>N</answer>`` where N is the last number in the prompt, so a test can check
that every saved completion belongs to its item. ``faults`` maps a request number (1-based, over
all generation requests) or a prompt substring to a fault: ``("status", code, headers)``,
``("hang", seconds)``, ``"drop"`` (close the connection without an answer), ``"malformed"``,
``"length"`` (finish_reason length). ``refuse_n`` answers 400 to ``n > 1``. Every request is
recorded in ``log`` (path, body, headers). ``close()`` stops it and wakes hanging handlers.
"""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Stub:
    def __init__(self, *, owned_by: str = "vllm", models=("stub", "ad1"), refuse_n: bool = False,
                 faults: dict | None = None, persistent: dict | None = None):
        self.owned_by, self.models, self.refuse_n = owned_by, list(models), refuse_n
        self.faults = dict(faults or {})          # used once each (by request number or substring)
        self.persistent = dict(persistent or {})  # substring -> fault on every request
        self.log: list[dict] = []
        self.adapter_calls: list[dict] = []  # load/unload requests with the adapter folder's files
        self.down = False  # True: every request fails (drop / 503)
        self.count = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, code, body: bytes, headers=None):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    data = [{"id": m, "object": "model", "owned_by": stub.owned_by,
                             **({"parent": stub.models[0]} if i else {"root": "/models/" + m})}
                            for i, m in enumerate(stub.models)]
                    self._send(200, json.dumps({"object": "list", "data": data}).encode())
                else:
                    self._send(404, b'{"error": {"message": "no such path"}}')

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.endswith("lora_adapter"):  # vLLM's runtime adapter (un)loading
                    import os

                    path = body.get("lora_path", "")
                    stub.adapter_calls.append({"path": self.path, "body": body, "files": sorted(os.listdir(path))
                                               if path and os.path.isdir(path) else None, "t": time.monotonic()})
                    if stub.down:
                        self._send(503, b'{"error": {"message": "down"}}')
                    else:
                        self._send(200, b'"Success"')
                    return
                if stub.down:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                with stub.lock:
                    stub.count += 1
                    number = stub.count
                    stub.log.append({"path": self.path, "body": body, "headers": dict(self.headers),
                                     "t": time.monotonic()})
                text = json.dumps(body.get("messages") or body.get("prompt"))
                fault = stub.faults.pop(number, None)
                if fault is None:
                    for key in list(stub.faults):
                        if isinstance(key, str) and key in text:
                            fault = stub.faults.pop(key)
                            break
                if fault is None:
                    fault = next((f for k, f in stub.persistent.items() if k in text), None)
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if isinstance(fault, tuple) and fault[0] == "hang":
                    end = time.monotonic() + fault[1]
                    while time.monotonic() < end and not stub.stopping.is_set():
                        time.sleep(0.02)
                    fault = None
                    if stub.stopping.is_set():
                        return
                if isinstance(fault, tuple) and fault[0] == "status":
                    msg = json.dumps({"error": {"message": f"injected {fault[1]}", "code": fault[1]}})
                    self._send(fault[1], msg.encode(), fault[2] if len(fault) > 2 else None)
                    return
                if fault == "malformed":
                    self._send(200, b'{"choices": [ {"text": "trunc')
                    return
                n = int(body.get("n") or 1)
                if stub.refuse_n and n > 1:
                    self._send(400, b'{"error": {"message": "n must be 1 when using greedy sampling"}}')
                    return
                numbers = re.findall(r"\d+", text)
                answer = f"<answer>{numbers[-1] if numbers else 0}</answer>"
                chat = "chat" in self.path
                finish = "length" if fault == "length" else "stop"
                choices = []
                for i in range(n):
                    choice = {"index": i, "finish_reason": finish}
                    if chat:
                        choice["message"] = {"role": "assistant", "content": answer}
                    else:
                        choice["text"] = answer
                    if body.get("return_token_ids"):
                        choice["token_ids"] = [100 + i, 101, 102]
                    if body.get("logprobs") is not None:
                        choice["logprobs"] = ({"content": [{"token": "a", "logprob": -0.5}] * 3} if chat else
                                              {"token_logprobs": [-0.5, -0.25, -0.125], "tokens": ["a"] * 3})
                    choices.append(choice)
                out = {"id": f"cmpl-{number}", "choices": choices,
                       "usage": {"prompt_tokens": 5, "completion_tokens": 3 * n, "total_tokens": 5 + 3 * n}}
                if body.get("return_token_ids"):
                    out["prompt_token_ids"] = [1, 2, 3, 4, 5]
                self._send(200, json.dumps(out).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def generation_requests(self) -> list[dict]:
        return [r for r in self.log if r["path"].endswith("completions")]

    def close(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
