"""Category rules (``rules/categories.toml``): first matching rule wins.

Rules are applied to the distinct launch groups that come out of SQL, not to
every launch, so even a trace with millions of launches matches a few thousand
rows here.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from traceview.errors import RulesError
from traceview.model.kernel_names import DTYPE_NAMES
from traceview.model.rules import checked_table, compile_regex, read_toml

OTHER = "other"
KINDS = ("kernel", "memcpy", "memset")
DTYPE_CHANGE = ("yes", "no", "unknown")
_REGEX_FIELDS = ("kernel", "op", "annotation")
_ALLOWED = {"id", "category", "why", "kernel", "kernel_glob", "kind", "op", "annotation", "dtype_change"}

# Ops whose Input types are (destination, source): a dtype change is a cast.
_COPY_OPS = ("aten::copy_", "aten::_copy_from", "aten::copy")


def kernel_callable(name: str) -> str:
    """The kernel name without its parameter list: ``void f<T>(int, X*)`` -> ``void f<T>``.

    Parameter types say what a kernel takes, not what it does, and mislead name rules:
    ``quantize_with_block_size<…>(…, flashinfer::QuantizationSFLayout)`` is no attention
    kernel. Template arguments stay, since PyTorch's functors live there (``FillFunctor<float>``).
    A parenthesised part after a space (``Memcpy HtoD (Pageable -> Device)``) is not a parameter list.
    """
    if not name.endswith(")"):
        return name
    depth = 0
    for i in range(len(name) - 1, -1, -1):
        if name[i] == ")":
            depth += 1
        elif name[i] == "(":
            depth -= 1
            if depth == 0:
                before = name[i - 1] if i else " "
                return name[:i] if before.isalnum() or before in "_>" else name
    return name


@dataclass(frozen=True)
class CategoryRule:
    id: str
    category: str
    why: str
    kernel: re.Pattern | None = None
    kernel_glob: str | None = None
    kind: str | None = None
    op: re.Pattern | None = None
    annotation: re.Pattern | None = None
    dtype_change: str | None = None

    def matches(self, groups: pd.DataFrame) -> np.ndarray:
        """Boolean mask over ``groups`` (columns kernel, callable, kind, op, annotation, dtype_change).

        ``kernel`` regexes search the name without its parameter list (``callable``);
        ``kernel_glob`` matches the whole name.
        """
        mask = np.ones(len(groups), dtype=bool)
        for field in _REGEX_FIELDS:
            pattern = getattr(self, field)
            if pattern is not None:
                values = groups["callable" if field == "kernel" else field].fillna("").astype(str)
                mask &= values.map(lambda v, p=pattern: p.search(v) is not None).to_numpy(dtype=bool)
        if self.kernel_glob is not None:
            mask &= groups["kernel"].fillna("").map(
                lambda v: fnmatch.fnmatchcase(v, self.kernel_glob)).to_numpy(dtype=bool)
        if self.kind is not None:
            mask &= (groups["kind"] == self.kind).to_numpy(dtype=bool)
        if self.dtype_change is not None:
            mask &= (groups["dtype_change"] == self.dtype_change).to_numpy(dtype=bool)
        return mask


def _parse_rule(entry: object, index: int, source: str) -> CategoryRule:
    where = f"rule #{index + 1}"
    entry = checked_table(entry, _ALLOWED, source, where)
    category = entry.get("category")
    if not isinstance(category, str) or not re.fullmatch(r"[A-Za-z_][\w-]*", category):
        raise RulesError(source, f"{where}: category must be a name like 'fill', got {category!r}")
    rule_id = entry.get("id", f"rule{index + 1}")
    if not isinstance(rule_id, str) or not re.fullmatch(r"[A-Za-z_][\w-]*", rule_id):
        raise RulesError(source, f"{where}: id must be a name like 'cast-by-name', got {rule_id!r}")
    if not set(entry) & {"kernel", "kernel_glob", "kind", "op", "annotation", "dtype_change"}:
        raise RulesError(source, f"{where} ({category}): needs at least one condition")
    kind = entry.get("kind")
    if kind is not None and kind not in KINDS:
        raise RulesError(source, f"{where} ({category}): kind must be one of {', '.join(KINDS)}")
    change = entry.get("dtype_change")
    if change is not None and change not in DTYPE_CHANGE:
        raise RulesError(source, f"{where} ({category}): dtype_change must be one of {', '.join(DTYPE_CHANGE)}")
    glob = entry.get("kernel_glob")
    if glob is not None and not isinstance(glob, str):
        raise RulesError(source, f"{where} ({category}): kernel_glob must be a string")
    regexes = {f: compile_regex(entry[f], source, f"{where} ({category}) {f}") for f in _REGEX_FIELDS if f in entry}
    return CategoryRule(rule_id, category, str(entry.get("why", "")), kind=kind, dtype_change=change, kernel_glob=glob,
                        **regexes)


def load_category_rules(path: Path | None = None) -> tuple[CategoryRule, ...]:
    """Parses the packaged ``categories.toml`` or a user rules file. Raises RulesError."""
    data, source = read_toml(path, "categories.toml")
    entries = data.get("rule")
    if not isinstance(entries, list) or not entries:
        raise RulesError(source, "needs at least one [[rule]] table")
    rules = tuple(_parse_rule(e, i, source) for i, e in enumerate(entries))
    ids = [r.id for r in rules]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise RulesError(source, f"rule id(s) used twice: {', '.join(repeated)}")
    return rules


def _dtype_name(raw: object) -> str | None:
    """torch's dtype name for an ``Input type`` string (``c10::BFloat16`` -> ``bfloat16``), as written if unknown."""
    if raw is None or raw is pd.NA or (isinstance(raw, float) and np.isnan(raw)) or raw == "":
        return None
    return DTYPE_NAMES.get(str(raw), str(raw))


def dtype_columns(groups: pd.DataFrame) -> pd.DataFrame:
    """Adds ``src_dtype``, ``dst_dtype`` and ``dtype_change`` (yes/no/unknown) from the launching op."""
    out = groups.copy()
    is_copy = out["op"].isin(_COPY_OPS).to_numpy(dtype=bool)
    dst = out["op_type0"].map(_dtype_name)
    src = out["op_type1"].map(_dtype_name)
    known = is_copy & dst.notna().to_numpy(dtype=bool) & src.notna().to_numpy(dtype=bool)
    out["src_dtype"] = pd.array(np.where(known, src.astype(object), None), dtype="string")
    out["dst_dtype"] = pd.array(np.where(known, dst.astype(object), None), dtype="string")
    change = np.where(~known, "unknown", np.where(src.astype(object) != dst.astype(object), "yes", "no"))
    out["dtype_change"] = pd.Series(change, index=out.index, dtype="string")
    return _share_dtype_evidence(out)


def _share_dtype_evidence(out: pd.DataFrame) -> pd.DataFrame:
    """Launches without op dtypes take them from other launches of the same kernel.

    One kernel name is one template instantiation, one code path: when its eager launches
    show whether it converts and its CUDA-graph replays (no aten op above them) cannot, the
    replays take the eager answer, so a kernel is one category in both modes. Only an
    unambiguous answer carries over: one dtype_change value (and one dtype pair for the dtypes).
    """
    unknown = (out["dtype_change"] == "unknown").to_numpy(dtype=bool)
    if not unknown.any() or unknown.all():
        return out
    known = out.loc[~unknown, ["kernel", "dtype_change", "src_dtype", "dst_dtype"]].astype(object)
    by_kernel = known.groupby("kernel", sort=False).agg(
        changes=("dtype_change", "nunique"), change=("dtype_change", "first"),
        src=("src_dtype", "first"), dst=("dst_dtype", "first"))
    by_kernel["pairs"] = known.drop_duplicates(["kernel", "src_dtype", "dst_dtype"]).groupby("kernel").size()
    by_kernel = by_kernel[by_kernel["changes"] == 1]
    rows = np.flatnonzero(unknown & out["kernel"].isin(by_kernel.index).to_numpy(dtype=bool))
    if not len(rows):
        return out
    evidence = by_kernel.loc[out["kernel"].iloc[rows]]
    out = out.copy()
    col = out.columns.get_loc
    out.iloc[rows, col("dtype_change")] = evidence["change"].to_numpy()
    one_pair = (evidence["pairs"] == 1).to_numpy(dtype=bool)
    out.iloc[rows[one_pair], col("src_dtype")] = evidence["src"].to_numpy()[one_pair]
    out.iloc[rows[one_pair], col("dst_dtype")] = evidence["dst"].to_numpy()[one_pair]
    return out


_RULE_INPUTS = ["kernel", "kind", "op", "annotation", "dtype_change"]


def _first_match(combos: pd.DataFrame, rules: tuple[CategoryRule, ...]) -> tuple[np.ndarray, np.ndarray]:
    category = np.full(len(combos), OTHER, dtype=object)
    rule_id = np.full(len(combos), "", dtype=object)
    open_rows = np.ones(len(combos), dtype=bool)
    for rule in rules:
        if not open_rows.any():
            break
        hit = open_rows & rule.matches(combos)
        category[hit] = rule.category
        rule_id[hit] = rule.id
        open_rows &= ~hit
    return category, rule_id


def categorize(groups: pd.DataFrame, rules: tuple[CategoryRule, ...]) -> pd.DataFrame:
    """Adds the dtype columns (``dtype_columns``), ``category`` and ``rule`` (``apply_rules``)."""
    return apply_rules(dtype_columns(groups), rules)


def apply_rules(frame: pd.DataFrame, rules: tuple[CategoryRule, ...]) -> pd.DataFrame:
    """Adds ``category`` and ``rule`` (the id of the first matching rule, "" = none) columns.

    ``frame`` needs the rule inputs: kernel, kind, op, annotation, dtype_change. Rules run
    once per distinct combination, not once per step: a thousand-step trace has the
    combinations of one step.
    """
    out = frame.copy()
    keys = out[_RULE_INPUTS].astype(object).where(out[_RULE_INPUTS].notna(), None)
    combos = keys.drop_duplicates(ignore_index=True)
    combos["callable"] = combos["kernel"].map(lambda k: kernel_callable(k) if isinstance(k, str) else k)
    category, rule_id = _first_match(combos, rules)
    combos = combos.drop(columns="callable").assign(category=category, rule=rule_id)
    merged = keys.merge(combos, on=_RULE_INPUTS, how="left")
    out["category"] = pd.Series(merged["category"].to_numpy(), index=out.index, dtype="string")
    out["rule"] = pd.Series(merged["rule"].to_numpy(), index=out.index, dtype="string")
    return out


def category_order(rules: tuple[CategoryRule, ...]) -> list[str]:
    """Category names in rule order, then ``other``: a stable column order for reports."""
    seen: list[str] = []
    for rule in rules:
        if rule.category not in seen:
            seen.append(rule.category)
    return seen + ([OTHER] if OTHER not in seen else [])
