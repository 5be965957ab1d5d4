"""One output rule for every command: ``--format`` wins, else ``-o FILE``'s extension decides,
else a table on stdout. A format a command cannot write is a usage error, never a silent table."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    junit = "junit"


BY_EXTENSION = {".json": OutputFormat.json, ".csv": OutputFormat.csv, ".md": OutputFormat.markdown,
                ".markdown": OutputFormat.markdown, ".xml": OutputFormat.junit, ".txt": OutputFormat.table}
# What the frame commands (info, sql, steps, kernels, counts) write; diff and check write every format.
FRAME_FORMATS = (OutputFormat.table, OutputFormat.json, OutputFormat.csv, OutputFormat.markdown)
REPORT_FORMATS = tuple(OutputFormat)

FormatOpt = Annotated[Optional[OutputFormat], typer.Option(
    "--format", "-f", case_sensitive=False, show_default=False,
    help="table, json, csv, markdown or junit (diff, check and doctor only). Default: from -o FILE's extension "
         "(.json .csv .md .xml, .txt for the table), else a table on stdout. Example: --format csv")]


def output_format(fmt: OutputFormat | None, output: Path | None, command: str,
                  supported: tuple[OutputFormat, ...] = FRAME_FORMATS) -> OutputFormat:
    """The format ``command`` writes for ``--format fmt -o output``; BadParameter (exit 2) when
    the extension says nothing or names a format the command does not write."""
    hint = "--format"
    if fmt is None:
        if output is None:
            return OutputFormat.table
        fmt = BY_EXTENSION.get(output.suffix.lower())
        hint = "--output"
        if fmt is None:
            raise typer.BadParameter(
                f"cannot tell the format of {str(output)!r} from its extension: name it .json, .csv, .md or .xml "
                "(.txt for the table), or pass --format", param_hint=hint)
    if fmt not in supported:
        names = ", ".join(f.value for f in supported)
        where = f" ({output.suffix} means {fmt.value})" if hint == "--output" else ""
        raise typer.BadParameter(f"{command} writes {names}, not {fmt.value}{where}; JUnit XML comes from "
                                 "diff, check and doctor", param_hint=hint)
    return fmt
