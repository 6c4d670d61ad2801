"""What the encoding audits share: the property (values a function can tell apart never
share an encoding), and argument types both audit modules use: a str subclass whose
instances carry an attribute, a tzinfo whose rules live in its state, a timedelta
subclass with finer time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from hypothesis import settings

from pmm_memo._encoding import encode_value

PROPERTY = settings(max_examples=250, deadline=None)


def never_shared(x: Any, y: Any, observe: Callable[[Any], Any]) -> None:
    """encode(x) == encode(y) implies observe(x) == observe(y): `observe` gives all a
    function could read from the value."""
    if encode_value(x) == encode_value(y):
        assert observe(x) == observe(y), (x, y)


class Tag(str):
    pass


def tagged(text: str, lang: str | None) -> Tag:
    """A `Tag` with a `lang` attribute when `lang` is given (a subclass's state)."""
    t = Tag(text)
    if lang is not None:
        t.lang = lang  # type: ignore[attr-defined]
    return t


class _Transition:
    """One entry of a zone's transition table, slotted like dateutil's `_ttinfo`."""

    __slots__ = ("month", "offset")

    def __init__(self, month: int, offset: dt.timedelta) -> None:
        self.month, self.offset = month, offset


class RuleZone(dt.tzinfo):
    """A tzinfo whose rules live in its instance state, as dateutil's `tzfile` keeps its
    transition tables (and a stored bound method, as its `_TZStr` does): two instances
    agree in January (same name, offset and DST) and differ in July."""

    def __init__(self, summer_hours: int) -> None:
        self.table = [_Transition(1, dt.timedelta(hours=1))]
        self.table.append(_Transition(7, dt.timedelta(hours=summer_hours)))
        self.pick = self._pick

    def _pick(self, when: dt.datetime | None) -> dt.timedelta:
        month = 1 if when is None else when.month
        return max((t for t in self.table if t.month <= month), key=lambda t: t.month).offset

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        return self.pick(when)

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def tzname(self, when: dt.datetime | None) -> str:
        return "CET"


class NanoDelta(dt.timedelta):
    """Finer time in fields the timedelta base does not have, as pandas' Timedelta keeps
    nanoseconds in C fields (no `__dict__`/`__slots__` to read): stood in for here by a
    property over a side table."""

    _finer: dict[int, int] = {}  # noqa: RUF012 - the stand-in for C fields

    def __new__(cls, micro: int, nanos: int) -> NanoDelta:
        self = super().__new__(cls, microseconds=micro)
        cls._finer[id(self)] = nanos
        return self

    @property
    def nanoseconds(self) -> int:
        return self._finer[id(self)]
