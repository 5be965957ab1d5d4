"""Content-addressed cache of per-trace launch counts.

``cached_analyze`` is ``model.counts.analyze`` that remembers its answer. The key
is a SHA-256 over everything the answer depends on:

- the trace's bytes (of every file, for a rocprofv3 output directory; SHA-256
  streamed in 1 MiB blocks: ~1.7 GB/s here, so hashing costs well under a
  tenth of loading; size+mtime would be cheaper but
  a copy that keeps mtime, or a rewrite within the mtime granularity, would
  then return another trace's counts). A file's digest is remembered under
  ``<root>/digests/`` with the file's identity (device, inode, size, mtime and
  ctime in ns), so a second run over an unchanged 1 GB trace skips the 0.6 s
  of hashing; a copy, rewrite or touch changes the identity and hashes again;
- the rules file's bytes (``--rules``), the ``--step-marker`` regex and the
  ``frames_from`` path prefixes;
- the traceview version and the bytes of its engine/model code, SQL and
  packaged TOML (an editable install keeps its version string while the code
  changes), and the trace processor that would run (wasm bundle version, or
  the native binary's path, size and mtime) with its EngineConfig settings.

An entry is a directory ``<root>/counts/<key[:2]>/<key>/`` holding
``steps.arrow``, ``launches.arrow``, ``step_candidates.arrow`` (Arrow IPC files,
"Feather v2": read back without decoding, 4-5× faster than parquet, which a warm
re-diff felt twice) and ``meta.json`` (the LaunchCounts' other fields). It is
built in a temporary sibling directory and renamed into place, so readers see a
whole entry or none; when two processes race on one key the first rename wins
and the other drops its copy. An entry that fails to read is moved aside,
deleted and written again.

Root: ``$TRACEVIEW_CACHE_DIR``, else ``$XDG_CACHE_HOME/traceview``, else
``~/.cache/traceview`` (the compiled wasm module lives in ``wasm/`` there).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.feather as feather

import traceview
from traceview.engine import EngineConfig
from traceview.engine.formats import ProgressFn, cache_root, file_sha256
from traceview.model.counts import LaunchCounts, analyze

FORMAT_VERSION = 4  # bump when the entry layout changes (3: the launches' source ``frame``; 4: Arrow IPC files)
_FRAMES = ("steps", "launches", "step_candidates")
RECENT_WRITE_NS = 2_000_000_000  # files changed more recently than this are hashed every time
# What a damaged entry raises while being read: Arrow errors, bad JSON, missing fields.
_READ_ERRORS = (OSError, ValueError, KeyError, TypeError, pa.ArrowException)


def counts_dir(root: Path | None = None) -> Path:
    return (root or cache_root()) / "counts"


def wasm_dir(root: Path | None = None) -> Path:
    """Where the compiled wasm trace processor is kept (EngineConfig.cache_dir)."""
    return (root or cache_root()) / "wasm"


def digests_dir(root: Path | None = None) -> Path:
    return (root or cache_root()) / "digests"


def _identity(stat: os.stat_result) -> list[int]:
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def _file_digest(file: Path) -> str:
    """SHA-256 of ``file``'s bytes, remembered under the file's identity (see the module docstring)."""
    before = file.stat()
    memo = digests_dir() / f"{hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:32]}.json"
    try:
        saved = json.loads(memo.read_text(encoding="utf-8"))
        if saved["identity"] == _identity(before):
            return str(saved["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    value = file_sha256(file)
    # Timestamps tick coarsely (ext4: milliseconds), so a file written just now could be written
    # again within the same tick without changing its identity: remember only settled files.
    settled = time.time_ns() - max(before.st_mtime_ns, before.st_ctime_ns) > RECENT_WRITE_NS
    if settled and _identity(file.stat()) == _identity(before):
        record = {"path": str(file), "identity": _identity(before), "sha256": value}
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(record), encoding="utf-8")
            tmp.replace(memo)
        except OSError:
            pass  # an unwritable cache only costs the hashing next time
    return value


def _content_digest(path: Path) -> str:
    """SHA-256 of a trace file's bytes; for a trace directory (a rocprofv3 output), of every file's
    relative name and bytes, in name order."""
    if not path.is_dir():
        return _file_digest(path)
    digest = hashlib.sha256()
    for file in sorted(f for f in path.rglob("*") if f.is_file()):
        digest.update(str(file.relative_to(path)).encode() + b"\0" + _file_digest(file).encode() + b"\0")
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of traceview's engine/model code, SQL and packaged rules, plus the versions it runs on."""
    from importlib.metadata import PackageNotFoundError, version

    package = Path(traceview.__file__).resolve().parent
    digest = hashlib.sha256(f"traceview {traceview.__version__} cache {FORMAT_VERSION}".encode())
    for sub in ("engine", "model", "rules"):
        for file in sorted((package / sub).rglob("*")):
            if file.suffix in (".py", ".sql", ".toml") and file.is_file():
                digest.update(str(file.relative_to(package)).encode() + b"\0" + file.read_bytes() + b"\0")
    for dist in ("perfetto", "viztracer", "pandas", "pyarrow"):
        try:
            digest.update(f"{dist}=={version(dist)}".encode())
        except PackageNotFoundError:
            digest.update(f"{dist} absent".encode())
    return digest.hexdigest()


def _engine_fingerprint(config: EngineConfig | None) -> str:
    """Which trace processor would parse the trace: a native binary (path, size, mtime) or the wasm bundle."""
    from traceview.engine.config import bundled_ui_dir, resolve_shell

    config = config or EngineConfig()
    # Every setting except those that cannot change the answer: where the compiled module lives,
    # which wasm build runs, how many processes decode.
    settings = json.dumps({f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                           if f.name not in ("cache_dir", "memory64", "tp_bin", "workers", "shards")}, sort_keys=True,
                          default=str)
    binary = resolve_shell(config)
    if binary is not None:
        stat = Path(binary).stat()
        return f"native:{Path(binary).resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{settings}"
    return f"wasm:{bundled_ui_dir().name}:{settings}"


def cache_key(path: Path, step_marker: str | None, rules_path: Path | None,
              config: EngineConfig | None = None, frames_from: Sequence[str] | None = None) -> str:
    """Hex SHA-256 naming the entry for these inputs. Raises OSError if a file cannot be read."""
    rules = Path(rules_path).read_bytes() if rules_path is not None else b"<packaged>"
    # The interpreter's exact version too: a CPython bug once changed answers between patch releases.
    parts = [code_fingerprint(), sys.version, _engine_fingerprint(config), _content_digest(Path(path)),
             hashlib.sha256(rules).hexdigest(), json.dumps(step_marker),
             json.dumps(None if frames_from is None else list(frames_from))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def entry_dir(key: str, root: Path | None = None) -> Path:
    return counts_dir(root) / key[:2] / key


def load_entry(key: str, path: str, root: Path | None = None) -> LaunchCounts | None:
    """The cached counts for ``key`` (with ``path`` as their path), or None when absent or unreadable.

    An unreadable entry is removed so the next store can replace it.
    """
    where = entry_dir(key, root)
    if not where.is_dir():
        return None
    try:
        meta = json.loads((where / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError("entry written by another cache format")
        fields = {f.name: meta["fields"][f.name] for f in dataclasses.fields(LaunchCounts) if f.name not in _FRAMES}
        frames = {name: feather.read_feather(where / f"{name}.arrow") for name in _FRAMES}
        return LaunchCounts(**{**fields, **frames, "path": path})
    except _READ_ERRORS:
        _discard(where)
        return None


def _discard(where: Path) -> None:
    """Moves an entry out of the way first (readers never see half of it), then deletes it."""
    trash = where.parent / f".trash-{where.name}-{os.getpid()}-{time.monotonic_ns()}"
    try:
        os.rename(where, trash)
    except OSError:
        return  # another process already moved or replaced it
    shutil.rmtree(trash, ignore_errors=True)


def store_entry(key: str, counts: LaunchCounts, root: Path | None = None) -> bool:
    """Writes ``counts`` under ``key`` atomically; False when it could not be written or another process won.

    Failing to write is not an error: the cache only saves time, the counts are already computed.
    """
    final = entry_dir(key, root)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key[:16]}-", dir=final.parent))
    except OSError:
        return False
    try:
        for name in _FRAMES:
            feather.write_feather(getattr(counts, name), tmp / f"{name}.arrow")
        fields = {f.name: getattr(counts, f.name) for f in dataclasses.fields(counts) if f.name not in _FRAMES}
        meta = {"format": FORMAT_VERSION, "traceview": traceview.__version__, "key": key,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "fields": fields}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        os.rename(tmp, final)  # fails if `final` exists: the first complete entry wins
        return True
    except (OSError, ValueError, TypeError, pa.ArrowException):
        # ValueError/ArrowException: a column pyarrow cannot encode (mixed types from an odd trace).
        shutil.rmtree(tmp, ignore_errors=True)
        return False


def cached_analyze(path: str | Path, step_marker: str | None = None, rules_path: Path | None = None,
                   config: EngineConfig | None = None, on_progress: ProgressFn | None = None,
                   use_cache: bool = True, *, frames_from: Sequence[str] | None = None) -> LaunchCounts:
    """``analyze(path, ...)`` served from the cache when the same inputs were counted before.

    Returns the same LaunchCounts ``analyze`` returns (``path`` is the path given
    now, even when the entry was written for a copy elsewhere). Errors come from
    ``analyze`` itself: a missing trace or rules file bypasses the cache.
    """
    if not use_cache:
        return analyze(path, step_marker, rules_path, config, on_progress, frames_from=frames_from)
    try:
        key = cache_key(Path(path), step_marker, rules_path, config, frames_from)
    except OSError:  # analyze raises the proper TraceviewError
        return analyze(path, step_marker, rules_path, config, on_progress, frames_from=frames_from)
    hit = load_entry(key, str(Path(path)))
    if hit is not None:
        if on_progress is not None:
            size = _tree_size(Path(path)) if Path(path).is_dir() else Path(path).stat().st_size
            on_progress(size, size)
        return hit
    counts = analyze(path, step_marker, rules_path, config, on_progress, frames_from=frames_from)
    store_entry(key, counts)
    return counts


@dataclass(frozen=True)
class CacheInfo:
    """What ``traceview cache info`` shows. Sizes in bytes."""

    location: str
    entries: int
    size_bytes: int
    wasm_modules: int
    wasm_size_bytes: int


def _tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def cache_info(root: Path | None = None) -> CacheInfo:
    """Counts entries and their size, plus the compiled wasm modules, under ``root``."""
    root = root or cache_root()
    entries = [d for d in counts_dir(root).glob("??/*") if d.is_dir() and not d.name.startswith(".")]
    wasm = [f for f in wasm_dir(root).glob("*.cwasm") if f.is_file()]
    return CacheInfo(str(root), len(entries), _tree_size(counts_dir(root)), len(wasm),
                     sum(f.stat().st_size for f in wasm))


def clear_cache(root: Path | None = None, include_wasm: bool = False) -> int:
    """Deletes every counts entry (and the compiled wasm modules if asked); returns the bytes freed."""
    root = root or cache_root()
    freed = _tree_size(counts_dir(root)) + _tree_size(digests_dir(root))
    for where in (counts_dir(root), digests_dir(root)):
        if where.is_dir():
            _discard(where)
    if include_wasm:
        for module in wasm_dir(root).glob("*.cwasm"):
            freed += module.stat().st_size
            module.unlink(missing_ok=True)
    return freed
