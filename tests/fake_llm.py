"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for the tests of
``retrieval.generate``: it answers with the text a test sets, in the way a test sets
(streamed, whole, malformed, slow, an HTTP error), and records the requests it got."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeLLM:
    """``with FakeLLM() as llm: llm.reply = "..."; ... llm.url`` (a base URL ending in /v1)."""

    def __init__(self) -> None:
        self.reply = ""
        self.mode = "stream"  # stream | json | not_json | no_choices | slow | hang | status | html | drop
        self.status = 200
        self.error = ""
        self.delay = 0.0  # seconds between streamed pieces ("slow")
        self.models = ["fake-model"]
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.release = threading.Event()  # ends a "hang"
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.endswith("/models"):
                    data = {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]}
                    self._send(200, json.dumps(data).encode())
                else:
                    self._send(404, b'{"error": {"message": "not found"}}')

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(request)
                fake.headers.append(dict(self.headers))
                if not self.path.endswith("/chat/completions"):
                    self._send(404, b'{"error": {"message": "no such route"}}')
                    return
                if fake.mode == "status":
                    self._send(fake.status, json.dumps({"error": {"message": fake.error}}).encode())
                    return
                if fake.mode == "html":
                    self._send(200, b"<html><body>Sign in to the proxy</body></html>", "text/html; charset=utf-8")
                    return
                if fake.mode == "json":
                    data = {"choices": [{"index": 0, "message": {"role": "assistant", "content": fake.reply},
                                         "finish_reason": "stop"}]}
                    self._send(200, json.dumps(data).encode())
                    return
                if fake.mode == "hang":
                    fake.release.wait(30)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    if fake.mode == "not_json":
                        self.wfile.write(b"data: <html>this is not json</html>\n\n")
                        return
                    if fake.mode == "no_choices":
                        self.wfile.write(b'data: {"answer": "hello"}\n\n')
                        return
                    words = fake.reply.split(" ")
                    for i, word in enumerate(words):
                        piece = word if i == 0 else " " + word
                        event = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                        self.wfile.flush()
                        if fake.mode == "drop" and i == len(words) // 2:
                            return  # the connection ends in the middle, without [DONE]
                        if fake.mode == "slow":
                            time.sleep(fake.delay)
                    self.wfile.write(b"data: [DONE]\n\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "FakeLLM":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
