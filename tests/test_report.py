"""``traceview report``: one self-contained HTML file, exact tables, one div per figure, exit codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import write_trace
from plotly.offline import get_plotlyjs
from test_plots import demo_trace

from traceview.cli.app import run

DIFF_FIGURES = {"fig-category-delta", "fig-step-durations", "fig-step-histogram", "fig-latency-bootstrap", "fig-kernel-delta",
                "fig-per-step-before", "fig-heatmap-before", "fig-per-step-after", "fig-heatmap-after"}
TRACE_FIGURES = {"fig-per-step", "fig-step-durations", "fig-step-histogram", "fig-heatmap"}


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    # Same runs as tests/test_plots.py: before has fills 2, 2, 3 per step; after has none and one Triton add.
    folder = tmp_path_factory.mktemp("traces")
    before = write_trace(folder / "before.json", demo_trace([2, 2, 3], False, [900, 800, 700]).events)
    after = write_trace(folder / "after.json", demo_trace([0, 0, 0], True, [600, 600, 500]).events)
    return before, after


def figure_ids(html: str) -> list[str]:
    return re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', html)


def assert_self_contained(html: str) -> None:
    bundle = get_plotlyjs()
    assert html.count(bundle) == 1  # plotly.js inlined exactly once
    # No external script, stylesheet or image: every <script> is inline.
    assert not re.search(r"<script[^>]*\bsrc=", html)
    assert not re.search(r"<link[^>]*\bhref=\"?https?:", html)
    # plotly.js itself names cdn.plot.ly (topojson for geo maps, never fetched here); nothing else may.
    assert "cdn.plot.ly" not in html.replace(bundle, "")


def test_diff_report_is_one_self_contained_file(traces: tuple[Path, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "report.html"
    code = run(["report", str(traces[0]), str(traces[1]), "-o", str(out), "--skip", "1", "-q"])
    assert code == 0
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temp file left behind
    html = out.read_text(encoding="utf-8")
    assert_self_contained(html)
    ids = figure_ids(html)
    assert sorted(ids) == sorted(DIFF_FIGURES)  # one div per figure, none twice
    # Category table, steps 1..2: fill (2+3)/2 = 2.5 -> 0; elementwise (the Triton add) 0 -> 1.
    assert ('<td>fill</td><td class="num">2.5</td><td class="num">0</td><td class="num neg">−2.5</td>') in html
    assert ('<td>elementwise</td><td class="num">0</td><td class="num">1</td><td class="num pos">+1</td>') in html
    # Total 4.5 -> 3 launches per step.
    assert '<td>total</td><td class="num">4.5</td><td class="num">3</td><td class="num neg">−1.5</td>' in html
    assert "Expectations" not in html  # no expectation given: no section
    assert capsys.readouterr().out == ""


def test_failed_expectation_exits_1_and_still_writes(traces: tuple[Path, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r.html"
    # fill delta is -2.5 per step (holds: -2.5 ± 0.5 includes it); elementwise delta is +1, not 0 (fails).
    code = run(["report", str(traces[0]), str(traces[1]), "-o", str(out), "--skip", "1", "-q",
                "--expect", "fill=-2.5", "--expect", "elementwise=0"])
    assert code == 1
    html = out.read_text(encoding="utf-8")
    assert "1 of 2 expectation(s) failed" in html
    assert html.count('<span class="badge bad">FAIL</span>') == 1
    assert html.count('<span class="badge ok">pass</span>') == 1
    assert "elementwise: expected delta = 0 per step, got 1" in capsys.readouterr().err


def test_passing_expectations_exit_0(traces: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert run(["report", str(traces[0]), str(traces[1]), "-o", str(out), "--skip", "1", "-q",
                "--expect", "fill=-2.5", "--expect", "cast=0"]) == 0
    assert "All 2 expectation(s) hold" in out.read_text(encoding="utf-8")


def test_single_trace_report(traces: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "one.html"
    # Steady steps 1..2 of before: fill 2 and 3 -> mean 2.5, median 2.5, min 2, max 3.
    assert run(["report", str(traces[0]), "-o", str(out), "--skip", "1", "-q", "--expect", "fill<=3"]) == 0
    html = out.read_text(encoding="utf-8")
    assert_self_contained(html)
    assert sorted(figure_ids(html)) == sorted(TRACE_FIGURES)
    assert ('<td>fill</td><td class="num">2.5</td><td class="num">2.5</td><td class="num">2</td>'
            '<td class="num">3</td>') in html
    assert "All 1 expectation(s) hold" in html


def test_missing_trace_exits_2_and_writes_nothing(traces: tuple[Path, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    missing = tmp_path / "nope.json"
    assert run(["report", str(traces[0]), str(missing), "-o", str(out_dir / "r.html"), "-q"]) == 2
    assert list(out_dir.iterdir()) == []
    err = capsys.readouterr().err.strip()
    assert err == f"traceview: {missing}: no such file or directory"


@pytest.mark.parametrize("args", [
    ["a.json", "b.json", "c.json"],  # at most two runs
    ["a.json", "--label-before", "x"],  # before/after labels need two runs
])
def test_usage_errors_exit_2(args: list[str], traces: tuple[Path, Path], tmp_path: Path) -> None:
    paths = [str(traces[0]) if a.endswith(".json") else a for a in args]
    assert run(["report", *paths, "-o", str(tmp_path / "r.html"), "-q"]) == 2
    assert list(tmp_path.iterdir()) == []


def test_output_directory_must_exist(traces: tuple[Path, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "no" / "r.html"
    assert run(["report", str(traces[0]), "-o", str(target), "-q"]) == 2
    assert "output directory does not exist" in capsys.readouterr().err


def test_bad_expectation_exits_2_before_loading(traces: tuple[Path, Path], tmp_path: Path) -> None:
    assert run(["report", str(traces[0]), str(traces[1]), "-o", str(tmp_path / "r.html"), "-q",
                "--expect", "nosuchcategory=1"]) == 2
    assert list(tmp_path.iterdir()) == []
