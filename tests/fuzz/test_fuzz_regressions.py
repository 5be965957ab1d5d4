"""Minimal inputs distilled from fuzz failures: each must keep the CLI contract (exit 0, or 2 + one line).

Run as real subprocesses with a timeout: some of these hang the trace processor,
and a hang in-process could not be stopped.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from executors import Command, run_subprocess
from run_fuzz import classify

KERNEL = b'{"name":"k","cat":"kernel","ph":"X","ts":3,"dur":1,"pid":0,"tid":7,"args":{"correlation":%s}}'
INPUTS = {
    # The JSON parser's error quotes the invalid byte, so protobuf returns the message as bytes.
    "invalid_utf8_in_parse_error": b'{"traceEvents":[{"name":"a","ph":"X","ts"\xbd:1,"dur":1,"pid":1,"tid":1}]}',
    # A slice name that is not UTF-8 comes back from a query as a bytes string cell.
    "invalid_utf8_in_slice_name": b'{"traceEvents":[{"name":"ProfilerStep#1\xff","cat":"user_annotation","ph":"X",'
                                  b'"ts":1,"dur":5,"pid":1,"tid":1}]}',
    # The only step marker never ends (B without E: dur -1), so no step survives the dur >= 0 filter.
    "step_that_never_ends": b'{"traceEvents":[{"name":"ProfilerStep#1","cat":"user_annotation","ph":"B","ts":1,'
                            b'"pid":1,"tid":1},' + KERNEL % b"5" + b"]}",
    # One correlation id written as a string.
    "correlation_as_string": b'{"traceEvents":[' + KERNEL % b"5" + b"," + KERNEL % b'"6"' + b"]}",
    # Cut inside an event.
    "truncated_inside_an_event": b'{"traceEvents":[' + KERNEL % b"5" + b',{"name":"k2","cat":"ker',
    # process_name/thread_name metadata whose args hold NaN/Infinity, or junk after a value: the bundled
    # trace processor (Perfetto v52 wasm) spins in TPM_FINALIZE_TRACE_DATA and never returns.
    "infinity_in_process_name_args": b'{"traceEvents":[{"name":"process_name","ph":"M","pid":0,"tid":0,'
                                     b'"args":{"name":"GPU 0","correlation":Infinity}},' + KERNEL % b"5" + b"]}",
    "junk_after_value_in_thread_name_args": b'{"traceEvents":[{"name":"thread_name","ph":"M","pid":0,"tid":7,'
                                            b'"args":{"name":"stream 7"\xff}},' + KERNEL % b"5" + b"]}",
    # A rocprofv3 kernel_trace.csv whose last row was cut after its first field (csv gives None for the rest).
    "short_row_in_rocprofv3_csv": b'"Kind","Agent_Id","Queue_Id","Stream_Id","Thread_Id","Dispatch_Id","Kernel_Id",'
                                  b'"Kernel_Name","Correlation_Id","Start_Timestamp","End_Timestamp"\n'
                                  b'"KERNEL_DISPATCH","Agent 2",1,0,10,1,3,"k(int)",1,1000,2000\n'
                                  b'"KERNEL_DISPATCH"\n',
}
SUFFIX = {"short_row_in_rocprofv3_csv": "_kernel_trace.csv"}


@pytest.mark.parametrize("command", ["info", "counts"])
@pytest.mark.parametrize("name", sorted(INPUTS))
def test_minimal_fuzz_inputs_keep_the_cli_contract(tmp_path: Path, monkeypatch, name: str, command: str) -> None:
    monkeypatch.setenv("TRACEVIEW_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / f"{name}{SUFFIX.get(name, '.json')}"
    path.write_bytes(INPUTS[name])
    outcome = run_subprocess(Command(command, (command, str(path), "--format", "json")), 60)
    verdict = classify(outcome)
    assert verdict in ("ok", "rejected"), f"{verdict} (exit {outcome.rc}): {outcome.stderr[-2000:]}"
