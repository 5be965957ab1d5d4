"""One function on every trace processor of a sharded load at once.

Apart from api.py so that the model's modules import it without the loaders behind a load.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def on_shards(fn: Callable[[T], R], shards: Sequence[T]) -> list[R]:
    """``fn`` on every processor at once (a query into wasm releases the GIL); results in shard order."""
    if len(shards) == 1:
        return [fn(shards[0])]
    with ThreadPoolExecutor(len(shards), thread_name_prefix="traceview-shard") as pool:
        return list(pool.map(fn, shards))
