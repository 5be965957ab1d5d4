"""The ``traceview`` command: one typer app, one module per command."""

from __future__ import annotations

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


def _register() -> None:
    # Each command module adds itself to `app`; importing them here keeps this file short.
    from traceview.cli import info, sql  # noqa: F401
    for optional in ("steps", "counts", "kernels", "diff", "check", "report", "open_ui", "collect", "cache"):
        try:
            __import__(f"traceview.cli.{optional}")
        except ModuleNotFoundError as err:
            if err.name != f"traceview.cli.{optional}":
                raise


def run(argv: list[str] | None = None) -> int:
    """Runs the CLI and returns its exit code; TraceviewError -> one line on stderr, 2."""
    _register()
    args = list(sys.argv[1:] if argv is None else argv)
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
