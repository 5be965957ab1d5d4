"""Stand-in for ``traceview counts`` while that command does not exist yet.

Same contract as the real CLI entry point: exit 0 and the per-step table on
stdout, or exit 2 and one ``traceview: <path>: <reason>`` line on stderr for a
TraceviewError; any other exception escapes with its traceback (a bug).
Usage: ``python tests/fuzz/analyze_cli.py TRACE``.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from traceview.errors import TraceviewError
    from traceview.model.counts import analyze

    if len(argv) != 1:
        sys.stderr.write("usage: analyze_cli.py TRACE\n")
        return 2
    try:
        counts = analyze(argv[0])
        # Exercise the same LaunchCounts methods the counts/steps/kernels commands render.
        text = "\n".join([counts.per_step().to_csv(), counts.summary(skip=1).to_csv(),
                          counts.kernels(skip=1).to_csv(index=False), str(counts.outside_steps()),
                          str(counts.irregular_steps()), counts.steps.to_csv(index=False)])
    except TraceviewError as err:
        sys.stderr.write(f"traceview: {err}\n")
        return 2
    sys.stdout.write(text + "\n")
    for warning in counts.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
