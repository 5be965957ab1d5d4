"""``manifest.json``: what produced a set of traces (versions, GPU, environment, command, time)."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

# Environment variables that change what a trace contains (kernels picked, ranks, profiler).
ENV_PREFIXES = ("VLLM_", "HIP_", "ROCR_", "HSA_", "ROCM_", "CUDA_", "NCCL_", "RCCL_", "TORCH_",
                "PYTORCH_", "TRITON_", "AITER_", "KINETO_", "OMP_")
ENV_EXACT = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",
             "LD_PRELOAD")


def relevant_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of ``env`` (default os.environ) named in ENV_PREFIXES / ENV_EXACT, sorted."""
    env = os.environ if env is None else env
    keep = {k: v for k, v in env.items() if k in ENV_EXACT or k.startswith(ENV_PREFIXES)}
    return dict(sorted(keep.items()))


def _package_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def software_facts() -> dict[str, Any]:
    """Versions of python, torch (CUDA or HIP build), triton, vllm, and the GPU seen by torch.

    Missing packages give None; torch is imported only if installed.
    """
    facts: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                             "torch": None, "cuda": None, "hip": None, "triton": _package_version("triton"),
                             "vllm": _package_version("vllm"), "gpu": None, "gpu_count": 0,
                             "nvidia_driver": None}
    try:
        import torch
    except ImportError:
        return facts
    facts["torch"] = torch.__version__
    facts["cuda"] = getattr(torch.version, "cuda", None)
    facts["hip"] = getattr(torch.version, "hip", None)
    if torch.cuda.is_available():
        facts["gpu_count"] = torch.cuda.device_count()
        facts["gpu"] = torch.cuda.get_device_name(0)
        if facts["cuda"]:
            facts["nvidia_driver"] = _nvidia_driver()
    return facts


def build_manifest(run: Mapping[str, Any], command: Sequence[str] | None = None,
                   env: Mapping[str, str] | None = None, software: Mapping[str, Any] | None = None,
                   traces: Sequence[Path] = ()) -> dict[str, Any]:
    """The manifest dict: ``run`` (model, TP, ...), software facts, relevant env, command, UTC time.

    ``command`` defaults to this process's argv; ``software`` to ``software_facts()``.
    """
    argv = list(sys.argv if command is None else command)
    return {
        "schema_version": 1,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run": dict(run),
        "software": dict(software_facts() if software is None else software),
        "env": relevant_env(env),
        "command": argv,
        "command_line": shlex.join(argv),
        "traces": [str(p) for p in traces],
    }


def write_manifest(out_dir: str | Path, manifest: Mapping[str, Any], name: str = "manifest.json") -> Path:
    """Writes ``manifest`` as indented JSON to ``out_dir/name`` via temp file + rename."""
    dest = Path(out_dir) / name
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2, sort_keys=False)
            fh.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest
