"""A tiny HTTP server on 127.0.0.1 for the download tests: no test downloads anything from the internet.

``LocalServer`` serves byte strings by path. ``mode`` per path: ``"ok"``; ``"corrupt"`` (one byte
flipped, the length kept); ``"short"`` (declares the full length, sends half, closes); ``"slow"`` (sends
4 KiB pieces with a pause, so that a test can cancel in the middle). ``url(name)`` is its address;
``closed_url(name)`` is an address on a port nobody listens on (offline).
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.requests: list[str] = []
        self.stop_sending = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.requests.append(self.path)
                name = self.path.lstrip("/")
                if name not in server.files:
                    self.send_error(404)
                    return
                body, mode = server.files[name]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "corrupt":
                    body = body[:-1] + bytes([body[-1] ^ 0xFF])
                elif mode == "short":
                    body = body[: len(body) // 2]
                try:
                    if mode == "slow":
                        for i in range(0, len(body), 4096):
                            if server.stop_sending.is_set():
                                return
                            self.wfile.write(body[i : i + 4096])
                            self.wfile.flush()
                            time.sleep(0.02)
                    else:
                        self.wfile.write(body)
                except OSError:  # the client went away (a cancelled download)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, name: str, body: bytes, mode: str = "ok") -> str:
        self.files[name] = (body, mode)
        return self.url(name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    @staticmethod
    def closed_url(name: str) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return f"http://127.0.0.1:{port}/{name}"

    def close(self) -> None:
        self.stop_sending.set()
        self.httpd.shutdown()
        self.httpd.server_close()
