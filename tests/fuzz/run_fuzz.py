"""Fuzz campaign: mutate real traces, run ``traceview info`` and ``traceview counts`` on each.

The contract every command must keep on any input: exit 0, or exit 2 with
exactly one line on stderr, and never a Python traceback, a Rust panic or a
wasm backtrace. Anything else is a crash; running past the timeout is a hang.
Each failing input is saved under the results dir with its command line.

    python tests/fuzz/run_fuzz.py --cases 10000 --jobs 2            # big campaign
    python tests/fuzz/run_fuzz.py --seed 7 --only-case 123          # rebuild and rerun one case
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from executors import MODES, RUNNERS, Command, ForkPool, Outcome
from mutators import Case, load_seeds, make_case

from traceview.engine.formats import default_cache_dir

KEEP_PER_SIGNATURE = 20  # failing inputs saved per distinct failure signature
# Text that must never reach a user: Python tracebacks, Rust panics, wasmtime trap dumps, native faults.
FORBIDDEN = ("Traceback (most recent call last)", "wasm backtrace", "panicked at", "RUST_BACKTRACE",
             "error while executing at wasm", "Fatal Python error", "Segmentation fault", "core dumped")


def commands_for(path: Path, number: int = 0) -> list[Command]:
    """``info`` and ``counts`` on ``path``; the output format rotates with the case number so every
    renderer (rich table, JSON, CSV) sees malformed data too."""
    info_format = ("table", "json")[number % 2]
    counts_format = ("table", "json", "csv")[number % 3]
    return [Command("info", ("info", str(path), "--format", info_format)),
            Command("counts", ("counts", str(path), "--format", counts_format))]


def classify(outcome: Outcome) -> str:
    """``ok`` (exit 0), ``rejected`` (exit 2, one stderr line), ``crash`` or ``hang``."""
    if outcome.timed_out:
        return "hang"
    if any(marker in outcome.stderr or marker in outcome.stdout for marker in FORBIDDEN):
        return "crash"
    if outcome.rc == 0:
        return "ok"
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    if outcome.rc == 2 and len(lines) == 1:
        return "rejected"
    return "crash"


@dataclass
class Tally:
    """Running totals of a campaign; ``add`` is called from worker threads."""

    outcomes: dict = field(default_factory=lambda: defaultdict(Counter))  # command -> verdict -> n
    exit_codes: dict = field(default_factory=lambda: defaultdict(Counter))  # command -> rc -> n
    reasons: Counter = field(default_factory=Counter)  # first words of rejection lines
    failures: list = field(default_factory=list)
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, label: str, verdict: str, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes[label][verdict] += 1
            self.exit_codes[label]["timeout" if outcome.timed_out else str(outcome.rc)] += 1
            if verdict == "rejected":
                self.reasons[_reason_key(outcome.stderr)] += 1


def _reason_key(stderr: str) -> str:
    """The rejection reason without the path, cut at the first '(' or digit run, for a histogram."""
    line = stderr.strip().splitlines()[0]
    reason = line.split(": ", 2)[-1]
    for stop in (" (", ":", " at ", " line "):
        reason = reason.split(stop)[0]
    return reason[:80]


def signature(outcome: Outcome) -> str:
    """Groups failures: the exception line plus the innermost traceview frame (file:line), or the exit status."""
    if outcome.timed_out:
        return "hang"
    lines = [line.strip() for line in outcome.stderr.splitlines() if line.strip()]
    frames = [line for line in lines if line.startswith("File ") and "/traceview/" in line]
    where = ""
    if frames:
        parts = frames[-1].split('"')
        where = f" at {parts[1].split('/traceview/')[-1]}:{parts[2].split(',')[1].split()[-1]}" if len(parts) > 2 else ""
    last = lines[-1][:120] if lines else f"exit {outcome.rc}, no stderr"
    return f"{last}{where}"


def save_failure(results: Path, case: Case, seed: int, command: Command, input_path: Path,
                 verdict: str, outcome: Outcome) -> dict:
    """Keeps the input, the output and a repro script under ``results/failures``; returns the record."""
    where = results / "failures" / f"case-{case.number:06d}-{command.label}"
    where.mkdir(parents=True, exist_ok=True)
    kept = where / f"input{case.suffix}"
    shutil.copyfile(input_path, kept)
    repro = Command(command.label, tuple(str(kept) if a == str(input_path) else a for a in command.argv))
    (where / "stdout.txt").write_text(outcome.stdout)
    (where / "stderr.txt").write_text(outcome.stderr)
    record = {"case": case.number, "seed": seed, "command": command.label, "verdict": verdict,
              "exit_code": outcome.rc, "signature": signature(outcome), "source": case.seed, "mutations": case.mutations,
              "repro": repro.shell(),
              "regenerate": f"python {HERE / 'run_fuzz.py'} --seed {seed} --only-case {case.number}"}
    (where / "repro.sh").write_text(f"#!/bin/sh\n# {verdict}: {' + '.join(case.mutations)} of {case.seed}\n"
                                    f"{repro.shell()}\n")
    (where / "case.json").write_text(json.dumps(record, indent=2))
    return record


@dataclass(frozen=True)
class Campaign:
    """What to run: ``cases`` cases numbered from ``first`` with ``seed``, on ``jobs`` workers."""

    seed: int = 0
    cases: int = 200
    first: int = 0
    jobs: int = 1
    mode: str = "subprocess"
    timeout_s: float = 60.0
    results: Path = Path(tempfile.gettempdir()) / "traceview-fuzz"
    include_public: bool = True
    progress_every: int = 0  # print a progress line to stderr every N cases (0: never)


def _prepare(campaign: Campaign, seeds, number: int, workdir: Path) -> tuple[Case, Path]:
    case = make_case(seeds, campaign.seed, number)
    path = workdir / f"case-{number:06d}{case.suffix}"
    path.write_bytes(case.data)
    return case, path


def _record(campaign: Campaign, tally: Tally, case: Case, path: Path, command: Command, outcome: Outcome) -> str:
    """Classifies one command's outcome, counts it and saves the input if it crashed or hung."""
    verdict = classify(outcome)
    tally.add(command.label, verdict, outcome)
    if verdict in ("crash", "hang"):
        key = signature(outcome)
        with tally.lock:
            keep = sum(1 for f in tally.failures if f["signature"] == key) < KEEP_PER_SIGNATURE
        if keep:
            record = save_failure(campaign.results, case, campaign.seed, command, path, verdict, outcome)
        else:  # counted, not kept: a common bug would otherwise fill the disk with copies of its inputs
            record = {"case": case.number, "seed": campaign.seed, "command": command.label, "verdict": verdict,
                      "exit_code": outcome.rc, "signature": key, "source": case.seed, "mutations": case.mutations}
        with tally.lock:
            tally.failures.append(record)
    return verdict


def _finish(campaign: Campaign, tally: Tally, path: Path) -> None:
    path.unlink(missing_ok=True)
    with tally.lock:
        tally.done += 1
        if campaign.progress_every and tally.done % campaign.progress_every == 0:
            print(f"[fuzz] {tally.done}/{campaign.cases} cases, {len(tally.failures)} failures",
                  file=sys.stderr, flush=True)


def _run_case(campaign: Campaign, seeds, number: int, workdir: Path, tally: Tally) -> bool:
    """Runs one case's commands one after the other; False when one hung (in-process: stop there)."""
    case, path = _prepare(campaign, seeds, number, workdir)
    alive = True
    try:
        for command in commands_for(path, number):
            verdict = _record(campaign, tally, case, path, command, RUNNERS[campaign.mode](command, campaign.timeout_s))
            alive = alive and verdict != "hang"
    finally:
        _finish(campaign, tally, path)
    return alive


def _fork_campaign(campaign: Campaign, seeds, numbers, workdir: Path, tally: Tally) -> None:
    """Fork mode: up to ``jobs`` children at once, one per command; a case's commands run in order."""
    pool = ForkPool(campaign.jobs, workdir)
    pending = iter(numbers)
    active: dict[int, list] = {}  # case number -> [case, path, commands, index of the running one]

    def start_case() -> None:
        number = next(pending, None)
        if number is None:
            return
        case, path = _prepare(campaign, seeds, number, workdir)
        commands = commands_for(path, number)
        active[number] = [case, path, commands, 0]
        pool.submit(commands[0], campaign.timeout_s, number)

    for _ in range(campaign.jobs):
        start_case()
    while active:
        for number, outcome in pool.wait():
            state = active[number]
            case, path, commands, index = state
            _record(campaign, tally, case, path, commands[index], outcome)
            if index + 1 < len(commands):
                state[3] = index + 1
                pool.submit(commands[index + 1], campaign.timeout_s, number)
                continue
            _finish(campaign, tally, path)
            del active[number]
            start_case()


def run_campaign(campaign: Campaign) -> dict:
    """Runs the campaign and returns its summary (also written to ``results/summary.json``).

    Keys: seed, cases, mode, jobs, duration_s, crashes, hangs,
    outcomes {command: {verdict: n}}, exit_codes {command: {code: n}},
    rejection_reasons {reason: n}, seeds, failures [records].
    """
    if campaign.mode == "inprocess" and campaign.jobs != 1:
        raise ValueError("the in-process runner shares stdout/stderr: use --jobs 1")
    campaign.results.mkdir(parents=True, exist_ok=True)
    # Counts computed during the campaign must not land in (or come from) the user's cache; the compiled
    # wasm module is shared, though (compiling it takes seconds).
    private = campaign.results / "cache"
    private.mkdir(exist_ok=True)
    shared_wasm = default_cache_dir() / "wasm"
    if not (private / "wasm").exists() and shared_wasm.is_dir():
        (private / "wasm").symlink_to(shared_wasm, target_is_directory=True)
    os.environ["TRACEVIEW_CACHE_DIR"] = str(private)
    seeds = load_seeds(campaign.include_public)
    tally = Tally()
    started = time.monotonic()
    numbers = range(campaign.first, campaign.first + campaign.cases)
    with tempfile.TemporaryDirectory(prefix="tv-fuzz-cases-") as tmp:
        if campaign.mode == "fork":
            _fork_campaign(campaign, seeds, numbers, Path(tmp), tally)
        elif campaign.jobs == 1:
            for number in numbers:
                if not _run_case(campaign, seeds, number, Path(tmp), tally):
                    break  # an in-process hang leaves a thread we cannot kill
        else:
            with ThreadPoolExecutor(campaign.jobs) as pool:
                list(pool.map(lambda n: _run_case(campaign, seeds, n, Path(tmp), tally), numbers))
    summary = {
        "seed": campaign.seed, "cases": tally.done, "first_case": campaign.first, "mode": campaign.mode,
        "jobs": campaign.jobs, "timeout_s": campaign.timeout_s,
        "duration_s": round(time.monotonic() - started, 1),
        "crashes": sum(1 for f in tally.failures if f["verdict"] == "crash"),
        "hangs": sum(1 for f in tally.failures if f["verdict"] == "hang"),
        "outcomes": {k: dict(v) for k, v in tally.outcomes.items()},
        "exit_codes": {k: dict(sorted(v.items())) for k, v in tally.exit_codes.items()},
        "failure_signatures": dict(Counter(f["signature"] for f in tally.failures).most_common()),
        "rejection_reasons": dict(tally.reasons.most_common()),
        "seeds": [s.name for s in seeds],
        "failures": sorted(tally.failures, key=lambda f: (f["case"], f["command"])),
    }
    (campaign.results / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first", type=int, default=0, help="number of the first case (resume a campaign)")
    parser.add_argument("--only-case", type=int, default=None, help="rebuild and run just this case")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--mode", choices=MODES, default="subprocess")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per command before it is a hang")
    parser.add_argument("--results", type=Path, default=Campaign.results)
    parser.add_argument("--no-public", action="store_true", help="use only the seeds in tests/fuzz/seeds")
    parser.add_argument("--write-case", type=Path, default=None, help="with --only-case: just write the input here")
    args = parser.parse_args(argv)
    first, cases = (args.only_case, 1) if args.only_case is not None else (args.first, args.cases)
    if args.write_case is not None:
        case = make_case(load_seeds(not args.no_public), args.seed, first)
        args.write_case.write_bytes(case.data)
        print(f"{args.write_case}: {' + '.join(case.mutations)} of {case.seed}")
        return 0
    jobs = 1 if args.mode == "inprocess" else max(1, args.jobs)
    campaign = Campaign(args.seed, cases, first, jobs, args.mode, args.timeout, args.results,
                        not args.no_public, progress_every=max(1, cases // 20))
    summary = run_campaign(campaign)
    brief = {k: v for k, v in summary.items() if k != "failures"}
    print(json.dumps(brief, indent=2))
    for failure in summary["failures"]:
        print(f"{failure['verdict'].upper()} case {failure['case']} {failure['command']}: "
              f"{failure.get('repro', failure['signature'])}")
    print(f"summary: {campaign.results / 'summary.json'}")
    return 0 if summary["crashes"] == 0 and summary["hangs"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
