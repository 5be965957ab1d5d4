"""notebooks/explore.ipynb runs top to bottom against the repository's sample traces (nbclient, kernel python3)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "explore.ipynb"
SAMPLES = [REPO / "sample_traces" / f"demo_eager_{side}.pt.trace.json.gz" for side in ("before", "after")]


def test_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "the notebook has no code cell"
    assert all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.mark.slow
def test_notebook_runs(tmp_path: Path) -> None:
    missing = [p.name for p in SAMPLES if not p.exists()]
    if missing:
        pytest.skip(f"sample traces missing: {', '.join(missing)} (recorded on a GPU by "
                    "sample_traces/collect_gpu_samples.sh)")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # Runs from notebooks/ like Jupyter does, so the notebook's relative paths are tested as users meet them.
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError naming the cell if any cell fails
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if out.get("output_type") == "error"]
    assert errors == []
    # The figures reached the page: plotly output from the figure cells.
    plotly_outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
                      if "application/vnd.plotly.v1+json" in out.get("data", {})
                      or "text/html" in out.get("data", {}) and "plotly" in out["data"]["text/html"]]
    # launches per step (before, after), heatmap, category delta, kernel delta, step durations, histogram.
    assert len(plotly_outputs) == 7
