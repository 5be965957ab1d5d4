"""Batches: counts of many traces in worker processes (or Ray) equal one-at-a-time counts."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from kineto import KinetoTrace

from traceview.batch import (
    WORKER_DIED,
    BatchConfig,
    analyze_many,
    counts_many,
    expand_paths,
)
from traceview.engine import EngineConfig
from traceview.errors import TraceLoadError, TraceviewError
from traceview.model.counts import analyze

SEED = Path(__file__).resolve().parent / "fuzz" / "seeds" / "kineto_handwritten.json"


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TRACEVIEW_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def ranks(tmp_path: Path) -> Path:
    """rank0: the hand-written seed (4, 4, 6 launches); rank1: the same gzipped;
    rank2: two steps of three FillFunctor launches each."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "rank0.json").write_bytes(SEED.read_bytes())
    (folder / "rank1.json.gz").write_bytes(gzip.compress(SEED.read_bytes()))
    trace = KinetoTrace()
    for step in range(2):
        start = 100.0 * step
        trace.annotation(f"ProfilerStep#{step}", start, 90)
        for k in range(3):
            trace.op("aten::fill_", start + 1 + 20 * k, 10)
            trace.launch(start + 2 + 20 * k, ["void at::native::FillFunctor<float>(float)"])
    (folder / "rank2.json").write_text(json.dumps({"schemaVersion": 1, "traceEvents": trace.events}))
    (folder / "notes.txt").write_text("not a trace")
    return folder


def expected_rows(path: Path) -> pd.DataFrame:
    counts = analyze(path)
    return counts.steps.join(counts.per_step(), on="step")


def test_expand_paths_files_dirs_globs(ranks: Path) -> None:
    names = lambda paths: [p.name for p in paths]
    assert names(expand_paths([ranks])) == ["rank0.json", "rank1.json.gz", "rank2.json"]
    assert names(expand_paths([str(ranks / "rank[12]*")])) == ["rank1.json.gz", "rank2.json"]
    # duplicates dropped, first position kept; a missing plain file is left for the worker to report
    assert names(expand_paths([ranks / "rank2.json", ranks, ranks / "absent.json"])) == \
        ["rank2.json", "rank0.json", "rank1.json.gz", "absent.json"]
    with pytest.raises(TraceLoadError, match="no file matches"):
        expand_paths([str(ranks / "*.pftrace")])


def test_counts_many_equals_counting_one_at_a_time(ranks: Path) -> None:
    progress = []
    frame = counts_many([ranks], jobs=2, on_progress=lambda done, total: progress.append((done, total)))
    assert progress == [(1, 3), (2, 3), (3, 3)]
    assert frame["rank"].tolist() == ["rank0"] * 3 + ["rank1"] * 3 + ["rank2"] * 2
    assert frame["error"].isna().all()
    # rank0/1: fill, cast, gemm, memset per step, plus 2 graph-replayed kernels in step 2
    assert frame["launches"].tolist() == [4, 4, 6, 4, 4, 6, 3, 3]
    assert frame.loc[frame["rank"] == "rank2", "fill"].tolist() == [3, 3]
    for path in expand_paths([ranks]):
        got = frame[frame["trace"] == str(path)].drop(columns=["trace", "rank", "error"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected_rows(path), check_dtype=True)


def test_analyze_many_returns_launch_counts_in_input_order(ranks: Path) -> None:
    results = analyze_many([ranks / "rank2.json", ranks / "rank0.json"], jobs=2)
    assert [p.name for p in results] == ["rank2.json", "rank0.json"]
    assert results[ranks / "rank0.json"].per_step()["gemm"].tolist() == [1, 1, 1]


def test_raise_policy_raises_the_failing_traces_error(ranks: Path) -> None:
    with pytest.raises(TraceLoadError) as caught:
        counts_many([ranks / "rank0.json", ranks / "notes.txt"], jobs=2)
    assert caught.value.path == str(ranks / "notes.txt")
    assert "not a trace" in caught.value.reason


def test_record_policy_keeps_going_and_records_one_row_per_failure(ranks: Path) -> None:
    frame = counts_many([ranks / "rank2.json", ranks / "notes.txt", ranks / "missing.json"], jobs=2,
                        config=BatchConfig(failures="record"))
    assert frame["rank"].tolist() == ["rank2", "rank2", "notes.txt", "missing.json"]
    errors = frame["error"].tolist()
    assert errors[:2] == [pd.NA, pd.NA]
    assert errors[2].startswith(f"{ranks / 'notes.txt'}: not a trace")
    assert errors[3] == f"{ranks / 'missing.json'}: no such file"
    assert str(frame["fill"].dtype) == "Int64"  # counts stay integers next to the failed rows
    assert frame["fill"].tolist()[:2] == [3, 3]


def test_a_worker_that_dies_is_reported_not_hung(ranks: Path, tmp_path: Path) -> None:
    # A "trace processor" that kills its parent: the worker process dies mid-trace, as on an OOM kill.
    killer = tmp_path / "trace_processor_shell"
    killer.write_text("#!/bin/sh\nkill -9 $PPID\n")
    killer.chmod(0o755)
    config = BatchConfig(engine=EngineConfig(tp_bin=str(killer)), failures="record", use_cache=False)
    frame = counts_many([ranks / "rank0.json", ranks / "rank2.json"], jobs=2, config=config)
    assert frame["error"].tolist() == [f"{ranks / 'rank0.json'}: {WORKER_DIED}",
                                       f"{ranks / 'rank2.json'}: {WORKER_DIED}"]
    with pytest.raises(TraceLoadError, match="worker process died"):
        counts_many([ranks / "rank0.json"], jobs=1, config=BatchConfig(engine=config.engine, use_cache=False))


def test_bad_executor_and_policy_are_usage_errors(ranks: Path) -> None:
    with pytest.raises(TraceviewError, match="unknown executor 'dask'"):
        counts_many([ranks], executor="dask")
    with pytest.raises(TraceviewError, match="unknown failure policy 'ignore'"):
        counts_many([ranks], config=BatchConfig(failures="ignore"))


def test_no_paths_give_an_empty_frame_with_the_key_columns() -> None:
    frame = counts_many([])
    assert list(frame.columns) == ["trace", "rank", "step", "error"] and frame.empty


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="the ray executor is optional (pip install ray)")
    try:
        # Loopback only; no dashboard. A raylet waits a fixed time for its agents (ray issue #65983),
        # which a heavily loaded 2-core box can exceed: that is Ray's start-up, not the executor.
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    except Exception as err:  # noqa: BLE001 - any start-up failure means no cluster to test against
        pytest.skip(f"a local Ray instance did not start: {str(err).splitlines()[0]}")
    yield ray
    ray.shutdown()


def test_ray_executor_matches_the_process_pool(ranks: Path, local_ray) -> None:
    on_ray = counts_many([ranks, ranks / "notes.txt"], jobs=2, executor="ray", config=BatchConfig(failures="record"))
    in_pool = counts_many([ranks, ranks / "notes.txt"], jobs=2, config=BatchConfig(failures="record"))
    pd.testing.assert_frame_equal(on_ray, in_pool)
    assert on_ray["error"].notna().sum() == 1
    with pytest.raises(TraceLoadError, match="not a trace"):
        counts_many([ranks / "notes.txt"], executor="ray")


def test_traces_side_by_side_share_the_cores_this_process_may_use(monkeypatch) -> None:
    """Under `taskset -c 0-7` on a 16-CPU host, 8 traces get one core each, not the machine's 16 / 8 = 2
    (which put 24 decoding processes on 8 cores)."""
    import os

    from traceview.batch import _share_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    engine = _share_cores(BatchConfig(), 8).engine
    assert (engine.workers, engine.shards) == (1, 1)
    engine = _share_cores(BatchConfig(), 2).engine
    assert (engine.workers, engine.shards) == (4, 4)
