"""Exit codes shared by every command: CI must tell 'failed' from 'could not run'."""

OK = 0  # ran, and every expectation held
EXPECTATION_FAILED = 1  # ran, and at least one expectation failed
USAGE_OR_INPUT_ERROR = 2  # could not run: bad input file, bad rules, bad usage
STDOUT_CLOSED = 141  # stdout's reader went away (traceview … | head): 128 + SIGPIPE, as a shell reports it
