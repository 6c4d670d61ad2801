"""Binding a call's arguments to a signature compiled once per function.

`inspect.Signature.bind` costs microseconds per call; the compiled binder is a few list
operations, so binding stays off the hit path's profile. Pure and I/O-free.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class _CompiledSignature:
    """The signature reduced to what binding needs; built once per function."""

    names: tuple[str, ...]  # named parameters, in order (not *args/**kwargs)
    defaults: tuple[Any, ...]  # MISSING for required parameters
    npos: int  # how many of `names` may be passed positionally
    kw_index: dict[str, int]  # names that may be passed by keyword -> index
    var_positional: str | None
    var_keyword: str | None
    fast_min: int  # positional count from which defaults alone complete the call

    @classmethod
    def compile(cls, params: Sequence[inspect.Parameter]) -> _CompiledSignature:
        names: list[str] = []
        defaults: list[Any] = []
        kw_index: dict[str, int] = {}
        npos = 0
        var_pos = var_kw = None
        for p in params:
            if p.kind is p.VAR_POSITIONAL:
                var_pos = p.name
                continue
            if p.kind is p.VAR_KEYWORD:
                var_kw = p.name
                continue
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                npos += 1
            if p.kind is not p.POSITIONAL_ONLY:
                kw_index[p.name] = len(names)
            names.append(p.name)
            defaults.append(MISSING if p.default is p.empty else p.default)
        required = [i for i, d in enumerate(defaults) if d is MISSING]
        fast_min = (max(required) + 1) if required else 0
        return cls(tuple(names), tuple(defaults), npos, kw_index, var_pos, var_kw, fast_min)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any] | None:
        """Values of `names` (then *args tuple, **kwargs dict if declared), defaults
        applied; None when the call does not fit (the function then raises its own
        TypeError when called)."""
        n = len(args)
        no_var = self.var_positional is None and self.var_keyword is None
        if not kwargs and no_var and self.fast_min <= n <= self.npos:
            # The common case: positional arguments, defaults fill the rest.
            return [*args, *self.defaults[n:]]
        values = list(args[: self.npos])
        extra_pos = args[self.npos :]
        if extra_pos and self.var_positional is None:
            return None
        values.extend(self.defaults[len(values) :])
        given = [i < min(n, self.npos) for i in range(len(values))]
        extra_kw: dict[str, Any] = {}
        for name, value in kwargs.items():
            i = self.kw_index.get(name)
            if i is None:
                if self.var_keyword is None:
                    return None
                extra_kw[name] = value
            elif given[i]:
                return None
            else:
                values[i] = value
                given[i] = True
        if any(v is MISSING for v in values):
            return None
        if self.var_positional is not None:
            values.append(tuple(extra_pos))
        if self.var_keyword is not None:
            values.append(extra_kw)
        return values

    @property
    def all_names(self) -> tuple[str, ...]:
        extra = tuple(n for n in (self.var_positional, self.var_keyword) if n is not None)
        return self.names + extra
