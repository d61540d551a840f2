"""Cutflow counters: an ordered name -> count mapping per file, summed in the merge."""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping


def add(cutflow: dict, name: str, value: int) -> None:
    """Increase counter `name` by `value` (creating it, keeping first-seen order)."""
    cutflow[name] = int(cutflow.get(name, 0)) + int(value)


def total(cutflows: Iterable[Mapping[str, int]]) -> dict:
    """Sum several cutflows, keeping the order in which names first appear."""
    out: dict = {}
    counts: Counter = Counter()
    for cf in cutflows:
        for k, v in cf.items():
            out.setdefault(k, 0)
            counts[k] += int(v)
    return {k: counts[k] for k in out}
