"""A stand-in for a vLLM server process (not a test module): ``python serve_stub.py PORT MODE``.

MODE ``ok`` answers ``GET /v1/models`` like vLLM; MODE ``silent`` accepts connections and never
answers (a server stuck at start-up); MODE ``exit`` quits at once with code 3."""
from __future__ import annotations

import json
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = json.dumps({"object": "list", "data": [{"id": "stub-model", "object": "model"}]}).encode()
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main() -> None:
    port, mode = int(sys.argv[1]), sys.argv[2]
    if mode == "exit":
        sys.exit(3)
    if mode == "ok":
        HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    held = []
    while True:
        conn, _ = sock.accept()
        held.append(conn)  # never answered
        time.sleep(0.01)


if __name__ == "__main__":
    main()
