"""Seeded mutators that turn a real trace into a malformed one.

A case is fully determined by (seed, case number): ``make_case`` derives its own
``random.Random`` from both, so any failing case can be rebuilt alone with
``run_fuzz.py --seed S --only-case N``. Mutations come in three layers, applied
in this order: structural edits of the parsed JSON (keys, types, ids, flows,
steps), raw byte edits of the serialized file, then the compression wrapper.
"""

from __future__ import annotations

import copy
import gzip
import json
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SEED_DIR = Path(__file__).resolve().parent / "seeds"
PUBLIC_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "traces" / "public"
# Small real traces (tens of KB compressed) so one case loads in well under a second.
PUBLIC_SEEDS = (
    "hta-minitoy-mi250/mi250_minitoy_train_ROCm6_2_kineto.json.gz",
    "sglang-qwen3-8b-decode-mi300x/sglang_Qwen3-8B_decode.json.gz",
    "vllm-decode-fullgraph-mi300x/graph_execution.json.gz",
    "rocprofv3-kernel-trace-csv-mi300/ps_file_kernel_trace.csv",  # byte mutations only
)
NASTY_NUMBERS = (2**63, 2**63 - 1, 2**64 + 1, -(2**63), -1, -10**30, 10**30, 1e308, -1e308, 1e-320,
                 float("nan"), float("inf"), float("-inf"), 0, -0.0, 0.5)
NUMERIC_KEYS = ("ts", "dur", "pid", "tid", "id")
NUMERIC_ARGS = ("correlation", "External id", "device", "stream", "Sequence number")
DEEP = "__fuzz_deep_nesting__"
INVALID_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xe2\x82", b"\x80", b"\xc0\xaf")


@dataclass
class Seed:
    """One seed trace: its name, raw (uncompressed) bytes, parsed JSON (None for protobuf/CSV), file suffix."""

    name: str
    raw: bytes
    doc: dict | list | None
    suffix: str = ".json"


@dataclass
class Case:
    """A generated input: the bytes to write, a file suffix and the mutations applied, in order."""

    number: int
    seed: str
    data: bytes
    suffix: str
    mutations: list[str] = field(default_factory=list)


def perfetto_proto_seed() -> bytes:
    """A small Perfetto protobuf trace (track_event slices), built with perfetto's own builder."""
    from perfetto.trace_builder.proto_builder import TraceProtoBuilder

    builder = TraceProtoBuilder()
    packet = builder.add_packet()
    packet.track_descriptor.uuid = 42
    packet.track_descriptor.name = "ProfilerStep thread"
    for step in range(3):
        for kind, ts in (("TYPE_SLICE_BEGIN", 1000 * step), ("TYPE_SLICE_END", 1000 * step + 900)):
            packet = builder.add_packet()
            packet.timestamp = ts
            packet.trusted_packet_sequence_id = 7
            packet.track_event.type = getattr(packet.track_event, kind)
            packet.track_event.track_uuid = 42
            if kind == "TYPE_SLICE_BEGIN":
                packet.track_event.name = f"ProfilerStep#{step}"
    return builder.serialize()


def load_seeds(include_public: bool = True) -> list[Seed]:
    """The hand-written Kineto seed, the protobuf seed and (when present) the small public traces."""
    seeds = []
    for path in sorted(SEED_DIR.glob("*.json")):
        raw = path.read_bytes()
        seeds.append(Seed(path.name, raw, json.loads(raw)))
    seeds.append(Seed("builder.pftrace", perfetto_proto_seed(), None, ".pftrace"))
    if include_public:
        for rel in PUBLIC_SEEDS:
            path = PUBLIC_DIR / rel
            if not path.is_file():
                continue
            if rel.endswith(".csv"):
                seeds.append(Seed(rel.split("/")[0], path.read_bytes(), None, ".csv"))
            else:
                raw = gzip.decompress(path.read_bytes())
                seeds.append(Seed(rel.split("/")[0], raw, json.loads(raw)))
    return seeds


# ---- structural mutations (parsed JSON) ---------------------------------------------------------

def _events(doc) -> list:
    if isinstance(doc, dict) and isinstance(doc.get("traceEvents"), list):
        return doc["traceEvents"]
    return doc if isinstance(doc, list) else []


def _pick(rng: random.Random, events: list, k: int) -> list:
    dicts = [e for e in events if isinstance(e, dict)]
    return rng.sample(dicts, min(k, len(dicts))) if dicts else []


def _where(event: dict, rng: random.Random) -> tuple[dict, str]:
    """A (container, key) to edit in ``event``: a top-level key or one of its args."""
    args = event.get("args")
    if isinstance(args, dict) and args and rng.random() < 0.4:
        return args, rng.choice(list(args) + list(NUMERIC_ARGS))
    return event, rng.choice(list(event) + ["ph", "ts", "dur", "name", "cat"])


def delete_keys(doc, rng: random.Random) -> str:
    if isinstance(doc, dict) and rng.random() < 0.05:
        key = rng.choice(list(doc) or ["traceEvents"])
        doc.pop(key, None)
        return f"delete_top_key:{key}"
    for event in _pick(rng, _events(doc), rng.randint(1, 30)):
        where, key = _where(event, rng)
        where.pop(key, None)
    return "delete_keys"


def _random_value(rng: random.Random):
    return rng.choice([None, True, "", "12", "0x1f", "ProfilerStep#1", [], [1, 2], {}, {"a": 1}, 3.25,
                       rng.choice(NASTY_NUMBERS), "\u0000", "'; drop table slice; --"])


def change_types(doc, rng: random.Random) -> str:
    if isinstance(doc, dict) and rng.random() < 0.05:
        doc["traceEvents"] = _random_value(rng)
        return "change_type:traceEvents"
    for event in _pick(rng, _events(doc), rng.randint(1, 30)):
        where, key = _where(event, rng)
        where[key] = _random_value(rng)
    return "change_types"


def bad_numbers(doc, rng: random.Random) -> str:
    """Huge, negative, NaN and infinite values where timestamps, durations and ids belong."""
    for event in _pick(rng, _events(doc), rng.randint(1, 40)):
        value = rng.choice(NASTY_NUMBERS)
        if rng.random() < 0.5 and isinstance(event.get("args"), dict):
            event["args"][rng.choice(NUMERIC_ARGS)] = value
        else:
            event[rng.choice(NUMERIC_KEYS)] = value
    return "bad_numbers"


def deep_nesting(doc, rng: random.Random) -> str:
    """Marks a spot that ``finish_json`` replaces with thousands of nested arrays/objects."""
    targets = _pick(rng, _events(doc), 1)
    if targets:
        targets[0]["args" if rng.random() < 0.7 else "name"] = DEEP
    elif isinstance(doc, dict):
        doc["deep"] = DEEP
    return "deep_nesting"


def duplicate_ids(doc, rng: random.Random) -> str:
    """Exact duplicate events, and unrelated events forced to share one correlation / flow id."""
    events = _events(doc)
    picked = _pick(rng, events, rng.randint(1, 20))
    events.extend(copy.deepcopy(picked))
    shared = rng.choice([1, 0, -1, 2**63 - 1, rng.randint(1, 10**6)])
    for event in _pick(rng, events, rng.randint(2, 20)):
        if event.get("ph") in ("s", "f", "t"):
            event["id"] = shared
        elif isinstance(event.get("args"), dict):
            event["args"]["correlation"] = shared
    return "duplicate_ids"


def flows_without_end(doc, rng: random.Random) -> str:
    events = _events(doc)
    ends = [e for e in events if isinstance(e, dict) and e.get("ph") == "f"]
    for end in rng.sample(ends, min(len(ends), rng.randint(1, 50))):
        events.remove(end)
    for i in range(rng.randint(0, 10)):
        events.append({"ph": rng.choice("sft"), "id": 900000 + i, "pid": 1, "tid": 1, "ts": rng.random() * 1e6,
                       "cat": rng.choice(["ac2g", "fwdbwd", "async_cpu_to_gpu"]), "name": "ac2g"})
    return "flows_without_end"


def kernels_without_launch(doc, rng: random.Random) -> str:
    events = _events(doc)
    launches = [e for e in events if isinstance(e, dict) and e.get("cat") in ("cuda_runtime", "cuda_driver", "Runtime")]
    for launch in rng.sample(launches, min(len(launches), rng.randint(1, max(1, len(launches))))):
        events.remove(launch)
    for i in range(rng.randint(0, 10)):
        events.append({"ph": "X", "cat": rng.choice(["kernel", "Kernel", "gpu_memcpy", "gpu_memset"]),
                       "name": f"orphan_kernel_{i}", "pid": 0, "tid": 7, "ts": rng.random() * 1e6, "dur": 3,
                       "args": {"correlation": 10**9 + i, "device": 0, "stream": 7}})
    return "kernels_without_launch"


def overlapping_steps(doc, rng: random.Random) -> str:
    """Steps that overlap, nest, repeat a name, have zero or negative length."""
    events = _events(doc)
    times = [e["ts"] for e in events if isinstance(e, dict) and isinstance(e.get("ts"), (int, float))]
    lo, hi = (min(times), max(times)) if times else (0.0, 1000.0)
    name = rng.choice(["ProfilerStep#{}", "step[DECODE bs={}]", "execute_context_0(0)_generation_{}({})"])
    for i in range(rng.randint(2, 12)):
        start = rng.uniform(lo, hi) if hi > lo else lo
        events.append({"ph": rng.choice("XXXB"), "cat": rng.choice(["user_annotation", "cpu_op"]),
                       "name": name.format(i % 3, i), "pid": rng.choice([1, 100, 0]), "tid": rng.choice([1, 100]),
                       "ts": start, "dur": rng.choice([0, -5, (hi - lo) / 2, 1e-3, 10**12])})
    return "overlapping_steps"


def unbalanced_events(doc, rng: random.Random) -> str:
    """B without E, E without B, instants and counters with odd args, unknown phases."""
    events = _events(doc)
    for event in _pick(rng, events, rng.randint(1, 10)):
        event["ph"] = rng.choice(["B", "E", "i", "I", "C", "M", "b", "e", "n", "P", "O", "N", "D", "?", "", 7])
    return "unbalanced_events"


def odd_strings(doc, rng: random.Random) -> str:
    """Names that are huge, empty, lone surrogates, NUL bytes, SQL or regex metacharacters."""
    texts = ["", "\ud800", "a\u0000b", "x" * rng.choice([1000, 200000]), "'\"); select 1; --", "(.*)+$[",
             "ProfilerStep#1\n", "\U0001f600" * 50, "%s%n%x"]
    for event in _pick(rng, _events(doc), rng.randint(1, 20)):
        key = rng.choice(["name", "cat", "ph"])
        event[key] = rng.choice(texts)
    return "odd_strings"


def reshape(doc, rng: random.Random):
    """Top-level shape changes: bare list, empty events, shuffled order, many copies."""
    choice = rng.randrange(5)
    events = _events(doc)
    if choice == 0:
        return events, "reshape:bare_list"
    if choice == 1:
        return {"traceEvents": []}, "reshape:empty"
    if choice == 2:
        rng.shuffle(events)
        return doc, "reshape:shuffle"
    if choice == 3:
        return {"traceEvents": events[: rng.randint(0, len(events))]}, "reshape:prefix"
    copies = [copy.deepcopy(e) for e in events[:2000] for _ in range(rng.randint(2, 5))]
    events.extend(copies)
    return doc, "reshape:explode"


STRUCTURAL: tuple[Callable, ...] = (delete_keys, change_types, bad_numbers, deep_nesting, duplicate_ids,
                                    flows_without_end, kernels_without_launch, overlapping_steps,
                                    unbalanced_events, odd_strings)


def finish_json(doc, rng: random.Random) -> bytes:
    """Serializes (NaN/Infinity allowed: Python writes them) and expands the deep-nesting marker."""
    text = json.dumps(doc, allow_nan=True, ensure_ascii=rng.random() < 0.5, separators=(",", ":")).encode(
        "utf-8", "surrogatepass")
    marker = json.dumps(DEEP).encode()
    if marker in text:
        depth = rng.choice([100, 1000, 10000, 100000])
        nest = b"[" * depth + b"]" * depth if rng.random() < 0.5 else b'{"a":' * depth + b"1" + b"}" * depth
        text = text.replace(marker, nest, 1)
    return text


# ---- byte mutations ---------------------------------------------------------------------------

def truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    return data[: rng.randrange(0, max(1, len(data)))], "truncate"


def flip_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    out = bytearray(data)
    for _ in range(rng.randint(1, 32)):
        if out:
            out[rng.randrange(len(out))] ^= rng.randrange(1, 256)
    return bytes(out), "flip_bytes"


def invalid_utf8(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Inserts invalid UTF-8 sequences, mostly right after an opening quote so they land in strings."""
    out = bytearray(data)
    quotes = [i for i in range(0, len(out), max(1, len(out) // 4000)) if out[i:i + 1] == b'"'] or [0]
    for _ in range(rng.randint(1, 10)):
        at = rng.choice(quotes) + 1 if rng.random() < 0.8 else rng.randrange(len(out) + 1)
        out[at:at] = rng.choice(INVALID_UTF8)
    return bytes(out), "invalid_utf8"


def splice(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Deletes, repeats or inserts random spans (NUL bytes, a BOM, noise)."""
    if not data:
        return b"\x00", "splice"
    a = rng.randrange(len(data))
    b = min(len(data), a + rng.randint(1, 4096))
    choice = rng.randrange(4)
    if choice == 0:
        return data[:a] + data[b:], "splice:delete"
    if choice == 1:
        return data[:b] + data[a:b] * rng.randint(1, 8) + data[b:], "splice:repeat"
    if choice == 2:
        return b"\xef\xbb\xbf" + data, "splice:bom"
    return data[:a] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))) + data[a:], "splice:noise"


BYTE_LEVEL: tuple[Callable, ...] = (truncate, flip_bytes, invalid_utf8, splice)


def wrap(data: bytes, rng: random.Random) -> tuple[bytes, str, str]:
    """Compression layer: none, gzip, truncated gzip, bad trailer, gzip-in-gzip, two members, empty.

    Returns (bytes, ".gz" or "", name of the layer or "")."""
    choice = rng.randrange(10)
    if choice < 5:
        return data, "", ""
    packed = gzip.compress(data, compresslevel=rng.choice([1, 6, 9]), mtime=0)
    if choice in (5, 6):
        return packed, ".gz", "gzip"
    if choice == 7:
        return packed[: rng.randrange(2, max(3, len(packed)))], ".gz", "gzip_truncated"
    if choice == 8:
        trailer = bytes(rng.randrange(256) for _ in range(8))
        return packed[:-8] + trailer, ".gz", "gzip_bad_trailer"
    odd = rng.choice([gzip.compress(packed, mtime=0), packed + packed, gzip.compress(b"", mtime=0),
                      zlib.compress(data)])
    return odd, ".gz", "gzip_odd"


def make_case(seeds: list[Seed], seed: int, number: int) -> Case:
    """Builds case ``number`` of campaign ``seed``: 1-3 mutations of one seed trace, maybe compressed."""
    rng = random.Random(f"{seed}:{number}")
    source = seeds[rng.randrange(len(seeds))]
    mutations: list[str] = []
    data = source.raw
    if source.doc is not None and rng.random() < 0.75:
        doc = copy.deepcopy(source.doc)
        if rng.random() < 0.15:
            doc, what = reshape(doc, rng)
            mutations.append(what)
        for mutate in rng.sample(STRUCTURAL, rng.randint(1, 3)):
            mutations.append(mutate(doc, rng))
        data = finish_json(doc, rng)
    if source.doc is None or not mutations or rng.random() < 0.3:
        for mutate in rng.sample(BYTE_LEVEL, rng.randint(1, 2)):
            data, what = mutate(data, rng)
            mutations.append(what)
    data, gz, how = wrap(data, rng)
    suffix = source.suffix + gz
    if how:
        mutations.append(how)
    return Case(number, source.name, data, suffix, mutations)
