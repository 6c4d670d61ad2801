"""Key encodings of the richer argument types, each keeping everything the type carries.

The rule (issue 8): two arguments a function can tell apart never share a key. For each
type below, what an obvious encoding would drop, and what is kept instead:

- time zones: a datetime's ISO text keeps its UTC offset but not *which* zone
  (`ZoneInfo("Europe/Berlin")` and a fixed `+01:00` print alike, yet `tzname()`, DST
  arithmetic and `astimezone` differ) nor `fold`. Kept: the zone's key (zoneinfo), its
  offset and name (datetime.timezone), or class + name/offset/DST at that moment (any
  other tzinfo, e.g. pytz or dateutil); and `fold`. For a tzinfo other than these and
  pytz (whose `zone` names it), the offset at one moment does not say which zone
  (dateutil's Berlin and Algiers are both CET +01:00 in January): its rules do, taken
  from its `__cache_key__()` or its instance state (a digest, memoised per object).
- datetime/timedelta subclasses with finer time in C fields (pandas' Timestamp and
  Timedelta): `nanosecond(s)` and `unit`, which whole microseconds drop.
- dataclasses: every field, not only `compare=True` ones (a function can read those too;
  define `__cache_key__()` to leave a field out).
- pydantic models: each field's value as it is (nested models keep their class; a
  `model_dump` would turn them into plain dicts and apply custom serializers or
  `exclude=True`), plus extra and private attributes, as pydantic's own `==` does.
- numpy: structured dtypes by their field names/types (`dtype.str` is just `|V8`);
  masked arrays with data, mask and fill value; other ndarray subclasses (they may carry
  state like a unit) need `__cache_key__()`.
- OrderedDict: in order (its `==` is order-sensitive); defaultdict: with its factory.
- other subclasses of builtins: their instance attributes (`__dict__`/`__slots__`).

Functions here receive the core encoder module (`_encoding`) by import at call time,
never at import time, so either module can be imported first.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from typing import Any

from . import _encoding as core

_FINER_TIME = ("nanosecond", "nanoseconds", "unit")  # pandas Timestamp / Timedelta
_NO_VALUE = b"?"  # an attribute that is not set (e.g. a dataclass field with init=False)


def enc_tzinfo(tz: Any, at: _dt.datetime | None, out: list[bytes]) -> None:
    """Which zone (see module docstring); `at` is the moment for tzinfo methods."""
    if tz is None:
        out.append(b"N")
        return
    if type(tz) is _dt.timezone:
        offset = tz.utcoffset(None)
        out.append(b"z%d;" % (offset.days * 86400 + offset.seconds))
        core._enc_str(tz.tzname(None), out, None)
        return
    if type(tz).__module__ == "zoneinfo":
        key = getattr(tz, "key", None)
        if not isinstance(key, str):
            raise core._Unencodable(tz, "a ZoneInfo made from a file has no zone key")
        out.append(core._netstring(b"Q", key.encode()))
        return
    try:
        name, offset, dst = tz.tzname(at), tz.utcoffset(at), tz.dst(at)
    except Exception as exc:
        raise core._Unencodable(tz, f"its tzinfo failed to describe itself ({exc})") from None
    out.append(core._netstring(b"J", core._class_path(type(tz))))
    zone = getattr(tz, "zone", None)  # pytz
    parts: list[Any] = [zone if isinstance(zone, str) else None, name, offset, dst]
    for part in parts:
        core._encode(part, out, None)
    if not isinstance(zone, str):
        # Name, offset and DST at one moment do not say which zone: dateutil's
        # gettz("Europe/Berlin") and gettz("Africa/Algiers") are both CET +01:00 in
        # January, yet differ in July. The zone's own state (its rules) does.
        out.append(_tz_rules(tz))


_TZ_RULES: dict[int, tuple[Any, bytes]] = {}  # id -> (tzinfo kept alive, its encoding)
_TZ_RULES_MAX = 256


def _tz_rules(tz: Any) -> bytes:
    """A tzinfo's rules as bytes: its `__cache_key__()` when defined, else its instance
    state (`__dict__`/`__slots__`, nested objects by class and state: dateutil's
    transition tables). Memoised per object: tzinfo objects do not change."""
    known = _TZ_RULES.get(id(tz))
    if known is not None and known[0] is tz:
        return known[1]
    if getattr(type(tz), "__cache_key__", None) is not None:
        rules: Any = ("__cache_key__", tz.__cache_key__())
    else:
        rules = _snapshot(tz, 0, set())
    try:
        # A digest: a zone's transition table is tens of KB, hashed into every key.
        rules_digest = hashlib.blake2b(core.encode_value(rules, "tzinfo"), digest_size=16)
        data = b"R" + rules_digest.digest()
    except Exception:
        raise core._Unencodable(
            tz,
            f"its tzinfo {type(tz).__qualname__} has no stable encoding of its rules; "
            "define __cache_key__() on it",
        ) from None
    if len(_TZ_RULES) >= _TZ_RULES_MAX:
        _TZ_RULES.clear()
    _TZ_RULES[id(tz)] = (tz, data)
    return data


def _snapshot(obj: Any, depth: int, path: set[int]) -> Any:
    """Plain data for an object's state: containers item by item, an object as
    (class path, sorted attributes); values the encoder takes are left as they are."""
    import types

    if depth > 12:
        raise core._Unencodable(obj, "its state is nested too deeply")
    kind = type(obj)
    if kind in core._EXACT and kind not in (list, tuple, dict):
        return obj
    if id(obj) in path:
        return ("cycle", core._class_path(kind).decode())
    if type(obj) is _dt.timezone or kind.__module__ == "zoneinfo":
        out: list[bytes] = []
        enc_tzinfo(obj, None, out)
        return b"".join(out)
    if isinstance(obj, types.FunctionType | types.BuiltinFunctionType):
        return ("function", f"{obj.__module__}.{obj.__qualname__}")
    path.add(id(obj))
    try:
        if isinstance(obj, types.MethodType):  # a stored bound method: what runs, on what
            func = obj.__func__
            name = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}"
            return ("method", name, _snapshot(obj.__self__, depth + 1, path))
        if kind in (list, tuple):
            return kind(_snapshot(item, depth + 1, path) for item in obj)
        if kind is dict:
            return {k: _snapshot(v, depth + 1, path) for k, v in obj.items()}
        state: dict[str, Any] = dict(getattr(obj, "__dict__", None) or {})
        readable = hasattr(obj, "__dict__")
        for klass in kind.__mro__:
            slots = klass.__dict__.get("__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                readable = True
                if name not in ("__dict__", "__weakref__") and hasattr(obj, name):
                    state[name] = getattr(obj, name)
        if not readable:  # state in C fields (or an unknown builtin): cannot be read
            raise core._Unencodable(obj, f"{kind.__qualname__} keeps state it does not show")
        parts = tuple((k, _snapshot(state[k], depth + 1, path)) for k in sorted(state))
        return (core._class_path(kind).decode(), parts)
    finally:
        path.discard(id(obj))


def enc_dataclass(v: Any, out: list[bytes], seen: core.Seen) -> None:
    import dataclasses

    out.append(core._netstring(b"D", core._class_path(type(v))))
    inner = core._enter(v, seen)
    fields = dataclasses.fields(v)
    out.append(b"%d:" % len(fields))
    for f in fields:
        core._enc_str(f.name, out, inner)
        value = getattr(v, f.name, _NO_VALUE)
        if value is _NO_VALUE:
            out.append(_NO_VALUE)
            continue
        try:
            core._encode(value, out, inner)
        except core._Unencodable as exc:
            raise exc.within(f".{f.name}") from None
    inner.discard(id(v))


def enc_pydantic(v: Any, out: list[bytes], seen: core.Seen) -> None:
    cls = type(v)
    out.append(core._netstring(b"Y", core._class_path(cls)))
    inner = core._enter(v, seen)
    names = list(cls.model_fields)
    out.append(b"%d:" % len(names))
    try:
        for name in names:
            core._enc_str(name, out, inner)
            value = getattr(v, name, _NO_VALUE)
            if value is _NO_VALUE:
                out.append(_NO_VALUE)
            else:
                core._encode(value, out, inner)
    except core._Unencodable as exc:
        raise exc.within(f".{name}") from None
    for label, extra in (
        ("extra", getattr(v, "__pydantic_extra__", None)),
        ("private", getattr(v, "__pydantic_private__", None)),
    ):
        try:
            core._encode(extra or None, out, inner)
        except core._Unencodable as exc:
            raise exc.within(f"<{label}>") from None
    inner.discard(id(v))


def dtype_text(dtype: Any) -> bytes:
    """A dtype with everything that defines it: `<i4`, or the field list of a structured
    or sub-array dtype."""
    if dtype.fields is None and dtype.subdtype is None:
        return str(dtype.str).encode()
    return repr(dtype.descr).encode()


def enc_ndarray_subclass(v: Any, out: list[bytes], numpy: Any) -> None:
    cls = type(v)
    if isinstance(v, numpy.ma.MaskedArray):
        out.append(core._netstring(b"m", core._class_path(cls)))
        core._enc_ndarray(numpy.asarray(v.data), out, b"a")
        core._enc_ndarray(numpy.ma.getmaskarray(v), out, b"a")
        core._enc_ndarray(numpy.asarray(v.fill_value), out, b"g")
        return
    if cls in (numpy.matrix, numpy.memmap, numpy.recarray):
        out.append(core._netstring(b"X", core._class_path(cls)))
        core._enc_ndarray(v.view(numpy.ndarray), out, b"a")
        return
    raise core._Unencodable(
        v,
        f"numpy array subclass {cls.__module__}.{cls.__qualname__} may carry state beyond "
        f"its data (a unit, a mask); define __cache_key__() on it",
    )


def enc_special_dict(v: Any, out: list[bytes], seen: core.Seen) -> bool:
    """OrderedDict (in order) and defaultdict (with its factory); False for others."""
    import collections

    if isinstance(v, collections.OrderedDict):
        out.append(core._netstring(b"X", core._class_path(type(v))))
        inner = core._enter(v, seen)
        out.append(b"o%d:" % len(v))
        k: Any = None
        try:
            for k, item in v.items():
                core._encode(k, out, inner)
                core._encode(item, out, inner)
        except core._Unencodable as exc:
            raise exc.within(f"[{k!r}]") from None
        inner.discard(id(v))
        enc_instance_state(v, out, seen)
        return True
    if isinstance(v, collections.defaultdict):
        out.append(core._netstring(b"X", core._class_path(type(v))))
        factory = v.default_factory
        if factory is None:
            out.append(b"N")
        else:
            core._enc_str(_factory_identity(v, factory), out, seen)
        core._enc_dict(v, out, seen)
        enc_instance_state(v, out, seen)
        return True
    return False


def _factory_identity(v: Any, factory: Any) -> str:
    """A defaultdict's factory by what it is: a class or builtin by name, a Python
    function by its identity (code digest included)."""
    import inspect

    from ._identity import function_identity, qualified_name

    if isinstance(factory, type) or inspect.isbuiltin(factory):
        return qualified_name(factory)
    if inspect.isfunction(factory):
        return function_identity(factory, None)
    raise core._Unencodable(
        v, f"its default_factory {type(factory).__qualname__} has no stable identity"
    )


def enc_instance_state(v: Any, out: list[bytes], seen: core.Seen) -> None:
    """Attributes a subclass instance carries beyond its builtin value (sorted by name)."""
    state: dict[str, Any] = dict(getattr(v, "__dict__", None) or {})
    for klass in type(v).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__") and hasattr(v, name):
                state[name] = getattr(v, name)
    if isinstance(v, _dt.date | _dt.time | _dt.timedelta):
        # Extension subclasses keep finer time in C fields the base encoding (whole
        # microseconds) drops: pandas' Timedelta(1, "ns") would be Timedelta(0).
        for name in _FINER_TIME:
            value = getattr(v, name, None)
            if isinstance(value, int | str) and not isinstance(value, bool):
                state["<" + name + ">"] = value
    if not state:
        return
    out.append(b"@")
    try:
        core._enc_dict(state, out, seen)
    except core._Unencodable as exc:
        raise exc.within(".<attributes>") from None
