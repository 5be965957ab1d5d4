"""Finding the step function that ``traceview collect torch`` profiles.

SCRIPT is either a Python file that defines ``step()`` (``work.py``, or ``work.py:decode_step``
for another function name) or an importable ``module:function`` (``mypkg.bench:step``).
The file or module runs once when loaded, so it can build its model and inputs at top level.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable

from traceview.collectors.errors import CollectError

DEFAULT_FUNCTION = "step"


def split_spec(spec: str) -> tuple[str, str]:
    """``"a/b.py:fn"`` -> ``("a/b.py", "fn")``; no colon -> the default function name ``step``."""
    target, sep, function = spec.rpartition(":")
    if not sep or not target or "/" in function or function.endswith(".py"):
        return spec, DEFAULT_FUNCTION
    return target, function


def _load_file(path: Path) -> Any:
    name = f"_traceview_collect_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise CollectError(path, "not a Python file that can be imported")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    sys.path.insert(0, str(path.parent))  # let the script import its neighbours
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(name, None)
        raise CollectError(path, f"failed while loading: {type(err).__name__}: {err}") from err
    finally:
        sys.path.remove(str(path.parent))
    return module


def load_step_function(spec: str) -> Callable[[], Any]:
    """Returns the zero-argument callable named by ``spec`` (see module docstring)."""
    target, function = split_spec(spec)
    path = Path(target)
    if path.suffix == ".py" or path.exists():
        if not path.is_file():
            raise CollectError(path, "script not found")
        module = _load_file(path)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as err:
            raise CollectError(target, f"not a file and not an importable module ({err})") from err
    fn = getattr(module, function, None)
    if not callable(fn):
        raise CollectError(target, f"defines no {function}() function")
    return fn
