"""The counts cache: hits equal fresh counts, keys cover every input, writes are atomic and race-safe."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from traceview import cache
from traceview.cache import (
    cache_info,
    cache_key,
    cached_analyze,
    entry_dir,
    load_entry,
    store_entry,
)
from traceview.cli.app import run
from traceview.engine import EngineConfig
from traceview.errors import RulesError, TraceLoadError
from traceview.model.counts import analyze

SEED = Path(__file__).resolve().parent / "fuzz" / "seeds" / "kineto_handwritten.json"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("TRACEVIEW_CACHE_DIR", str(root))
    return root


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    path = tmp_path / "trace.json"
    path.write_bytes(SEED.read_bytes())
    return path


def assert_same(a, b) -> None:
    for name in ("steps", "launches"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert (a.path, a.categories, a.step_marker, a.step_regex, a.warnings) == \
        (b.path, b.categories, b.step_marker, b.step_regex, b.warnings)


def entries(root: Path) -> list[Path]:
    return sorted(d for d in (root / "counts").glob("??/*") if d.is_dir())


def test_second_call_is_served_from_the_cache_and_equals_a_fresh_analysis(trace, cache_dir, monkeypatch):
    first = cached_analyze(trace)
    assert len(entries(cache_dir)) == 1

    def must_not_run(*args, **kwargs):
        raise AssertionError("analyze() ran although the cache holds this trace")

    monkeypatch.setattr(cache, "analyze", must_not_run)
    progress = []
    hit = cached_analyze(trace, on_progress=lambda done, total: progress.append((done, total)))
    assert_same(hit, first)
    assert_same(hit, analyze(trace))  # dtypes and values survive the Parquet round trip exactly
    assert progress == [(trace.stat().st_size, trace.stat().st_size)]


@pytest.mark.parametrize("command", ["counts", "diff"])
def test_a_count_served_from_the_cache_never_imports_the_loaders(trace, tmp_path, command):
    """A warm re-count or re-diff pays only for what it uses: the trace processor's client (perfetto,
    wasmtime) and the loaders behind a load cost ~0.1 s of import, parquet's reader ~30 ms, and a cached
    result needs none of them."""
    import subprocess
    import sys

    cached_analyze(trace)  # fills the cache (TRACEVIEW_CACHE_DIR, which the command below inherits)
    out = tmp_path / f"{command}.json"
    traces = [str(trace)] * (2 if command == "diff" else 1)  # a diff of the trace with itself: both cached
    script = ("import sys; from traceview.cli.app import run; code = run(sys.argv[1:] + ['-f', 'json', '-o', "
              f"{str(out)!r}]); print(sorted(m for m in sys.modules if m.split('.')[0] in ('perfetto', 'wasmtime') "
              "or m in ('traceview.engine.api', 'traceview.engine.backends', 'traceview.engine.feeding', "
              "'pyarrow.parquet', 'pyarrow.dataset'))); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script, command, *traces], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    answer = json.loads(out.read_text())  # the counts did come back, from the cache
    assert answer["steps"] if command == "counts" else answer["categories"]["total"]["delta"] == 0.0


def test_public_trace_round_trip(cache_dir):
    from conftest import public_trace

    path = public_trace("sglang-qwen3-8b-decode-mi300x", "sglang_Qwen3-8B_decode.json.gz")
    assert_same(cached_analyze(path), cached_analyze(path))
    assert_same(cached_analyze(path), analyze(path))
    assert len(entries(cache_dir)) == 1


def test_a_trace_directory_is_keyed_on_every_file_in_it(tmp_path, cache_dir):
    from conftest import public_trace

    csv = public_trace("rocprofv3-kernel-trace-csv-mi300", "ps_file_kernel_trace.csv")
    run_dir = tmp_path / "rocprof-run"
    run_dir.mkdir()
    (run_dir / csv.name).write_bytes(csv.read_bytes())
    first = cached_analyze(run_dir)
    assert_same(cached_analyze(run_dir), first)
    # The CSV holds 3 kernel dispatches; no step marker, so one whole-trace step holds all 3.
    assert first.steps["launches"].tolist() == [3]
    before = cache_key(run_dir, None, None)
    (run_dir / csv.name).write_bytes(csv.read_bytes().replace(b"vecCopy", b"vecCopz"))
    assert cache_key(run_dir, None, None) != before


def test_same_content_elsewhere_hits_and_reports_the_new_path(trace, tmp_path, cache_dir):
    cached_analyze(trace)
    copy = tmp_path / "copy.json"
    copy.write_bytes(trace.read_bytes())
    assert cached_analyze(copy).path == str(copy)
    assert len(entries(cache_dir)) == 1


def test_key_changes_with_content_rules_and_marker(trace, tmp_path):
    base = cache_key(trace, None, None)
    rules = tmp_path / "rules.toml"
    rules.write_text('schema_version = 1\n[[rule]]\ncategory = "gemm"\nkernel = "gemm"\n')
    with_rules = cache_key(trace, None, rules)
    rules.write_text('schema_version = 1\n[[rule]]\ncategory = "fill"\nkernel = "Fill"\n')
    keys = {base, with_rules, cache_key(trace, None, rules), cache_key(trace, "^ProfilerStep#1$", None),
            cache_key(trace, None, None, EngineConfig(wasm_only=True, lean=True))}
    # Where the compiled module lives does not change the answer, so it does not change the key.
    assert cache_key(trace, None, None, EngineConfig(cache_dir=tmp_path / "elsewhere")) == base
    trace.write_bytes(trace.read_bytes().replace(b"ampere_bf16", b"hopper_bf16"))
    keys.add(cache_key(trace, None, None))
    assert len(keys) == 6
    assert cache_key(trace, None, None) == cache_key(trace, None, None)


def test_a_file_digest_is_remembered_until_the_file_changes(trace, tmp_path, cache_dir, monkeypatch):
    monkeypatch.setattr(cache, "RECENT_WRITE_NS", -1)  # the trace was written just now: call it settled
    hashed: list[Path] = []
    real_hash = cache.file_sha256
    monkeypatch.setattr(cache, "file_sha256", lambda f: hashed.append(f) or real_hash(f))
    first = cache_key(trace, None, None)
    assert cache_key(trace, None, None) == first
    assert hashed == [trace]  # the second key came from the remembered digest
    # Same size, other bytes, and the old mtime put back: the ctime still moves, so it is hashed again.
    stat = trace.stat()
    time.sleep(0.05)  # past the filesystem's timestamp tick
    trace.write_bytes(trace.read_bytes().replace(b"ampere_bf16", b"hopper_bf16"))
    os.utime(trace, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert trace.stat().st_size == stat.st_size and trace.stat().st_mtime_ns == stat.st_mtime_ns
    changed = cache_key(trace, None, None)
    assert changed != first and hashed == [trace, trace]
    # A copy is another file (inode), hashed once, and keyed like the original.
    copy = tmp_path / "copy.json"
    copy.write_bytes(trace.read_bytes())
    assert cache_key(copy, None, None) == changed
    assert hashed == [trace, trace, copy]


def test_a_file_written_just_now_is_hashed_every_time(trace, cache_dir, monkeypatch):
    hashed: list[Path] = []
    real_hash = cache.file_sha256
    monkeypatch.setattr(cache, "file_sha256", lambda f: hashed.append(f) or real_hash(f))
    cache_key(trace, None, None)
    cache_key(trace, None, None)
    # Written by the fixture within RECENT_WRITE_NS: a rewrite in the same timestamp tick could keep its identity.
    assert hashed == [trace, trace]
    assert not list((cache_dir / "digests").glob("*.json"))


def test_other_rules_give_other_counts_not_a_stale_hit(trace, tmp_path):
    default = cached_analyze(trace)
    rules = tmp_path / "rules.toml"
    rules.write_text('schema_version = 1\n[[rule]]\ncategory = "gemm"\nkernel = "gemm"\n')
    custom = cached_analyze(trace, rules_path=rules)
    # One rule only: 3 steps x 1 gemm kernel; the other 4 launches per step (5 in step 2) are "other".
    assert custom.categories == ["gemm", "other"]
    assert custom.per_step()["gemm"].tolist() == [1, 1, 1]
    assert default.categories != custom.categories


@pytest.mark.parametrize("damage", ["truncate_arrow", "garbage_meta", "missing_file", "old_format"])
def test_corrupt_entry_is_ignored_and_rewritten(trace, cache_dir, damage):
    fresh = cached_analyze(trace)
    where = entries(cache_dir)[0]
    if damage == "truncate_arrow":
        data = (where / "launches.arrow").read_bytes()
        (where / "launches.arrow").write_bytes(data[: len(data) // 2])
    elif damage == "garbage_meta":
        (where / "meta.json").write_text("{not json")
    elif damage == "missing_file":
        (where / "steps.arrow").unlink()
    else:
        meta = json.loads((where / "meta.json").read_text())
        (where / "meta.json").write_text(json.dumps({**meta, "format": 0}))
    again = cached_analyze(trace)
    assert_same(again, fresh)
    assert entries(cache_dir) == [where]
    assert load_entry(where.name, str(trace)) is not None  # the rewritten entry reads back


def test_errors_come_from_analyze_and_are_not_cached(tmp_path, cache_dir, trace):
    with pytest.raises(TraceLoadError, match="no such file"):
        cached_analyze(tmp_path / "missing.json")
    with pytest.raises(RulesError, match="no such file"):
        cached_analyze(trace, rules_path=tmp_path / "missing.toml")
    bad = tmp_path / "bad.json"
    bad.write_text("this is not a trace")
    with pytest.raises(TraceLoadError):
        cached_analyze(bad)
    assert entries(cache_dir) == []


def test_use_cache_false_neither_reads_nor_writes(trace, cache_dir):
    cached_analyze(trace, use_cache=False)
    assert entries(cache_dir) == []


def test_unwritable_cache_still_returns_counts(trace, tmp_path, monkeypatch):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv("TRACEVIEW_CACHE_DIR", str(blocker))
    assert_same(cached_analyze(trace), analyze(trace))


def test_xdg_cache_home_is_the_default_root(monkeypatch, tmp_path):
    monkeypatch.delenv("TRACEVIEW_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "traceview"


def _race(root: str, trace: str, key: str, rounds: int, barrier, results) -> None:
    os.environ["TRACEVIEW_CACHE_DIR"] = root
    counts = analyze(trace)
    won = []
    for i in range(rounds):
        round_key = hashlib.sha256(f"{key}:{i}".encode()).hexdigest()
        barrier.wait()  # both processes write round_key at the same moment
        won.append(store_entry(round_key, counts))
        got = load_entry(round_key, trace)
        assert got is not None  # whichever rename won, the entry is complete
        pd.testing.assert_frame_equal(got.launches, counts.launches)
    results.put(won)


def test_two_processes_writing_the_same_key(trace, cache_dir):
    key = cache_key(trace, None, None)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    rounds = 20
    workers = [ctx.Process(target=_race, args=(str(cache_dir), str(trace), key, rounds, barrier, results))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    won = [results.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    # Each round exactly one of the two writes lands; the other sees the entry exists and drops its copy.
    assert [a + b for a, b in zip(*won)] == [1] * rounds
    assert len(entries(cache_dir)) == rounds
    leftovers = [p.name for p in (cache_dir / "counts").rglob("*") if p.name.startswith((".tmp-", ".trash-"))]
    assert leftovers == []


def test_cli_info_and_clear(trace, cache_dir, capsys):
    cached_analyze(trace)
    assert run(["cache", "info", "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["location"] == str(cache_dir)
    assert info["entries"] == 1
    assert info["size_bytes"] == sum(f.stat().st_size for f in entry_dir(cache_key(trace, None, None)).iterdir())
    assert run(["cache", "info"]) == 0
    assert str(cache_dir) in capsys.readouterr().out
    assert run(["cache", "clear"]) == 0
    assert "freed" in capsys.readouterr().out
    assert cache_info().entries == 0
    assert run(["cache", "info", "--format", "yaml"]) == 2
