"""The ``traceview`` command: one typer app, one module per command."""

from __future__ import annotations

import atexit
import errno
import importlib
import os
import sys
import threading

import typer
from typer.exceptions import Abort, TyperException

from traceview import __version__
from traceview.cli import exit_codes
from traceview.cli.render import fit_stdout_to_destination, stderr, stdout
from traceview.errors import TraceviewError

app = typer.Typer(
    name="traceview",
    help="Count GPU kernel launches per decode step in Perfetto/Kineto traces, diff two traces, "
         "and assert on the counts in CI.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)



def _print_version(value: bool) -> None:
    if value:
        stdout.print(f"traceview {__version__}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback on errors; may also follow the "
                                                     "command (traceview counts t.json --debug)."),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """``--debug`` is read by ``run`` wherever it stands; these parameters exist for --help."""


# Command -> the module that defines it (each adds itself to `app` when imported).
COMMAND_MODULES = {"info": "info", "sql": "sql", "steps": "steps", "counts": "counts", "kernels": "kernels",
                   "diff": "diff", "check": "check", "report": "report", "open": "open_ui", "collect": "collect",
                   "cache": "cache", "doctor": "doctor", "budget": "budget"}


def _register(args: list[str]) -> None:
    """Imports the module of the command being run, or of every command (help, a typo): a
    command does not pay for the others' imports (plotly for report, for one)."""
    words = [a for a in args if not a.startswith("-")]
    if not words and "--version" in args:
        return
    wanted = [COMMAND_MODULES[words[0]]] if words and words[0] in COMMAND_MODULES else COMMAND_MODULES.values()
    for module in wanted:
        importlib.import_module(f"traceview.cli.{module}")


def _without_debug(args: list[str]) -> tuple[list[str], bool]:
    """``--debug`` may stand anywhere before a ``--``: it is taken out here, not parsed per command."""
    end = args.index("--") if "--" in args else len(args)
    kept = [a for a in args[:end] if a != "--debug"] + args[end:]
    return kept, len(kept) != len(args)


def _stdout_closed(exit_: SystemExit) -> bool:
    """typer and rich turn a write to a closed pipe (``traceview … | head``) into SystemExit(1)."""
    cause = exit_.__context__
    return isinstance(cause, OSError) and cause.errno == errno.EPIPE


def run(argv: list[str] | None = None) -> int:
    """Runs the CLI and returns its exit code; TraceviewError -> one line on stderr, 2.

    A closed stdout (the reader, e.g. ``head``, has what it wanted) returns
    ``exit_codes.STDOUT_CLOSED``, never 1, which means an expectation failed.
    """
    args, debug = _without_debug(list(sys.argv[1:] if argv is None else argv))
    fit_stdout_to_destination()
    _register(args)
    try:
        code = app(args=args, prog_name="traceview", standalone_mode=False)
    except SystemExit as exit_:
        if not _stdout_closed(exit_):
            raise
        try:  # the interpreter's last flush must not fail on the closed pipe either
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return exit_codes.STDOUT_CLOSED
    except TraceviewError as err:
        if debug:
            raise
        stderr.print(f"traceview: {err}", markup=False, highlight=False)
        return exit_codes.USAGE_OR_INPUT_ERROR
    except TyperException as err:  # usage errors (typer's vendored click exceptions)
        show = getattr(err, "show", None)
        if show is None:
            raise
        show()
        return getattr(err, "exit_code", exit_codes.USAGE_OR_INPUT_ERROR)
    except Abort:
        return 130
    return code if isinstance(code, int) else exit_codes.OK


def main() -> None:
    """Console entry point.

    Ends without the interpreter's teardown of its modules: by now every answer is printed and every
    file closed, and freeing pandas' and pyarrow's objects one by one took ~0.25 s of every command,
    a quarter of a warm re-count. Exit handlers (Ray, multiprocessing) still run; a thread still at
    work gets the ordinary exit, which waits for it."""
    code = run()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed by the reader
            pass
    atexit._run_exitfuncs()
    os._exit(code)
