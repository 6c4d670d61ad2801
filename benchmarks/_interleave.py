"""Interleaved, repeated timing of several contenders, and the table it prints.

Every contender of a row runs in the same process, against the same server, in short
alternating rounds (the order rotates each round), so a noisy moment on a shared machine
hits all of them alike. Each repeat yields one median per contender; a ratio is the median
over repeats of (contender median / baseline median) in that repeat. Figures are per
call; p99 is over per-batch samples (per call when batch = 1).
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks._util import aper_call_samples, per_call_samples, percentile


@dataclass
class Timed:
    samples: list[float] = field(default_factory=list)
    per_repeat: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 0.99)

    def ratio(self, base: Timed) -> float:
        return statistics.median(
            a / b for a, b in zip(self.per_repeat, base.per_repeat, strict=True)
        )


def _per_round(calls: int, batch: int, rounds: int) -> int:
    """Calls per contender per round: a whole number of batches, at least one."""
    return max(batch, calls // rounds // batch * batch)


def _orders(names: list[str], repeats: int, rounds: int) -> list[list[str]]:
    """Per repeat, the contenders in the order they run: `rounds` rotations of `names`."""
    one = [n for k in range(rounds) for n in names[k % len(names) :] + names[: k % len(names)]]
    return [one] * repeats


def _add_repeat(out: dict[str, Timed], this: dict[str, list[float]]) -> None:
    for n, samples in this.items():
        out[n].samples += samples
        out[n].per_repeat.append(statistics.median(samples))


def interleaved(
    contenders: dict[str, Callable[[], Any]],
    *,
    calls: int,
    batch: int,
    repeats: int,
    rounds: int = 10,
) -> dict[str, Timed]:
    """`calls` timed calls per contender per repeat, in `rounds` alternating rounds."""
    out = {n: Timed() for n in contenders}
    per_round = _per_round(calls, batch, rounds)
    for order in _orders(list(contenders), repeats, rounds):
        this: dict[str, list[float]] = {n: [] for n in contenders}
        for n in order:
            this[n] += per_call_samples(contenders[n], per_round, batch)
        _add_repeat(out, this)
    return out


async def ainterleaved(
    contenders: dict[str, Callable[[], Awaitable[Any]]],
    *,
    calls: int,
    batch: int,
    repeats: int,
    rounds: int = 10,
) -> dict[str, Timed]:
    """`interleaved` for coroutine functions, on the running event loop."""
    out = {n: Timed() for n in contenders}
    per_round = _per_round(calls, batch, rounds)
    for order in _orders(list(contenders), repeats, rounds):
        this: dict[str, list[float]] = {n: [] for n in contenders}
        for n in order:
            this[n] += await aper_call_samples(contenders[n], per_round, batch)
        _add_repeat(out, this)
    return out


def timed_calls(calls: int, batch: int, repeats: int, rounds: int = 10) -> int:
    """How many calls `interleaved` makes per contender (for hit/miss verification)."""
    return repeats * rounds * (_per_round(calls, batch, rounds) // batch) * batch


@dataclass
class Line:
    path: str
    contender: str
    median: float | None  # seconds per call (or bytes / entry, see unit)
    p99: float | None
    ratio: float | None
    versus: str
    target: str = ""
    verdict: str = ""
    unit: str = "time"


class Table:
    """Rows collected while the benchmark runs, printed once at the end."""

    def __init__(self) -> None:
        self.lines: list[Line] = []

    def add_row(
        self,
        path: str,
        results: dict[str, Timed],
        base: str,
        targets: dict[str, tuple[str, float | None]] | None = None,
    ) -> None:
        """One line per contender; `targets[name] = (text, max ratio)` marks it met/not."""
        targets = targets or {}
        for name, t in results.items():
            ratio = None if name == base else t.ratio(results[base])
            text, limit = targets.get(name, ("", None))
            verdict = ""
            if limit is not None and ratio is not None:
                verdict = "met" if ratio <= limit else "NOT met"
            self.lines.append(Line(path, name, t.median, t.p99, ratio, base, text, verdict))
        for line in self.lines[-len(results) :]:
            print(_fmt(line), flush=True)

    def add(self, line: Line) -> None:
        self.lines.append(line)
        print(_fmt(line), flush=True)

    def markdown(self) -> str:
        head = "| path | contender | median | p99 | ratio | target |\n|---|---|---|---|---|---|"
        rows = []
        last = None
        for line in self.lines:
            path = line.path if line.path != last else ""
            last = line.path
            target = f"{line.target} ({line.verdict})" if line.verdict else line.target
            ratio = "" if line.ratio is None else f"{line.ratio:.2f}x {line.versus}"
            rows.append(
                f"| {path} | {line.contender} | {_value(line.median, line.unit)} | "
                f"{_value(line.p99, line.unit)} | {ratio} | {target} |"
            )
        return "\n".join([head, *rows])


def _value(v: float | None, unit: str) -> str:
    if v is None:
        return ""
    if unit == "bytes":
        return f"{v / 1024:.1f} KB"
    if unit == "seconds":
        return f"{v:.1f} s"
    if v >= 1e-3:
        return f"{v * 1e3:.2f} ms"
    return f"{v * 1e6:.2f} µs"


def _fmt(line: Line) -> str:
    ratio = "" if line.ratio is None else f"{line.ratio:6.2f}x vs {line.versus}"
    verdict = f"  [{line.target}: {line.verdict}]" if line.verdict else ""
    p99 = "" if line.p99 is None else f"p99 {_value(line.p99, line.unit):>10}"
    return (
        f"  {line.contender:<46} {_value(line.median, line.unit):>10} {p99:>14}  {ratio}{verdict}"
    )
