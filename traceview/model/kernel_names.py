"""Kernel and dtype names as people read them.

``DTYPE_NAMES`` is the one table from C++ type spellings (torch's ``Input type``
args, kernel template arguments) to torch dtype names; ``short_kernel_name``
turns a demangled kernel signature into a label for axes and tables.
"""

from __future__ import annotations

import re
import textwrap

# C++ spellings of element types (in op Input types and kernel template arguments) -> torch dtype names.
DTYPE_NAMES = {
    **dict.fromkeys(("c10::BFloat16", "BFloat16", "__nv_bfloat16", "__hip_bfloat16", "bfloat16"), "bfloat16"),
    **dict.fromkeys(("c10::Half", "Half", "__half", "half"), "float16"),
    "float": "float32", "double": "float64",
    **dict.fromkeys(("long", "long int", "long long", "int64_t"), "int64"),
    **dict.fromkeys(("int", "int32_t"), "int32"),
    **dict.fromkeys(("short", "short int", "int16_t"), "int16"),
    **dict.fromkeys(("signed char", "int8_t"), "int8"),
    **dict.fromkeys(("unsigned char", "uint8_t"), "uint8"),
    "bool": "bool",
    "c10::Float8_e4m3fn": "float8_e4m3fn", "c10::Float8_e5m2": "float8_e5m2",
    "c10::Float8_e4m3fnuz": "float8_e4m3fnuz", "c10::Float8_e5m2fnuz": "float8_e5m2fnuz",
    "c10::complex<c10::Half>": "complex32", "c10::complex<float>": "complex64", "c10::complex<double>": "complex128",
}


def short_dtype(name: str) -> str:
    """``bf16`` for ``bfloat16``, ``fp32`` for ``float32``, ``i64`` for ``int64``: the compact form labels use."""
    return name.replace("bfloat", "bf").replace("float", "fp").replace("uint", "u").replace("int", "i")


_NOT_A_HINT = {"unsigned", "signed", "char", "char*", "void", "int64_t", "int32_t", "uint8_t", "int8_t"}
# Index and size types: template arguments that say nothing about the data.
_INDEX_TYPES = {"unsigned int", "unsigned long", "unsigned long int", "size_t", "std::size_t", "uint32_t",
                "uint64_t", "unsigned"}
# Template arguments that only wrap the informative one (looked through for the label hint).
_WRAPPERS = {"gpu_kernel_impl", "gpu_kernel_impl_nocast", "ReduceOp", "func_wrapper_t", "BinaryFunctor",
             "AUnaryFunctor", "BUnaryFunctor", "UnaryFunctor", "wrapped_scan_config", "TensorListMetadata"}


def _depth_zero(text: str) -> str:
    """``text`` without anything inside <...>, (...), [...] or {...} (nesting aware; ``->`` is not a bracket)."""
    out, depth = [], 0
    for i, ch in enumerate(text):
        if ch in "<([{":
            depth += 1
        elif ch in ">)]}" and not (ch == ">" and i and text[i - 1] == "-"):
            depth = max(depth - 1, 0)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def _split_top_level(args: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(args):
        if ch in "<([{":
            depth += 1
        elif ch in ">)]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(args[start:i])
            start = i + 1
    parts.append(args[start:])
    return [p.strip() for p in parts]


def _template_args(text: str) -> list[str]:
    """The top-level arguments of the first template argument list in ``text`` (empty if none)."""
    start = text.find("<")
    if start < 0:
        return []
    depth, end = 0, len(text)
    for i in range(start, len(text)):
        if text[i] == "<":
            depth += 1
        elif text[i] == ">" and text[i - 1] != "-":
            depth -= 1
            if depth == 0:
                end = i
                break
    return _split_top_level(text[start + 1:end])


def _template_hint(text: str, depth: int = 0) -> str | None:
    """The first informative template argument's short name: ``FillFunctor`` in
    ``vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, ...>``;
    wrappers (``BinaryFunctor<float, ..., MulFunctor<float>>``) are looked through."""
    for arg in _template_args(text):
        word = _last_component(re.split(r"[<({]", arg, maxsplit=1)[0])
        if (not word or re.fullmatch(r"[\d\sLlUu.xXa-fA-F+-]*|true|false", word) or word in _NOT_A_HINT
                or _dtype(arg) or arg.strip() in _INDEX_TYPES):
            continue
        if word in _WRAPPERS:
            inner = _template_hint(arg, depth + 1) if depth < 3 else None
            if inner:
                return inner
            continue
        return re.sub(r"(_kernel)?_cuda$", "", word) or word
    return None


def _dtype(arg: str) -> str | None:
    """``bf16`` for ``c10::BFloat16`` (also ``c10::BFloat16 const``); None if ``arg`` is not an element type."""
    name = DTYPE_NAMES.get(re.sub(r"\s*\bconst\b\s*", "", arg).strip())
    return None if name is None else short_dtype(name)


def _dtype_hint(text: str) -> str | None:
    """The element type a kernel instantiation is for: the first dtype among its template arguments, else
    the first one nested in them (``FillFunctor<int>``, ``BinaryFunctor<c10::BFloat16, ...>``), else the
    first ``{lambda(T...)}`` parameter (PyTorch's elementwise lambdas, e.g. ``direct_copy``'s)."""
    args = _template_args(text)
    found = next((_dtype(arg) for arg in args if _dtype(arg)), None) or _nested_dtype(args)
    if found:
        return found
    match = re.search(r"\{lambda\(([^,)]+)", text)
    return _dtype(match.group(1)) if match else None


def _nested_dtype(args: list[str], depth: int = 0) -> str | None:
    """Breadth first through nested template arguments, three levels deep."""
    inner = [a for arg in args for a in _template_args(arg)]
    if not inner or depth >= 3:
        return None
    return next((_dtype(a) for a in inner if _dtype(a)), None) or _nested_dtype(inner, depth + 1)


def _last_component(path: str) -> str:
    tokens = path.split()
    if not tokens:
        return ""
    parts = [p for p in tokens[-1].split("::") if p]
    return parts[-1] if parts else ""


def short_kernel_name(name: str, max_len: int = 56) -> str:
    """A readable label for a GPU event name.

    C++ signatures lose ``void``, namespaces, template and parameter lists; the
    first informative template argument and the element type are kept as hints, so
    ``void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>, ...>(...)``
    becomes ``vectorized_elementwise_kernel<FillFunctor, fp32>`` and
    ``softmax_warp_forward<c10::BFloat16, c10::BFloat16, float, 2, ...>`` becomes
    ``softmax_warp_forward<bf16>`` (a cast removed by a change often shows only
    as the same kernel in another dtype). Other names (``Memcpy HtoD (Pageable
    -> Device)``, Triton names) only get whitespace collapsed. Longer than
    ``max_len`` characters: cut in the middle with an ellipsis.
    """
    text = " ".join(str(name).split())
    looks_cpp = "::" in text or re.search(r"[\w>]\(", text) or re.search(r"\w<", text)
    if looks_cpp:
        text = re.sub(r"^void\s+", "", text).replace("(anonymous namespace)::", "")
        base = _last_component(_depth_zero(text).replace(" const", "")) or text
        hints = [h for h in (_template_hint(text), _dtype_hint(text)) if h]
        text = f"{base}<{', '.join(hints)}>" if hints else base
    if len(text) <= max_len:
        return text
    # Cut in the middle: the tail tells variants apart (tile sizes, the functor in <...>).
    head = (max_len - 1) * 3 // 5
    return text[:head] + "…" + text[len(text) - (max_len - 1 - head):]


def kernel_labels(names: list[str], max_len: int = 56) -> list[str]:
    """Short names for ``names``, made unique with ``#2``, ``#3`` suffixes (bars on one axis must differ)."""
    labels, seen = [], {}
    for name in names:
        label = short_kernel_name(name, max_len)
        seen[label] = seen.get(label, 0) + 1
        labels.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return labels


def hover_name(name: str, width: int = 90, max_chars: int = 600) -> str:
    """The full kernel name wrapped into ``<br>``-separated lines for hover text (cut after ``max_chars``)."""
    text = str(name) if len(str(name)) <= max_chars else str(name)[:max_chars] + "…"
    return "<br>".join(textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False)) or text
