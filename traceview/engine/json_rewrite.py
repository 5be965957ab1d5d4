"""Kineto JSON rewritten on its way into the trace processor.

Two rewrites, both on bytes cut between events (no JSON is parsed in Python):
events the processor would drop get their own threads, and for counts
(``lean``) the args and flow events the counts never read are removed.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator

# The trace processor nests "X" events per thread and DROPS one that overlaps
# another improperly. Two Kineto habits trigger that and cost real events:
# - with_stack traces put python_function events on the same thread as cpu_ops
#   and annotations, and they nest improperly with them (`profiler.py: step`
#   ends just after ProfilerStep#N begins): steps and launch calls vanish;
# - memcpy/memset events share a stream with kernels, and microsecond rounding
#   makes them overlap a neighbouring kernel by a few ns-to-us.
# Giving those categories their own thread ("py 7", "gpu_memcpy 7") keeps every
# slice the counts need; only the cosmetic nesting is lost.
_OWN_THREAD_CATEGORIES = (b"python_function", b"gpu_memcpy", b"gpu_memset", b"Memcpy", b"Memset")
_OWN_THREAD_TID = re.compile(
    rb'("cat"\s*:\s*"(' + b"|".join(_OWN_THREAD_CATEGORIES) + rb')"\s*,\s*"name"\s*:\s*"[^"\\]*(?:\\.[^"\\]*)*"\s*,\s*'
    rb'"pid"\s*:\s*(?:-?\d+|"[^"]*")\s*,\s*"tid"\s*:\s*)(-?\d+|"[^"]*")')
_PREFIX = {b"python_function": b"py "}


def _own_tid(match: re.Match) -> bytes:
    prefix = _PREFIX.get(match.group(2), match.group(2) + b" ")
    return match.group(1) + b'"' + prefix + match.group(3).strip(b'"') + b'"'


def _rewrite(data: bytes) -> bytes:
    if not any(c in data for c in _OWN_THREAD_CATEGORIES):
        return data
    return _OWN_THREAD_TID.sub(_own_tid, data)


def cut_between_events(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Re-cuts JSON chunks at their last '{', so no event's header straddles two
    (the tail is carried into the next chunk) and each piece can be rewritten alone."""
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        cut = data.rfind(b"{")
        if cut <= 0:
            carry = data
            continue
        head, carry = data[:cut], data[cut:]
        yield head
    if carry:
        yield carry


def separate_nonnesting_events(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Streams JSON chunks with python_function/memcpy/memset events moved to their own threads."""
    return (_rewrite(piece) for piece in cut_between_events(chunks))


# Lean loading for counts: the args the counts never read, and flow events,
# dropped before the processor stores them. Args are most of its memory on
# Kineto traces (each array element is one arg row). The counts keep
# correlation, device, stream and Input type; the rest goes. Each pattern
# starts with a literal key (so the scan between matches runs at memchr speed)
# and only removes complete, comma-terminated items, so JSON it does not
# recognise is left alone, never cut in half. On the 100 MB benchmark trace,
# against dropping only shapes and flows: the processor's heap 240 -> 143 MiB,
# its CPU 1.52 -> 0.80 s, for 0.46 s more regex.
_STR = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_NUM = rb'-?[0-9][0-9.eE+-]*+'
_ARRAY = rb'\[(?:[^\[\]"]++|' + _STR + rb'|\[(?:[^\[\]"]++|' + _STR + rb')*+\])*+\]'
_VALUE = rb'(?:' + _NUM + rb'|' + _STR + rb'|' + _ARRAY + rb'|true|false|null)'
# Most frequent first: an alternation is tried in order.
_UNUSED_KEYS = (b"Input Strides", b"Input Dims", b"Ev Idx", b"Record function id", b"Concrete Inputs", b"cbid",
                b"queued", b"External id", b"Fwd thread id", b"Sequence number", b"context",
                b"registers per thread", b"shared memory", b"blocks per SM", b"warps per SM", b"grid", b"block")
_UNUSED_KEY_NAMES = b"|".join(re.escape(k) for k in _UNUSED_KEYS)
_UNUSED_ITEMS = rb'(?:"(?:' + _UNUSED_KEY_NAMES + rb')"\s*+:\s*+' + _VALUE + rb'\s*+,\s*+)*+'
# Where runs of unused args start in Kineto's layouts (2021-2025): an event's
# first arg, the CUDA kernel occupancy block, and after a cpu_op's Input type.
_UNUSED_RUNS = [
    re.compile(rb'"External id"\s*+:\s*+' + _NUM + rb'\s*+,\s*+' + _UNUSED_ITEMS),
    re.compile(rb'"registers per thread"\s*+:\s*+' + _NUM + rb'\s*+,\s*+' + _UNUSED_ITEMS),
]
# After Input type: either the object's remaining items are all unused (the
# last one, with no comma, goes too) or a run of unused items ends at a kept one.
_AFTER_INPUT_TYPE = re.compile(
    rb'("Input type"\s*+:\s*+' + _ARRAY + rb')(?:\s*+,\s*+' + _UNUSED_ITEMS + rb'"(?:' + _UNUSED_KEY_NAMES
    + rb')"\s*+:\s*+' + _VALUE + rb'(?=\s*+\})|(\s*+,\s*+)' + _UNUSED_ITEMS + rb')')
_FLOW_EVENT = re.compile(rb'\{\s*"ph"\s*:\s*"[sft]"[^{}"]*(?:"[^"]*"[^{}"]*)*\}\s*,\s*')


def _keep_input_type(match: re.Match) -> bytes:
    comma = match.group(2)  # present when a kept item follows
    return match.group(1) + comma if comma else match.group(1)


def _drop_unused(chunk: bytes) -> bytes:
    for pattern in _UNUSED_RUNS:
        chunk = pattern.sub(b"", chunk)
    chunk = _AFTER_INPUT_TYPE.sub(_keep_input_type, chunk) if b'"Input type"' in chunk else chunk
    return _FLOW_EVENT.sub(b"", chunk) if b'"ph": "s"' in chunk or b'"ph": "f"' in chunk else chunk


def drop_unused(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Removes the args the counts never read, and flow events (chunks must be cut between events)."""
    return (_drop_unused(chunk) for chunk in chunks)


def rewrite_json(chunks: Iterable[bytes], lean: bool) -> Iterator[bytes]:
    """Streams a Kineto JSON trace rewritten for the processor: events that would be dropped
    moved to their own threads, and with ``lean`` the unused args and flow events removed."""
    for piece in cut_between_events(chunks):
        piece = _rewrite(piece)
        yield _drop_unused(piece) if lean else piece
