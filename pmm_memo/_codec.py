"""Turning results into bytes and back, without ever running code when reading.

Codecs (the `codec` field of an entry):
- `str` / `bytes`: the result itself, for the common LLM case (no parsing at all).
- `json`: tagged JSON. JSON-native values are stored as themselves; everything else is a
  one-key object whose key starts with `$` (`{"$t": [...]}` for a tuple). A dict whose keys
  are not all `$`-free strings is stored as `{"$d": [[k, v], ...]}`, so a user's own
  `{"$t": 1}` can never be mistaken for a tag. Dataclasses, pydantic models and enums are
  rebuilt only from classes this process already knows (ones it has encoded, ones named in
  a decorated function's return annotation, or ones passed to `allow_type`): reading never
  imports a module or resolves an arbitrary name.
- `pickle`: only with CACHE_CODEC=pickle, only for results the safe codecs cannot hold,
  and only with CACHE_SIGNING_KEY.

With a signing key every entry carries an HMAC-SHA256 over (format, codec, payload) *and
the entry's binding*: its Redis key, check digest, tenant, user, function tag and scope,
and the fields that decide a semantic hit: text digest, embedder, text and embedding
(`entry_binding`). Fields copied from alice's entry to bob's key, or relabelled with bob's
tenant/user/scope, no longer verify. An entry without a valid signature is a miss, and so
is a signed entry read by a cache without a signing key (it was written under another
configuration). The algorithm is fixed here, never read from the entry, so a forged entry
cannot downgrade it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as _dt
import enum
import hashlib
import hmac
import json
import math
import pickle
import sys
import typing
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import xxhash

from ._errors import CodecError

FORMAT_VERSION = b"1"
_SIGNATURE_CONTEXT = b"pmm_memo/entry/v2\x00"  # v2: the signature binds the entry

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
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(cls, type) and issubclass(cls, pydantic.BaseModel)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise CodecError("expected base64 text")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CodecError(f"bad base64: {exc}") from None


def _to_tree(v: Any) -> Any:
    t = type(v)
    if v is None or t is bool or t is int or t is str:
        return v
    if t is float:
        return v if math.isfinite(v) else {"$f": repr(v)}
    if t is list:
        return [_to_tree(x) for x in v]
    if t is dict:
        if all(type(k) is str and not k.startswith("$") for k in v):
            return {k: _to_tree(x) for k, x in v.items()}
        return {"$d": [[_to_tree(k), _to_tree(x)] for k, x in v.items()]}
    if t is tuple:
        return {"$t": [_to_tree(x) for x in v]}
    if t is bytes:
        return {"$b": _b64(v)}
    if t is set or t is frozenset:
        return {"$s" if t is set else "$fs": [_to_tree(x) for x in v]}
    np = sys.modules.get("numpy")  # an array can only exist if numpy was imported
    if np is not None and isinstance(v, np.ndarray):
        if v.dtype.hasobject:
            raise CodecError("numpy arrays of dtype=object cannot be stored safely")
        return {"$nd": [v.dtype.str, list(v.shape), _b64(v.tobytes(order="C"))]}
    if np is not None and isinstance(v, np.generic):
        return {"$ng": [v.dtype.str, _b64(np.asarray(v).tobytes())]}
    if isinstance(v, enum.Enum):
        allow_type(t)  # this process made one, so it may read one back
        return {"$e": _type_path(t), "v": _to_tree(v.value)}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        allow_type(t)
        fields = {f.name: _to_tree(getattr(v, f.name)) for f in dataclasses.fields(v)}
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


def _from_tree(v: Any) -> Any:
    if type(v) is list:
        return [_from_tree(x) for x in v]
    if type(v) is not dict:
        return v
    if not v or not next(iter(v)).startswith("$"):
        return {k: _from_tree(x) for k, x in v.items()}
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
        return tuple(_from_tree(x) for x in body)
    if tag == "$d":
        return {_hashable(_from_tree(k)): _from_tree(x) for k, x in body}
    if tag == "$f":
        if body not in ("nan", "inf", "-inf"):
            raise CodecError(f"bad float {body!r}")
        return float(body)
    if tag == "$b":
        return _unb64(body)
    if tag == "$s":
        return {_hashable(_from_tree(x)) for x in body}
    if tag == "$fs":
        return frozenset(_hashable(_from_tree(x)) for x in body)
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
        return _known(body)(_from_tree(v["v"]))
    if tag == "$dc":
        cls = _known(body)
        if not dataclasses.is_dataclass(cls):
            raise CodecError(f"{body!r} is not a dataclass")
        values = {k: _from_tree(x) for k, x in v["f"].items()}
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


def entry_binding(
    key: str,
    check: str,
    tenant: str,
    user: str,
    fn: str,
    scope: str | None,
    *,
    text_h: bytes | None = None,
    embedder: bytes | None = None,
    text: bytes | None = None,
    embedding: bytes | None = None,
) -> bytes:
    """What a signature binds an entry to besides its value (length-prefixed parts).

    The keyword parts are the stored fields a semantic lookup trusts to decide a hit
    (raw bytes as stored, None when absent, which differs from empty): `text_h` decides
    `threshold=1.0` hits, `embedder` which vector space the entry is in, `text` what the
    guards and the changed-sentence check compare, `embedding` the similarity the KNN
    search computes. Altering any of them makes the entry a miss, never a hit."""
    parts = (key, check, tenant, user, fn, "" if scope is None else scope)
    out = []
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        out.append(b"%d:%s" % (len(data), data))
    for raw in (text_h, embedder, text):
        out.append(b"-" if raw is None else b"%d:%s" % (len(raw), raw))
    out.append(b"-" if embedding is None else hashlib.sha256(embedding).digest())
    return b"".join(out)


_CHECKSUM_HEADS = {c: b"".join((FORMAT_VERSION, b"\x00", c, b"\x00")) for c in (b"str", b"json")}


def checksum(codec: bytes, payload: bytes) -> bytes:
    """Integrity digest of an entry's envelope (XXH3-64 over format, codec, payload)."""
    head = _CHECKSUM_HEADS.get(codec) or b"".join((FORMAT_VERSION, b"\x00", codec, b"\x00"))
    h = xxhash.xxh3_64(head)  # streamed: the payload (up to megabytes) is never copied
    h.update(payload)
    digest: str = h.hexdigest()
    return digest.encode()


@dataclasses.dataclass(frozen=True)
class Encoded:
    """A result ready to be stored: codec name, payload, checksum, optional signature."""

    codec: bytes
    payload: bytes
    sig: bytes | None
    checksum: bytes


class Codec:
    """Encodes results for a shared store (Redis); the memory backend keeps objects."""

    def __init__(
        self,
        *,
        allow_pickle: bool = False,
        signing_key: str | bytes | None = None,
        max_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        if allow_pickle and not signing_key:
            raise CodecError("the pickle codec needs a signing key")
        key = signing_key.encode() if isinstance(signing_key, str) else signing_key
        self._key = key
        self._allow_pickle = allow_pickle
        self.max_bytes = max_bytes

    @property
    def signs(self) -> bool:
        """Are entries signed (and must the binding be read back to verify them)?"""
        return self._key is not None

    def _sign(self, codec: bytes, payload: bytes, binding: bytes) -> bytes | None:
        if self._key is None:
            return None
        msg = b"".join(
            (
                _SIGNATURE_CONTEXT,
                FORMAT_VERSION,
                b"\x00%d:%s%d:" % (len(codec), codec, len(payload)),
                payload,
                binding,
            )
        )
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest().encode()

    def encode(self, value: Any, binding: bytes = b"") -> Encoded:
        """Raises CodecError when the value cannot be stored (the caller still gets it)."""
        t = type(value)
        if t is str:
            codec, payload = b"str", value.encode("utf-8", "surrogatepass")
        elif t is bytes:
            codec, payload = b"bytes", value
        else:
            try:
                tree = _to_tree(value)
                codec = b"json"
                payload = json.dumps(
                    tree, ensure_ascii=False, separators=(",", ":"), allow_nan=False
                ).encode("utf-8", "surrogatepass")
            except (CodecError, RecursionError, ValueError) as exc:
                if not self._allow_pickle:
                    raise CodecError(
                        str(exc) if isinstance(exc, CodecError) else f"cannot encode result: {exc}"
                    ) from None
                try:
                    codec, payload = b"pickle", pickle.dumps(value, protocol=5)
                except Exception as pexc:
                    raise CodecError(f"result cannot be pickled: {pexc}") from None
        if len(payload) > self.max_bytes:
            raise CodecError(
                f"result is {len(payload)} bytes encoded, over CACHE_MAX_VALUE_BYTES="
                f"{self.max_bytes}"
            )
        sig = self._sign(codec, payload, binding)
        return Encoded(codec, payload, sig, checksum(codec, payload))

    def decode(
        self,
        fmt: bytes | None,
        codec: bytes | None,
        payload: bytes | None,
        sig: bytes | None,
        check_sum: bytes | None,
        binding: bytes = b"",
    ) -> Any:
        """Raises CodecError for anything it does not trust or understand. `binding`:
        `entry_binding(...)` of where the entry was found (checked when signing)."""
        if fmt != FORMAT_VERSION:
            raise CodecError(f"unknown entry format {fmt!r}")
        if codec is None or payload is None:
            raise CodecError("entry lacks its codec or payload")
        # A truncated payload or a swapped codec field can still parse -- as a different
        # value. The checksum makes any such damage a miss (the HMAC, when configured,
        # is what stops deliberate tampering).
        if check_sum is None or not hmac.compare_digest(check_sum, checksum(codec, payload)):
            raise CodecError("entry checksum is missing or does not match its payload")
        if self._key is not None:
            expected = self._sign(codec, payload, binding)
            if sig is None or expected is None or not hmac.compare_digest(sig, expected):
                raise CodecError("entry signature is missing or wrong (or the entry moved)")
        elif sig:
            raise CodecError("entry is signed but this cache has no CACHE_SIGNING_KEY")
        if codec == b"str":
            try:
                return payload.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError as exc:
                raise CodecError(f"bad text payload: {exc}") from None
        if codec == b"bytes":
            return payload
        if codec == b"json":
            try:
                tree = json.loads(payload)
            except (ValueError, RecursionError) as exc:
                raise CodecError(f"bad json payload: {exc}") from None
            return _from_tree(tree)
        if codec == b"pickle":
            # Reached only with a verified HMAC from our own key (checked above).
            if not self._allow_pickle or self._key is None:
                raise CodecError("pickled entry found but the pickle codec is not enabled")
            try:
                return pickle.loads(payload)  # noqa: S301 - HMAC-verified above
            except Exception as exc:
                raise CodecError(f"bad pickle payload: {exc}") from None
        raise CodecError(f"unknown codec {codec!r}")
