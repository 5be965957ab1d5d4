"""The ``traceview`` command: one typer app, one module per command."""

from __future__ import annotations

import importlib
import sys

import typer

from typer.exceptions import Abort, TyperException

from traceview.cli import exit_codes
from traceview.cli.render import stderr
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

_DEBUG = {"on": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show the full traceback on errors.")) -> None:
    _DEBUG["on"] = debug


# Command -> the module that defines it (each adds itself to `app` when imported).
COMMAND_MODULES = {"info": "info", "sql": "sql", "steps": "steps", "counts": "counts", "kernels": "kernels",
                   "diff": "diff", "check": "check", "report": "report", "open": "open_ui", "collect": "collect",
                   "cache": "cache"}


def _register(args: list[str]) -> None:
    """Imports the module of the command being run, or of every command (help, a typo): a
    command does not pay for the others' imports (plotly for report, for one)."""
    words = [a for a in args if not a.startswith("-")]
    wanted = [COMMAND_MODULES[words[0]]] if words and words[0] in COMMAND_MODULES else COMMAND_MODULES.values()
    for module in wanted:
        importlib.import_module(f"traceview.cli.{module}")


def run(argv: list[str] | None = None) -> int:
    """Runs the CLI and returns its exit code; TraceviewError -> one line on stderr, 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    _register(args)
    try:
        code = app(args=args, prog_name="traceview", standalone_mode=False)
    except TraceviewError as err:
        if "--debug" in args:
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
    """Console entry point."""
    sys.exit(run())
