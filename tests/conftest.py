"""Shared test helpers: the public trace folder and a tiny Kineto trace writer."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PUBLIC = REPO.parent / "shared" / "traces" / "public"


def public_trace(folder: str, name: str) -> Path:
    """A third-party trace from ../shared/traces/public, or skip the test when it is absent."""
    path = PUBLIC / folder / name
    if not path.exists():
        pytest.skip(f"public trace {folder}/{name} is not available (../shared/traces/public absent)")
    return path


def run_cli(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    """``traceview ARGS`` in this process: (exit code, stdout, stderr)."""
    from traceview.cli.app import run

    code = run([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def write_trace(path: Path, events: list[dict], gz: bool = False) -> Path:
    """Writes a Kineto-style trace ({"traceEvents": [...]}) to ``path``."""
    data = json.dumps({"schemaVersion": 1, "traceEvents": events}).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture(autouse=True, scope="session")
def _private_result_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests count from the traces, never from a user's ~/.cache/traceview results.

    The compiled wasm module stays in the user's cache (XDG), so it is not recompiled per run.
    """
    import os

    from traceview.engine.formats import default_cache_dir

    wasm = default_cache_dir() / "wasm"
    root = tmp_path_factory.mktemp("traceview-cache")
    if wasm.is_dir():
        (root / "wasm").symlink_to(wasm, target_is_directory=True)
    os.environ["TRACEVIEW_CACHE_DIR"] = str(root)
