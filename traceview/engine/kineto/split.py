"""Cuts a Chrome/Kineto JSON byte stream into pieces of whole events.

The document is ``{..., "traceEvents": [e1, e2, ...], ...}`` (keys in any
order) or a bare array ``[e1, e2, ...`` (whose closing bracket Chrome's format
lets a writer leave out). Pieces are cut at a ``}<ws>,<ws>{`` just before a
size mark. Such a spot can also lie inside a string or a nested array, so a cut
is only a candidate: a piece that starts between two events decodes as a JSON
array exactly when it also ends between two events, and the loader merges a
piece that fails with the next one (``Piece.separator`` keeps the bytes in
between). The first piece starts where the array does, so every accepted cut
is a true one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from traceview.errors import TraceLoadError

_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
_KEY = b'"traceEvents"'
# How far into the file the events array may start (the keys before it are small in every
# writer we know; a larger head is read whole before giving up).
_MAX_HEAD_BYTES = 256 << 20


@dataclass
class RawPiece:
    """The text of whole events, without brackets; ``separator`` is what stood
    between its last event and the next piece's first (``,`` and whitespace).
    A piece of an uncompressed file may instead name its bytes (``offset``,
    ``length``): the decoding process reads them itself."""

    data: bytes
    separator: bytes = b""
    last: bool = False
    offset: int = -1
    length: int = 0

    def then(self, following: "RawPiece") -> "RawPiece":
        """This piece and the next as one (a cut that was not between two events)."""
        if self.offset >= 0:
            return RawPiece(b"", following.separator, following.last, self.offset,
                            following.offset + following.length - self.offset)
        return RawPiece(self.data + self.separator + following.data, following.separator, following.last)


@dataclass
class Document:
    """What surrounds the events array: the other top-level keys, once known."""

    metadata: dict = field(default_factory=dict)
    bare_array: bool = False


def _object_prefix_ok(prefix: bytes) -> dict | None:
    """The keys before ``"traceEvents"`` as a dict, when ``prefix`` is exactly an
    object's start followed by whole key-value pairs (and a comma)."""
    try:
        value = msgspec.json.decode(prefix + b'"traceEvents":0}')
    except (msgspec.DecodeError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    value.pop("traceEvents", None)
    return value


def _object_suffix(trailer: bytes) -> dict | None:
    """The keys after the array, when ``trailer`` ends an object that the array began."""
    try:
        value = msgspec.json.decode(b'{"traceEvents":0' + trailer)
    except (msgspec.DecodeError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    value.pop("traceEvents", None)
    return value


def _events_start(buffer: bytes, path, doc: Document) -> int | None:
    """Offset of the first byte after the array's ``[``; None: read more first."""
    text = buffer.lstrip(_WHITESPACE)
    offset = len(buffer) - len(text)
    if text[:1] == b"[":
        doc.bare_array = True
        return offset + 1
    if text[:1] != b"{":
        raise TraceLoadError(path, "not a Chrome/Kineto JSON trace: the document is neither an object nor an array")
    start = 0
    while (at := buffer.find(_KEY, start)) >= 0:
        start = at + 1
        colon = at + len(_KEY)
        rest = buffer[colon:colon + 64].lstrip(_WHITESPACE)
        if rest[:1] != b":":
            continue
        after = rest[1:].lstrip(_WHITESPACE)
        if not after:
            return None  # the value has not arrived yet
        keys = _object_prefix_ok(buffer[:at])
        if keys is None:
            continue  # inside a string or a nested value
        if after[:1] != b"[":
            raise TraceLoadError(path, "traceEvents is not an array")
        doc.metadata.update(keys)
        return buffer.index(b"[", colon) + 1
    return None


def _last_cut(buffer: bytes, lo: int, hi: int) -> tuple[int, int] | None:
    """The last ``}<ws>,<ws>{`` with its ``{`` in ``(lo, hi)``: (index of ``}``, index of ``{``)."""
    while (brace := buffer.rfind(b"{", lo + 1, hi)) > lo:
        i = brace - 1
        while i > lo and buffer[i] in _WHITESPACE:
            i -= 1
        if buffer[i] == 0x2C:  # ","
            i -= 1
            while i > lo and buffer[i] in _WHITESPACE:
                i -= 1
            if buffer[i] == 0x7D:  # "}"
                return i, brace
        hi = brace
    return None


def _final_piece(text: bytes, doc: Document, path) -> bytes:
    """The events part of the text after the last cut (strips the array's end and what follows)."""
    return text[:_events_end(text, doc, path)]


def _events_end(text: bytes, doc: Document, path) -> int:
    """Where the events end in ``text``, the document's last bytes: before the array's ``]``
    (and the whitespace before it); ``doc`` gets the keys that follow."""
    at = len(text)
    while (close := text.rfind(b"]", 0, at)) >= 0:
        at = close
        trailer = text[close + 1:]
        if doc.bare_array:
            if trailer.strip(_WHITESPACE):
                continue
        else:
            keys = _object_suffix(trailer)
            if keys is None:
                continue
            doc.metadata.update(keys)
        return len(text[:close].rstrip(_WHITESPACE))
    if doc.bare_array:  # Chrome's array format may stop without its closing bracket
        return len(text.rstrip(_WHITESPACE).rstrip(b",").rstrip(_WHITESPACE))
    raise TraceLoadError(path, "the traceEvents array does not end: the JSON is truncated or malformed")


def split_events(chunks: Iterable[bytes], path, doc: Document, piece_bytes: int) -> Iterator[RawPiece]:
    """Yields the events of the JSON document in ``chunks`` as pieces of about
    ``piece_bytes``; the last has ``last=True``. ``doc`` receives the other keys."""
    buffer = b""
    stream = iter(chunks)
    begin = None
    for chunk in stream:
        buffer += chunk
        if buffer.startswith(_BOM):
            buffer = buffer[len(_BOM):]
        begin = _events_start(buffer, path, doc)
        if begin is not None:
            break
        if len(buffer) > _MAX_HEAD_BYTES:
            break
    if begin is None:
        raise TraceLoadError(path, "JSON holds no Chrome/Kineto trace events (no traceEvents array)")
    buffer = buffer[begin:]
    for chunk in _then(b"", stream):
        buffer += chunk
        while len(buffer) >= piece_bytes:
            # The last cut before the size mark, else any later one; none yet: read on.
            cut = _last_cut(buffer, piece_bytes // 2, piece_bytes) or _last_cut(buffer, 0, len(buffer))
            if cut is None:
                break
            close, brace = cut
            yield RawPiece(buffer[:close + 1], buffer[close + 1:brace])
            buffer = buffer[brace:]
    yield RawPiece(_final_piece(buffer, doc, path), b"", last=True)


def _then(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


_CUT = re.compile(rb"\}\s*,\s*\{")
_WINDOW = 1 << 20


def _read(fh, offset: int, length: int) -> bytes:
    fh.seek(offset)
    return fh.read(length)


def split_file(path: Path, doc: Document, piece_bytes: int) -> Iterator[RawPiece]:
    """``split_events`` for an uncompressed file, reading only around the cuts: each piece
    names a byte range that the decoding process reads itself."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head, begin = b"", None
        while begin is None and len(head) < min(size, _MAX_HEAD_BYTES):
            head += _read(fh, len(head), max(len(head), _WINDOW))
            begin = _events_start(head[3:] if head.startswith(_BOM) else head, path, doc)
        if begin is None:
            raise TraceLoadError(path, "JSON holds no Chrome/Kineto trace events (no traceEvents array)")
        begin += 3 if head.startswith(_BOM) else 0
        tail_at = max(begin, size - _WINDOW)
        while True:  # the array's end: within the last MiB, or further back for a long last event
            try:
                end = tail_at + _events_end(_read(fh, tail_at, size - tail_at), doc, path)
                break
            except TraceLoadError:
                if tail_at == begin:
                    raise
                tail_at = max(begin, size - 4 * (size - tail_at))
        start = begin
        while end - start > piece_bytes:
            cut = _next_cut(fh, start + piece_bytes, end)
            if cut is None:
                break
            close, brace = cut
            yield RawPiece(b"", _read(fh, close + 1, brace - close - 1), False, start, close + 1 - start)
            start = brace
    yield RawPiece(b"", b"", True, start, end - start)


def _next_cut(fh, at: int, end: int) -> tuple[int, int] | None:
    """The first ``}<ws>,<ws>{`` from ``at`` on (before ``end``): (index of ``}``, index of ``{``)."""
    window = _WINDOW
    while at < end:
        text = _read(fh, at, min(window, end - at))
        match = _CUT.search(text)
        if match:
            return at + match.start(), at + match.end() - 1
        if at + len(text) >= end:
            return None
        window *= 4  # one event longer than the window: look further
    return None
