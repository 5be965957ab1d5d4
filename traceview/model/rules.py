"""Rules shipped as TOML (categories, step markers), parsed once into frozen dataclasses."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from traceview.errors import RulesError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA_VERSION = 1


def checked_table(entry: object, allowed: set[str], source: str, where: str) -> dict:
    """One entry of a TOML array of tables: must be a table whose keys are all ``allowed``."""
    if not isinstance(entry, dict):
        raise RulesError(source, f"{where}: expected a table")
    unknown = set(entry) - allowed
    if unknown:
        raise RulesError(source, f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    return entry


def read_toml(path: Path | None, packaged: str) -> tuple[dict, str]:
    """Reads a user TOML file, or the packaged default named ``packaged``."""
    try:
        if path is None:
            text = (resources.files("traceview.rules") / packaged).read_text(encoding="utf-8")
            source = f"<packaged {packaged}>"
        else:
            text = Path(path).read_text(encoding="utf-8")
            source = str(path)
    except FileNotFoundError:
        raise RulesError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RulesError(path, f"cannot read: {err}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise RulesError(source, f"invalid TOML: {err}") from None
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RulesError(source, f"schema_version must be {SCHEMA_VERSION}, got {version!r}")
    return data, source


def compile_regex(pattern: object, source: str, where: str) -> re.Pattern:
    if not isinstance(pattern, str) or not pattern:
        raise RulesError(source, f"{where}: expected a non-empty regex string, got {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as err:
        raise RulesError(source, f"{where}: bad regex {pattern!r}: {err}") from None


@dataclass(frozen=True)
class StepMarker:
    name: str
    regex: re.Pattern


def load_step_markers(path: Path | None = None) -> tuple[StepMarker, ...]:
    """The ordered step markers from ``steps.toml`` (or a user file)."""
    data, source = read_toml(path, "steps.toml")
    markers = data.get("marker")
    if not isinstance(markers, list) or not markers:
        raise RulesError(source, "needs at least one [[marker]] table")
    out = []
    for i, entry in enumerate(markers):
        where = f"marker #{i + 1}"
        if not isinstance(entry, dict) or "regex" not in entry:
            raise RulesError(source, f"{where}: needs a regex")
        out.append(StepMarker(str(entry.get("name", f"marker{i + 1}")), compile_regex(entry["regex"], source, where)))
    return tuple(out)
