"""CI slice of the fuzz campaign: 200 fixed-seed cases in-process, plus checks that the harness can fail.

In-process because a process per command costs ~0.5 s of start-up here (200
cases x 2 commands would take minutes); ``run_fuzz.py --mode fork|subprocess``
keeps one process per command for the big campaign.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import executors
from executors import Command, ForkPool, Outcome
from mutators import load_seeds, make_case
from run_fuzz import Campaign, classify, run_campaign, signature

CI_SEED = 20251125
CI_CASES = 200


def test_200_fuzz_cases_neither_crash_nor_hang(tmp_path: Path) -> None:
    summary = run_campaign(Campaign(seed=CI_SEED, cases=CI_CASES, jobs=1, mode="inprocess", timeout_s=120,
                                    results=tmp_path))
    failures = "\n".join(f"{f['verdict']} case {f['case']} {f['command']} ({' + '.join(f['mutations'])} of "
                         f"{f['source']}): {f['signature']}\n  rebuild: {f.get('regenerate', '')}"
                         for f in summary["failures"])
    assert summary["crashes"] == 0 and summary["hangs"] == 0, failures
    assert summary["cases"] == CI_CASES
    # Every command ran on every case, and each ended as ok (exit 0) or rejected (exit 2, one line).
    for command in ("info", "counts"):
        assert sum(summary["outcomes"][command].values()) == CI_CASES
    # The mutators must produce both kinds: inputs the CLI accepts and inputs it rejects.
    assert summary["outcomes"]["counts"].get("ok", 0) > 0
    assert summary["outcomes"]["counts"].get("rejected", 0) > 0


def test_cases_are_reproducible_from_seed_and_number() -> None:
    seeds = load_seeds(include_public=False)
    first = [make_case(seeds, 7, n) for n in range(30)]
    again = [make_case(seeds, 7, n) for n in range(30)]
    assert [c.data for c in first] == [c.data for c in again]
    assert [c.mutations for c in first] == [c.mutations for c in again]
    assert len({c.data for c in first}) == 30  # 30 different inputs, not one repeated


def test_hand_written_seed_is_a_valid_trace(tmp_path: Path) -> None:
    # 3 ProfilerStep#N steps: each launches fill (FillFunctor), cast (copy_ bf16<-f32),
    # gemm and a memset (fill), so fill=2, cast=1, gemm=1 per step; step 2 adds a
    # CUDA graph of 2 kernels named graph_kernel_N that no rule matches (other=2).
    from traceview.model.counts import analyze

    counts = analyze(HERE / "seeds" / "kineto_handwritten.json")
    per_step = counts.per_step()
    assert per_step["fill"].tolist() == [2, 2, 2]
    assert per_step["cast"].tolist() == [1, 1, 1]
    assert per_step["gemm"].tolist() == [1, 1, 1]
    assert per_step["other"].tolist() == [0, 0, 2]
    assert counts.steps["graph_replayed"].tolist() == [0, 0, 2]


@pytest.mark.parametrize("outcome, verdict", [
    (Outcome(0, "table", "warning: something odd\nwarning: more", False), "ok"),
    (Outcome(2, "", "traceview: x.json: not a trace\n", False), "rejected"),
    (Outcome(2, "", "Usage: traceview [OPTIONS]\nError: bad flag\n", False), "crash"),  # two lines
    (Outcome(1, "", "Traceback (most recent call last):\n  File ...\nTypeError: boom\n", False), "crash"),
    (Outcome(0, "", "thread 'main' panicked at src/lib.rs:1\n", False), "crash"),
    (Outcome(2, "", "wasm backtrace:\n    0: 0x1 - <unknown>\n", False), "crash"),
    (Outcome(-11, "", "", False), "crash"),  # killed by SIGSEGV
    (Outcome(None, "", "", True), "hang"),
])
def test_classify_applies_the_cli_contract(outcome: Outcome, verdict: str) -> None:
    assert classify(outcome) == verdict


def test_signature_names_the_innermost_traceview_frame() -> None:
    stderr = ('Traceback (most recent call last):\n  File "/x/typer/main.py", line 5, in run\n'
              '  File "/repo/traceview/engine/backends.py", line 149, in load\n'
              'TypeError: __str__ returned non-string (type bytes)\n')
    assert signature(Outcome(1, "", stderr, False)) == \
        "TypeError: __str__ returned non-string (type bytes) at engine/backends.py:149"


def test_fork_runner_reports_exit_codes_tracebacks_and_kills_hangs(tmp_path: Path, monkeypatch) -> None:
    def fake_call(command: Command) -> int:
        if command.label == "hang":
            time.sleep(60)
        if command.label == "raise":
            raise RuntimeError("escaped")
        sys.stderr.write("traceview: x: bad input\n")
        return 2

    monkeypatch.setattr(executors, "_call", fake_call)  # the forked child inherits the patch
    pool = ForkPool(3, tmp_path)
    for label in ("hang", "raise", "reject"):
        pool.submit(Command(label, ()), 1.0, label)
    outcomes: dict[str, Outcome] = {}
    while pool.running:
        outcomes.update(pool.wait())
    assert classify(outcomes["hang"]) == "hang"
    assert outcomes["raise"].rc == 1 and "RuntimeError: escaped" in outcomes["raise"].stderr
    assert classify(outcomes["raise"]) == "crash"
    assert (outcomes["reject"].rc, outcomes["reject"].stderr) == (2, "traceview: x: bad input\n")


def test_inprocess_runner_times_out_and_gives_the_streams_back(monkeypatch) -> None:
    release = threading.Event()
    monkeypatch.setattr(executors, "_call", lambda command: release.wait(30) and 0)
    before = sys.stdout
    outcome = executors.run_inprocess(Command("hang", ()), 0.5)
    release.set()
    assert outcome.timed_out and classify(outcome) == "hang"
    assert sys.stdout is before


def test_failures_are_saved_with_a_repro_command(tmp_path: Path) -> None:
    from run_fuzz import save_failure

    case = make_case(load_seeds(include_public=False), 3, 5)
    path = tmp_path / f"in{case.suffix}"
    path.write_bytes(case.data)
    outcome = Outcome(1, "", "Traceback (most recent call last):\nValueError: x\n", False)
    record = save_failure(tmp_path / "results", case, 3, Command("info", ("info", str(path))), path, "crash", outcome)
    kept = tmp_path / "results" / "failures" / "case-000005-info" / f"input{case.suffix}"
    assert kept.read_bytes() == case.data
    assert record["repro"] == f"traceview info {kept}"
    assert record["regenerate"].endswith("--seed 3 --only-case 5")
    assert (kept.parent / "repro.sh").read_text().splitlines()[-1] == record["repro"]
