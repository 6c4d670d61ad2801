"""Tagged JSON: results as JSON trees and back, without ever running code when reading.

JSON-native values are stored as themselves; everything else is a one-key object whose key
starts with `$` (`{"$t": [...]}` for a tuple). A dict whose keys are not all `$`-free
strings is stored as `{"$d": [[k, v], ...]}`, so a user's own `{"$t": 1}` can never be
mistaken for a tag. Dataclasses, pydantic models and enums are rebuilt only from classes
this process already knows (ones it has encoded, ones named in a decorated function's
return annotation, or ones passed to `allow_type`): reading never imports a module or
resolves an arbitrary name.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as _dt
import enum
import math
import sys
import typing
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ._errors import CodecError
from ._loaded import loaded_class

_known_types: dict[str, type] = {}


def _type_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def allow_type(cls: type) -> type:
    """Let stored dataclasses/pydantic models/enums of `cls` be rebuilt when read.

    Usable as a class decorator. Types are also allowed automatically once this process
    has stored one, or when they appear in a decorated function's return annotation.
    """
    _known_types[_type_path(cls)] = cls
    return cls


def allow_types_from_annotation(func: Callable[..., Any]) -> None:
    """Allow the classes named in `func`'s return annotation (nested generics included)."""
    try:
        hints = typing.get_type_hints(func)
    except Exception:
        return
    stack = [hints.get("return")]
    while stack:
        hint = stack.pop()
        if isinstance(hint, type) and (
            dataclasses.is_dataclass(hint) or issubclass(hint, enum.Enum) or _is_pydantic(hint)
        ):
            allow_type(hint)
        stack.extend(typing.get_args(hint))


def _is_pydantic(cls: type) -> bool:
    base_model = loaded_class("pydantic", "BaseModel")
    return base_model is not None and isinstance(cls, type) and issubclass(cls, base_model)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise CodecError("expected base64 text")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CodecError(f"bad base64: {exc}") from None


def to_tree(v: Any) -> Any:
    t = type(v)
    if v is None or t is bool or t is int or t is str:
        return v
    if t is float:
        return v if math.isfinite(v) else {"$f": repr(v)}
    if t is list:
        return [to_tree(x) for x in v]
    if t is dict:
        if all(type(k) is str and not k.startswith("$") for k in v):
            return {k: to_tree(x) for k, x in v.items()}
        return {"$d": [[to_tree(k), to_tree(x)] for k, x in v.items()]}
    if t is tuple:
        return {"$t": [to_tree(x) for x in v]}
    if t is bytes:
        return {"$b": _b64(v)}
    if t is set or t is frozenset:
        return {"$s" if t is set else "$fs": [to_tree(x) for x in v]}
    ndarray = loaded_class("numpy", "ndarray")  # no array exists before numpy is loaded
    np = sys.modules["numpy"] if ndarray is not None else None
    if np is not None and isinstance(v, ndarray):
        if v.dtype.hasobject:
            raise CodecError("numpy arrays of dtype=object cannot be stored safely")
        return {"$nd": [v.dtype.str, list(v.shape), _b64(v.tobytes(order="C"))]}
    if np is not None and isinstance(v, np.generic):
        return {"$ng": [v.dtype.str, _b64(np.asarray(v).tobytes())]}
    if isinstance(v, enum.Enum):
        allow_type(t)  # this process made one, so it may read one back
        return {"$e": _type_path(t), "v": to_tree(v.value)}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        allow_type(t)
        fields = {f.name: to_tree(getattr(v, f.name)) for f in dataclasses.fields(v)}
        return {"$dc": _type_path(t), "f": fields}
    if _is_pydantic(t):
        allow_type(t)
        return {"$pd": _type_path(t), "f": v.model_dump(mode="json")}
    if t is _dt.datetime:
        return {"$dt": v.isoformat()}
    if t is _dt.date:
        return {"$date": v.isoformat()}
    if t is _dt.time:
        return {"$time": v.isoformat()}
    if t is _dt.timedelta:
        return {"$td": [v.days, v.seconds, v.microseconds]}
    if t is Decimal:
        return {"$dec": str(v)}
    if t is uuid.UUID:
        return {"$uuid": str(v)}
    raise CodecError(f"results of type {t.__module__}.{t.__qualname__} cannot be stored safely")


def _known(path: Any) -> type:
    cls = _known_types.get(path) if isinstance(path, str) else None
    if cls is None:
        raise CodecError(
            f"stored type {path!r} is not known to this process (allow it with "
            f"pmm_memo.allow_type or a return annotation)"
        )
    return cls


def from_tree(v: Any) -> Any:
    if type(v) is list:
        return [from_tree(x) for x in v]
    if type(v) is not dict:
        return v
    if not v or not next(iter(v)).startswith("$"):
        return {k: from_tree(x) for k, x in v.items()}
    try:
        return _from_tagged(v)
    except CodecError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise CodecError(f"malformed tagged value: {exc}") from None


def _from_tagged(v: dict[str, Any]) -> Any:
    tag = next(iter(v))
    body = v[tag]
    if tag == "$t":
        return tuple(from_tree(x) for x in body)
    if tag == "$d":
        return {_hashable(from_tree(k)): from_tree(x) for k, x in body}
    if tag == "$f":
        if body not in ("nan", "inf", "-inf"):
            raise CodecError(f"bad float {body!r}")
        return float(body)
    if tag == "$b":
        return _unb64(body)
    if tag == "$s":
        return {_hashable(from_tree(x)) for x in body}
    if tag == "$fs":
        return frozenset(_hashable(from_tree(x)) for x in body)
    if tag == "$nd":
        import numpy as np

        dtype, shape, data = body
        dt = np.dtype(str(dtype))
        if dt.hasobject:
            raise CodecError("object arrays are never read")
        return np.frombuffer(_unb64(data), dtype=dt).reshape([int(n) for n in shape]).copy()
    if tag == "$ng":
        import numpy as np

        dtype, data = body
        dt = np.dtype(str(dtype))
        if dt.hasobject:
            raise CodecError("object scalars are never read")
        return np.frombuffer(_unb64(data), dtype=dt)[0]
    if tag == "$e":
        return _known(body)(from_tree(v["v"]))
    if tag == "$dc":
        cls = _known(body)
        if not dataclasses.is_dataclass(cls):
            raise CodecError(f"{body!r} is not a dataclass")
        values = {k: from_tree(x) for k, x in v["f"].items()}
        init = {f.name for f in dataclasses.fields(cls) if f.init}
        obj = cls(**{k: x for k, x in values.items() if k in init})
        for k, x in values.items():
            if k not in init:
                object.__setattr__(obj, k, x)
        return obj
    if tag == "$pd":
        cls = _known(body)
        return cls.model_validate(v["f"])  # type: ignore[attr-defined]
    if tag == "$dt":
        return _dt.datetime.fromisoformat(body)
    if tag == "$date":
        return _dt.date.fromisoformat(body)
    if tag == "$time":
        return _dt.time.fromisoformat(body)
    if tag == "$td":
        return _dt.timedelta(days=body[0], seconds=body[1], microseconds=body[2])
    if tag == "$dec":
        return Decimal(body)
    if tag == "$uuid":
        return uuid.UUID(body)
    raise CodecError(f"unknown tag {tag!r}")


def _hashable(v: Any) -> Any:
    # Lists inside dict keys/sets were tuples or frozensets originally and stay tagged,
    # so anything unhashable here means the entry was not written by us.
    try:
        hash(v)
    except TypeError:
        raise CodecError("unhashable dict key or set member in stored entry") from None
    return v
