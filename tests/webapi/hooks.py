"""A webhook receiver for tests: a small http.server on loopback that records each POST and
answers with scripted statuses (200 once the script is used up)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                receiver.hits.append(Hit(self.path, dict(self.headers.items()), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait(self, path: str, count: int = 1, timeout: float = 20) -> list[Hit]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = [h for h in self.hits if h.path == path]
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{count} POST(s) to {path} expected, got {self.hits}")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
