"""A real HTTP endpoint in a thread that records the alerts posted to it, for the alert tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookRecorder:
    """``http://127.0.0.1:PORT/hook/<token>`` answering ``status`` (200 by default) to every POST,
    after ``delay`` seconds; each request's path and JSON body is kept in ``posts``.

    ``mode`` ``"trickle"`` answers 200 with its headers at once, then a 100-byte body one byte every
    ``interval`` seconds; ``"slow-headers"`` sends its status line and headers one byte every
    ``interval`` seconds. Both are the endpoints a per-read timeout never ends."""

    def __init__(
        self, *, status: int = 200, delay: float = 0.0, port: int = 0, mode: str = "normal", interval: float = 0.5
    ) -> None:
        self.status = status
        self.delay = delay
        self.mode = mode
        self.interval = interval
        #: Called in the server's thread as each post arrives, while its sender waits for the answer.
        self.on_post: Callable[[], None] | None = None
        self.posts: list[dict[str, Any]] = []
        self.paths: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if recorder.delay:
                    time.sleep(recorder.delay)
                recorder.paths.append(self.path)
                recorder.posts.append(json.loads(body))
                if recorder.on_post is not None:
                    recorder.on_post()
                try:
                    if recorder.mode == "trickle":
                        self.trickle(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b"x" * 100)
                        return
                    if recorder.mode == "slow-headers":
                        self.trickle(b"", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Padding: " + b"p" * 200)
                        return
                    self.send_response(recorder.status)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (a timeout test): nothing to answer

            def trickle(self, at_once: bytes, slowly: bytes) -> None:
                self.wfile.write(at_once)
                self.wfile.flush()
                for i in range(len(slowly)):
                    time.sleep(recorder.interval)
                    self.wfile.write(slowly[i : i + 1])
                    self.wfile.flush()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test reads ``posts``; the console stays quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook/T0KEN-s3cret-w3bhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookRecorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def texts(self) -> list[str]:
        return [post["text"] for post in self.posts]
