"""The wheel ships every package: pyproject lists them by hand (the collectors/ folder is mapped
to traceview.collectors, which package discovery cannot combine with), so a new package that is
not listed would install without it and fail only on a user's machine."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "traceview").rglob("__init__.py")}
    mapped = {name for name, folder in config["package-dir"].items()}
    assert mapped == {"traceview.collectors"} and (REPO / config["package-dir"]["traceview.collectors"]).is_dir()
    assert set(config["packages"]) == on_disk | mapped
