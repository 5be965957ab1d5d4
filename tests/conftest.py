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


def write_trace(path: Path, events: list[dict], gz: bool = False) -> Path:
    """Writes a Kineto-style trace ({"traceEvents": [...]}) to ``path``."""
    data = json.dumps({"schemaVersion": 1, "traceEvents": events}).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path
