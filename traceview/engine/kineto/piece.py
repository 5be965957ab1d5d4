"""One piece of a ``traceEvents`` array, decoded: runs in worker processes.

A piece is a run of whole events cut from the array (``split.py``). Decoding
turns it into columns the loader's global pass needs (kind, track, exact
times, correlation) and into the JSON each kept event will be fed to the trace
processor as, already canonical: compact, ``ts``/``dur`` exact decimals of
microseconds relative to the load's time base, ``pid``/``tid`` normalised, and
``"tid"`` last so that an event moved to an overlap lane is re-targeted by
cutting one suffix.

Nothing here depends on the layout of the input JSON (key order, spacing,
escapes): msgspec parses it, and every value we do not interpret is copied as
the exact bytes it had (``msgspec.Raw``).
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
from msgspec import Raw

from traceview.engine.kineto.kinds import ANNOTATION, CATEGORY_KIND, CPU_OP, GPU_KINDS, LAUNCH, OTHER

ABSENT = Raw(b"")
_X, _M = "X", "M"


class _Event(msgspec.Struct, gc=False):
    """The keys of a Chrome trace event. Values we copy stay raw JSON text."""

    ph: str = ""
    cat: str = ""
    name: Raw = ABSENT
    pid: int | str = 0
    tid: int | str = 0
    ts: Raw = ABSENT
    dur: Raw = ABSENT
    args: Raw = ABSENT
    # Rarely present; copied when an event is passed through whole.
    id: Raw = ABSENT
    id2: Raw = ABSENT
    bp: Raw = ABSENT
    s: Raw = ABSENT
    cname: Raw = ABSENT
    tts: Raw = ABSENT
    tdur: Raw = ABSENT
    bind_id: Raw = ABSENT
    flow_in: Raw = ABSENT
    flow_out: Raw = ABSENT
    sf: Raw = ABSENT
    stack: Raw = ABSENT


class _CountArgs(msgspec.Struct, gc=False):
    """The args the counts read: the launch/GPU link, the GPU's device and stream, an op's dtypes."""

    correlation: Raw = ABSENT
    device: Raw = ABSENT
    stream: Raw = ABSENT
    input_type: Raw = msgspec.field(default=ABSENT, name="Input type")
    # What "M" (metadata) events carry: process/thread names, labels, sort order.
    name: Raw = ABSENT
    labels: Raw = ABSENT
    sort_index: Raw = ABSENT


class _LeanEvent(msgspec.Struct, gc=False):
    """What a lean load reads of an event: its args decoded in the same pass."""

    ph: str = ""
    cat: str = ""
    name: Raw = ABSENT
    pid: int | str = 0
    tid: int | str = 0
    ts: Raw = ABSENT
    dur: Raw = ABSENT
    args: _CountArgs | None = None


_EXTRA_KEYS = ("id", "id2", "bp", "s", "cname", "tts", "tdur", "bind_id", "flow_in", "flow_out", "sf", "stack")


_EVENTS = {False: msgspec.json.Decoder(list[_Event]), True: msgspec.json.Decoder(list[_LeanEvent])}
_ONE_EVENT = {False: msgspec.json.Decoder(_Event), True: msgspec.json.Decoder(_LeanEvent)}
_RAW_LIST = msgspec.json.Decoder(list[Raw])
_ARGS = msgspec.json.Decoder(_CountArgs)
_encode = msgspec.json.encode
_ARGS_READ = frozenset({*GPU_KINDS, LAUNCH, CPU_OP})
_NO_MIN, _NO_MAX = 1 << 126, -(1 << 126)
_FRAG = b'{"ph":"X","cat":%s,"name":%s,"pid":%s,"ts":%s%d.%03d,"dur":%d.%03d%s,"tid":%s},'


class PieceError(Exception):
    """The piece is not a JSON array of whole events (the cut was not between events)."""


@dataclass(frozen=True)
class PieceOptions:
    """How to decode: picklable, the same for every piece of one load."""

    base_ns: int  # subtracted from every timestamp (see pipeline.time_base)
    lean: bool  # keep only what launch counts read (pipeline docstring)
    keep_names: str | None = None  # regex: non-GPU events whose name matches are kept even when lean


@dataclass
class Piece:
    """A decoded piece. Complete ("X") events are columns; ``frag`` holds their
    canonical JSON back to back, each ending ``"tid":<tid>},`` (``frag_end[i]``
    is where event i's text ends). Columns are ``array.array`` as decoded (the
    decoding processes do without numpy) and numpy arrays after ``as_numpy``."""

    kind: Any  # int8, kinds.py
    track: Any  # int32, index into ``tracks``
    ts: Any  # int64 ns, absolute (before the base is subtracted)
    dur: Any  # int64 ns
    corr: Any  # int64 correlation id, -1 when none
    named: Any  # bool: the name matched PieceOptions.keep_names
    frag: bytes
    frag_end: Any  # int64
    tracks: list[tuple[int | str, int | str]]  # normalised (pid, tid)
    passthrough: list[tuple[bytes, tuple]]  # other events: (canonical JSON, (pid, tid)), in file order
    metadata: list[tuple[str, int | str, int | str, object]]  # "M" events: (name, pid, tid, args)
    counts: dict[str, int] = field(default_factory=dict)
    min_ts: int | None = None
    max_ts: int | None = None

    def as_numpy(self) -> "Piece":
        """The columns as numpy arrays (views of the decoded buffers, no copy)."""
        import numpy as np

        for name, dtype in _COLUMNS.items():
            column = getattr(self, name)
            if not isinstance(column, np.ndarray):
                setattr(self, name, np.frombuffer(column, dtype=dtype) if len(column) else np.zeros(0, dtype))
        return self

    def drop_columns(self) -> None:
        """Frees the columns once planned: writing the JSON needs only ``frag`` and ``frag_end``."""
        self.track = self.ts = self.dur = self.corr = self.named = None


_COLUMNS = {"kind": "int8", "track": "int32", "ts": "int64", "dur": "int64", "corr": "int64", "named": "bool",
            "frag_end": "int64"}
_INT64 = 1 << 62  # times and ids beyond this are not numbers a profiler wrote


_SCALE = (1000, 100, 10, 1)  # ns per unit of the last digit, by the number of decimals


def to_ns(raw: Raw | bytes) -> int | None:
    """A JSON number of microseconds (or a string holding one) as exact integer ns,
    rounded half to even below 1 ns; None when it is not a number."""
    text = bytes(raw)
    if b"e" not in text and b"E" not in text and text[:1] != b'"':
        dot = text.find(b".")
        try:
            if dot < 0:
                return int(text) * 1000
            decimals = len(text) - dot - 1
            if decimals <= 3:  # Kineto: "1712195495505582.988"
                return int(text[:dot] + text[dot + 1:]) * _SCALE[decimals]
        except ValueError:
            pass
    return _to_ns_slow(text)


# Kineto writes every ts/dur of a trace the same way: microseconds with three decimals (or, in
# older traces such as 2021's, whole microseconds). Checked for a whole piece at once, they parse as one list.
_THREE_DECIMALS = re.compile(rb"(?:-?[0-9]+\.[0-9]{3},)*-?[0-9]+\.[0-9]{3}")
_WHOLE = re.compile(rb"(?:-?[0-9]+,)*-?[0-9]+")


def _many_ns(raws: list) -> list[int] | None:
    """``to_ns`` of every value when all have one of Kineto's forms; None when any has not."""
    joined = b",".join(raws)
    if raws and _THREE_DECIMALS.fullmatch(joined):
        return _split_ints(joined.replace(b".", b""))
    values = _many_ints(raws)
    return None if values is None else [value * 1000 for value in values]


def _many_ints(raws: list) -> list[int] | None:
    """Every value as an int when all are JSON integers; None when any is not."""
    if not raws:
        return []
    joined = b",".join(raws)
    return _split_ints(joined) if _WHOLE.fullmatch(joined) else None


def _split_ints(joined: bytes) -> list[int] | None:
    try:
        return list(map(int, joined.split(b",")))
    except ValueError:  # more digits than int() takes: the value-by-value route says what it is
        return None


def _to_ns_slow(text: bytes) -> int | None:
    text = text.strip()
    if text[:1] == b'"' and text[-1:] == b'"':
        text = text[1:-1].strip()
    try:
        value = Decimal(text.decode("ascii")) * 1000
    except (InvalidOperation, UnicodeDecodeError, ValueError):
        return None
    if not value.is_finite():
        return None
    return int(value.to_integral_value())


def us_text(ns: int) -> bytes:
    """Integer ns as an exact decimal of microseconds, e.g. ``1234.500``."""
    if ns < 0:
        return b"-%d.%03d" % divmod(-ns, 1000)
    return b"%d.%03d" % divmod(ns, 1000)


def id_text(value: int | str) -> bytes:
    return b"%d" % value if isinstance(value, int) else _encode(value)


def _normal_id(value: int | str) -> int | str:
    """A pid/tid: a string of digits is the number it spells (Kineto 2021 wrote
    ``"tid": "25738"`` beside numeric ones for the same thread)."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.isdigit():
            return int(stripped)
    return value


def _corr(raw: Raw) -> int:
    if not len(raw):
        return -1
    try:
        value = int(raw)
    except (ValueError, TypeError):
        text = bytes(raw).strip(b'" ')
        value = int(text) if text.isdigit() else -1
    return value if -1 <= value < _INT64 else -1


def _args_corr(args: Raw) -> int:
    """The correlation id in a raw ``args`` object, -1 when none."""
    try:
        return _corr(_ARGS.decode(args).correlation)
    except msgspec.DecodeError:
        return -1


def _loads(raw: Raw | bytes, default: object) -> object:
    """A Raw value as Python (it was valid JSON when decoded; only depth can fail)."""
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return default


def _metadata_args(args: Raw | _CountArgs | None) -> dict:
    if isinstance(args, _CountArgs):
        return {key: _loads(value, None) for key in ("name", "labels", "sort_index")
                if len(value := getattr(args, key))}
    value = _loads(args, {}) if args is not None and len(args) else {}
    return value if isinstance(value, dict) else {}


def _decode_events(data: bytes, lean: bool) -> tuple[list, int]:
    """The piece's events; elements that are not event objects are skipped and counted."""
    body = b"[" + data + b"]"
    try:
        return _EVENTS[lean].decode(body), 0
    except msgspec.ValidationError:
        pass  # valid JSON, but some element is not an event object: sort them out one by one
    except msgspec.DecodeError as err:
        raise PieceError(str(err)) from None
    except RecursionError:
        raise PieceError("values nested too deeply to decode") from None
    try:
        raws = _RAW_LIST.decode(body)
    except msgspec.DecodeError as err:
        raise PieceError(str(err)) from None
    except RecursionError:
        raise PieceError("values nested too deeply to decode") from None
    events, bad = [], 0
    for raw in raws:
        try:
            events.append(_ONE_EVENT[lean].decode(raw))
        except (msgspec.DecodeError, RecursionError):
            bad += 1
    return events, bad


class _Writer:
    """Builds a Piece from decoded events (one instance per piece)."""

    def __init__(self, options: PieceOptions) -> None:
        self.options = options
        self.keep = re.compile(options.keep_names) if options.keep_names else None
        self.kind: list[int] = []
        self.track: list[int] = []
        self.ts: list[int] = []
        self.dur: list[int] = []
        self.corr: list[int] = []
        self.named: list[bool] = []
        self.frags: list[bytes] = []
        self.track_of: dict[tuple, int] = {}
        self.tracks: list[tuple] = []
        self.track_text: list[tuple[bytes, bytes]] = []
        self.cat_text: dict[str, bytes] = {}
        self.name_kept: dict[bytes, bool] = {}
        self.passthrough: list[bytes] = []
        self.metadata: list[tuple] = []
        self.counts: dict[str, int] = {}
        self.base_ns = options.base_ns
        self.min_ts = _NO_MIN
        self.max_ts = _NO_MAX

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def track_id(self, pid: int | str, tid: int | str) -> int:
        key = (pid, tid)
        found = self.track_of.get(key)
        if found is None:
            pid, tid = _normal_id(pid), _normal_id(tid)
            found = self.track_of[key] = len(self.tracks)
            self.tracks.append((pid, tid))
            self.track_text.append((id_text(pid), id_text(tid)))
        return found

    def not_complete(self, kind: int, n: int = 1) -> None:
        """Counts events of ``kind`` that are not "X": for a GPU kind, GPU work that is not one slice."""
        if kind in GPU_KINDS:
            self.count(f"gpu_not_complete:{kind}", n)

    def seen_ts(self, ts: int) -> None:
        self.min_ts = min(self.min_ts, ts)
        self.max_ts = max(self.max_ts, ts)

    def is_named(self, name: Raw) -> bool:
        if self.keep is None or not len(name):
            return False
        key = bytes(name)
        hit = self.name_kept.get(key)
        if hit is None:
            text = _loads(key, None)
            hit = self.name_kept[key] = isinstance(text, str) and self.keep.search(text) is not None
        return hit

    def complete_all(self, events: list) -> None:
        """Adds the "X" events of the piece, column by column: one list comprehension per
        column instead of one method call per event (the decoding's hot loop)."""
        kinds = [CATEGORY_KIND.get(e.cat, OTHER) for e in events]
        ts = _many_ns([e.ts for e in events])
        if ts is None or min(ts, default=0) <= -_INT64 or max(ts, default=0) >= _INT64:
            ts = [to_ns(e.ts) for e in events]
            valid = [t is not None and -_INT64 < t < _INT64 for t in ts]
            for kind, ok in zip(kinds, valid):
                if not ok:
                    self.count(f"no_ts:{kind}")  # nowhere to put it: counted, and reported by the ledger
            events, kinds, ts = ([x for x, ok in zip(column, valid) if ok] for column in (events, kinds, ts))
        if not events:
            return
        dur = _many_ns([e.dur for e in events])
        if dur is None or min(dur) < 0 or max(dur) >= _INT64:
            dur = [to_ns(e.dur) if len(e.dur) else None for e in events]
            for i, (kind, d) in enumerate(zip(kinds, dur)):
                if d is None or not 0 <= d < _INT64:
                    # The processor drops an "X" without a duration and keeps a negative one as is;
                    # either way a launch would go uncounted. It loads as a point in time.
                    self.count(f"dur_zeroed:{kind}")
                    dur[i] = 0
        self.min_ts, self.max_ts = min(self.min_ts, min(ts)), max(self.max_ts, max(ts))
        known = self.track_of.get
        tracks = [t if (t := known(key)) is not None else self.track_id(*key)
                  for key in [(e.pid, e.tid) for e in events]]
        corr, args = self.lean_args_all(kinds, events) if self.options.lean else self.full_args_all(kinds, events)
        cat_text = self.cat_text
        for cat in {e.cat for e in events} - cat_text.keys():
            cat_text[cat] = _encode(cat)
        texts, base = self.track_text, self.base_ns
        self.frags += [_FRAG % (cat_text[e.cat], e.name if len(e.name) else b'""', texts[t][0],
                                b"-" if rel < 0 else b"", *divmod(abs(rel), 1000), *divmod(d, 1000), a, texts[t][1])
                       for e, t, rel, d, a in zip(events, tracks, [value - base for value in ts], dur, args)]
        self.kind += kinds
        self.track += tracks
        self.ts += ts
        self.dur += dur
        self.corr += corr
        if self.keep is None:
            self.named += [False] * len(events)
        else:
            self.named += [kind not in GPU_KINDS and self.is_named(e.name) for kind, e in zip(kinds, events)]

    def lean_args_all(self, kinds: list[int], events: list) -> tuple[list[int], list[bytes]]:
        """Correlation ids, and the args text a lean load feeds, of each event."""
        read = [kind in _ARGS_READ and e.args is not None for kind, e in zip(kinds, events)]
        corr = _many_ints([e.args.correlation if r and len(e.args.correlation) else b"-1"
                           for r, e in zip(read, events)])
        if corr is None or min(corr) < -1 or max(corr) >= _INT64:
            corr = [_corr(e.args.correlation) if r else -1 for r, e in zip(read, events)]
        # A launch call (most events) carries only its id: its text without a call.
        args = [(b',"args":{"correlation":%d}' % c if c >= 0 else b"") if kind == LAUNCH else
                self.lean_args(kind, c, e.args) if r else b""
                for r, kind, c, e in zip(read, kinds, corr, events)]
        return corr, args

    def full_args_all(self, kinds: list[int], events: list) -> tuple[list[int], list[bytes]]:
        """Correlation ids of GPU events and launch calls; every event's args and rarer keys, copied."""
        corr = [_args_corr(e.args) if len(e.args) and (kind in GPU_KINDS or kind == LAUNCH) else -1
                for kind, e in zip(kinds, events)]
        args = [(b',"args":%s' % (e.args,) if len(e.args) else b"") + self.extra_keys(e) for e in events]
        return corr, args

    @staticmethod
    def lean_args(kind: int, corr: int, a: _CountArgs) -> bytes:
        """The args text of an op (its dtypes) or a GPU event (its id, device and stream); a launch
        call's is written in ``lean_args_all``."""
        if kind == CPU_OP:
            return b',"args":{"Input type":%s}' % (a.input_type,) if len(a.input_type) else b""
        items = [] if corr < 0 else [b'"correlation":%d' % corr]
        items += [b'"%s":%s' % (key, value) for key, value in ((b"device", a.device), (b"stream", a.stream))
                  if len(value)]
        return b',"args":{%s}' % b",".join(items) if items else b""

    @staticmethod
    def extra_keys(e: _Event) -> bytes:
        parts = [b',"%s":%s' % (key.encode(), value) for key in _EXTRA_KEYS if len(value := getattr(e, key))]
        return b"".join(parts)

    def other(self, e: _Event) -> None:
        """A metadata event, or (full loads only: decode_piece counts the rest of a lean load's) a
        flow, instant or counter, passed through."""
        self.not_complete(CATEGORY_KIND.get(e.cat, OTHER))
        if e.ph == _M:  # re-written by the loader, with the ids the processor will see
            pid, tid = _normal_id(e.pid), _normal_id(e.tid)
            name = _loads(e.name, "") if len(e.name) else ""
            self.metadata.append((name, pid, tid, _metadata_args(e.args)))
            return
        ts = to_ns(e.ts) if len(e.ts) else None
        if ts is not None and not -_INT64 < ts < _INT64:
            ts = None
        if ts is not None:
            self.seen_ts(ts)
        parts = [b'{"ph":%s' % _encode(e.ph)]
        if e.cat:
            parts.append(b',"cat":%s' % _encode(e.cat))
        if len(e.name):
            parts.append(b',"name":%s' % (e.name,))
        parts.append(b',"pid":%s,"tid":%s' % (id_text(_normal_id(e.pid)), id_text(_normal_id(e.tid))))
        if ts is not None:
            parts.append(b',"ts":%s' % us_text(ts - self.options.base_ns))
        dur = to_ns(e.dur) if len(e.dur) else None
        if dur is not None:
            parts.append(b',"dur":%s' % us_text(dur))
        parts.append(self.extra_keys(e))
        if len(e.args):
            parts.append(b',"args":%s' % (e.args,))
        parts.append(b"},")
        self.passthrough.append((b"".join(parts), (_normal_id(e.pid), _normal_id(e.tid))))

    def result(self) -> Piece:
        ends, total = array("q"), 0
        for fragment in self.frags:
            total += len(fragment)
            ends.append(total)
        return Piece(
            kind=array("b", self.kind), track=array("i", self.track), ts=array("q", self.ts),
            dur=array("q", self.dur), corr=array("q", self.corr), named=array("b", self.named),
            frag=b"".join(self.frags), frag_end=ends, tracks=self.tracks, passthrough=self.passthrough,
            metadata=self.metadata, counts=self.counts,
            min_ts=None if self.min_ts == _NO_MIN else self.min_ts,
            max_ts=None if self.max_ts == _NO_MAX else self.max_ts)


def decode_piece(data: bytes, options: PieceOptions) -> Piece:
    """Decodes ``data`` (events separated by commas, no brackets). Raises PieceError
    when it is not a sequence of whole JSON values."""
    events, bad = _decode_events(data, options.lean)
    writer = _Writer(options)
    if bad:
        writer.count("not_an_event", bad)
    writer.count("events", len(events) + bad)
    writer.complete_all([e for e in events if e.ph == _X])
    if options.lean:  # flows, instants, counters are only counted: by (phase, kind), not one by one
        kept = [e for e in events if e.ph == _M]
        for (ph, kind), n in Counter((e.ph, CATEGORY_KIND.get(e.cat, OTHER)) for e in events
                                     if e.ph != _X and e.ph != _M).items():
            writer.not_complete(kind, n)
            writer.count(f"not_loaded:{ph or '?'}", n)  # counts never read them
    else:
        kept = [e for e in events if e.ph != _X]
    for e in kept:
        writer.other(e)
    return writer.result()


_TS = re.compile(rb'"ts"\s*:\s*"?(-?[0-9][0-9.eE+-]*)')


def decode_range(path: str, offset: int, length: int, options: PieceOptions) -> Piece:
    """``decode_piece`` of the bytes [offset, offset + length) of the file at ``path``."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        return decode_piece(fh.read(length), options)


def first_timestamp_ns(data: bytes) -> int | None:
    """About the smallest ``ts`` near the start of ``data`` (it only seeds the time base,
    which the loader checks against every event once all are decoded)."""
    values = [to_ns(m.group(1)) for m, _ in zip(_TS.finditer(data), range(10_000))]
    values = [v for v in values if v is not None]
    return min(values) if values else None


# Kinds whose events the lean load keeps whatever else happens (see pipeline).
ALWAYS_KEPT = frozenset(GPU_KINDS) | {ANNOTATION}
