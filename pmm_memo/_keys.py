"""Turning a call into a cache key: bind arguments to the signature, encode, hash.

Pure and I/O-free. Binding is compiled once per function (`inspect.Signature.bind` costs
microseconds per call; the compiled binder is a few list operations), so the key for a
memory-backend hit stays within a few microseconds.

Key material = key scheme + function identity (`_identity`: module, qualified name and a
digest of the code, or the explicit version) + parameter names + for methods the class the
call goes through + each included argument's canonical encoding (see `_encoding`). It is
hashed twice:
- XXH3-128 (optionally seeded from CACHE_HASH_SECRET) -> the `<qhash>` of
  `cache:<tenant>:<qhash>`;
- keyed BLAKE2b-64 -> the `check` digest stored in the entry. A hit is accepted only when
  it matches, so an XXH3 collision (XXH3 is fast, not collision-resistant, and an attacker
  who controls prompts could search for one) is a miss, never another caller's answer.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import xxhash

from ._encoding import _EXACT, _encode, _Unencodable, encode_argument, encode_value
from ._errors import ConfigError
from ._identity import class_identity, function_identity, qualified_name

# Bumping this re-keys every entry; golden tests pin the current value.
# pmm2: function identity includes the code digest; methods include their class.
KEY_SCHEME = b"pmm2"
_CHECK_KEY = b"pmm_memo/check/v1"
_SCOPE_KEY = b"pmm_memo/scope/v1"


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def hash_seed(secret: str | None) -> int:
    """XXH3 seed from CACHE_HASH_SECRET (0 when unset, which keeps keys reproducible)."""
    if not secret:
        return 0
    return int.from_bytes(hashlib.blake2b(secret.encode(), digest_size=8).digest(), "big")


def qhash(material: bytes, seed: int = 0) -> str:
    """The 32-hex XXH3-128 digest used in keys."""
    digest: str = xxhash.xxh3_128_hexdigest(material, seed=seed)
    return digest


# Keyed states are set up once per key; copying one skips the key schedule on every hit.
_check_states: dict[bytes, Any] = {}


def check_digest(material: bytes, key: bytes = _CHECK_KEY) -> str:
    """Independent digest stored beside an entry to reject hash collisions (keyed
    BLAKE2b-64 of the key material)."""
    state = _check_states.get(key)
    if state is None:
        if len(_check_states) >= 16:  # one key per configured secret: a few at most
            _check_states.clear()
        state = _check_states[key] = hashlib.blake2b(digest_size=8, key=key)
    h = state.copy()
    h.update(material)
    digest: str = h.hexdigest()
    return digest


def short_digest(value: str, purpose: bytes = _SCOPE_KEY) -> str:
    """Hex digest of a string, used as an exact-match tag value for search filters."""
    return hashlib.blake2b(
        value.encode("utf-8", "surrogatepass"), digest_size=12, key=purpose
    ).hexdigest()


def scope_digest(material: bytes, key: bytes = _SCOPE_KEY) -> str:
    """Hex digest of a call's scope material (its non-text arguments)."""
    return hashlib.blake2b(material, digest_size=12, key=key).hexdigest()


class Digests:
    """The entry digests of one cache: check, function tag and scope tag.

    With CACHE_HASH_SECRET they are keyed by the secret as well as the exact key is
    seeded by it, so an entry written under another secret never verifies (exact) and
    is never found by a search (semantic: the function and scope filters differ).
    Without a secret they are the fixed-key digests (reproducible everywhere).
    """

    __slots__ = ("_check", "_scope")

    def __init__(self, secret: str | None) -> None:
        if secret:
            s = hashlib.blake2b(secret.encode("utf-8", "surrogatepass"), digest_size=32).digest()
            self._check = _CHECK_KEY + b"\x00" + s
            self._scope = _SCOPE_KEY + b"\x00" + s
        else:
            self._check, self._scope = _CHECK_KEY, _SCOPE_KEY

    def check(self, material: bytes) -> str:
        return check_digest(material, self._check)

    def fn(self, identity: str) -> str:
        """The `fn` tag of a function identity."""
        return short_digest(identity, self._scope)

    def scope(self, material: bytes) -> str:
        return scope_digest(material, self._scope)


def function_id(func: Callable[..., Any]) -> str:
    """`module.qualname`: stable across processes, unlike `id()` or `repr()`."""
    return qualified_name(func)


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


class KeyMaker:
    """Everything about a decorated function's keys, compiled at decoration time."""

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        version: str | None = None,
        ignore: Sequence[str] = (),
        text_arg: str | Callable[[dict[str, Any]], Any] | None = None,
        user_arg: str | None = None,
        custom_key: Callable[..., Any] | None = None,
    ) -> None:
        # A callable text_arg extracts the text itself (see _textarg); then no parameter
        # is "the text", and every argument is in the scope.
        self.text_fn = text_arg if callable(text_arg) else None
        text_arg = None if callable(text_arg) else text_arg
        # func_name is for people (CLI, logs); func_id is what keys hash (see _identity).
        self.func_name = function_id(func) + (f"@{version}" if version is not None else "")
        self.func_id = function_identity(func, version)
        self.versioned = version is not None
        self._owners: dict[tuple[bool, type], bytes] = {}
        self._owner_parts: dict[type, bytes] = {}
        params = list(inspect.signature(func).parameters.values())
        self._full = _CompiledSignature.compile(params)
        # Bound methods/classmethods arrive without their first parameter.
        self._bound = _CompiledSignature.compile(params[1:]) if params else self._full
        all_names = self._full.all_names
        for name in ignore:
            if name not in all_names:
                raise ConfigError(
                    f"ignore={tuple(ignore)!r}: {func.__qualname__} has no parameter {name!r}"
                )
        for option, chosen in (("text_arg", text_arg), ("user_arg", user_arg)):
            if chosen is not None and chosen not in all_names:
                raise ConfigError(
                    f"{option}={chosen!r}: {func.__qualname__} has no parameter {chosen!r} "
                    f"(parameters: {', '.join(all_names)})"
                )
        self.ignore = frozenset(ignore)
        first_data = self._first_data_param(params)
        self.text_arg: str | None = text_arg if text_arg is not None else first_data
        if self.text_fn is not None:
            self.text_arg = None
        if user_arg is None:
            user_arg = next((n for n in ("user_id", "user") if n in all_names), None)
        self.user_arg = user_arg
        self.custom_key = custom_key
        self._plans = {
            False: self._plan(self._full),
            True: self._plan(self._bound),
        }

    @staticmethod
    def _first_data_param(params: list[inspect.Parameter]) -> str | None:
        for p in params:
            if p.name in ("self", "cls"):
                continue
            return p.name
        return None

    def _plan(self, sig: _CompiledSignature) -> _Plan:
        names = sig.all_names
        included = tuple(i for i, n in enumerate(names) if n not in self.ignore)
        header = b"%s|%d:%s|%s" % (
            KEY_SCHEME,
            len(self.func_id.encode()),
            self.func_id.encode(),
            ",".join(names[i] for i in included).encode(),
        )
        text_pos = names.index(self.text_arg) if self.text_arg in names else None
        user_pos = names.index(self.user_arg) if self.user_arg in names else None
        return _Plan(sig, included, names, header, text_pos, user_pos, self.custom_key is None)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any], bound: bool) -> BoundCall | None:
        plan = self._plans[bound]
        values = plan.sig.bind(args, kwargs)
        if values is None:
            return None
        return BoundCall(self, plan, values)

    def plan(self, bound: bool) -> _Plan:
        return self._plans[bound]

    def owner_part(self, instance: Any) -> bytes:
        """The key part naming the class a method is called through: `cls` for a
        classmethod, `type(self)` for an instance method (see `_identity.class_identity`)."""
        cls = instance if isinstance(instance, type) else type(instance)
        part = self._owner_parts.get(cls)
        if part is None:  # once per class: a class identity reads the class's code
            if len(self._owner_parts) > 4096:  # classes made at run time: bounded
                self._owner_parts.clear()
            ident = class_identity(cls, self.versioned)
            part = self._owner_parts[cls] = b"|cls|%d:%s" % (len(ident), ident)
        return part

    def method_head(self, bound: bool, instance: Any) -> bytes:
        """Header + class part + separator for a method call (cached per class)."""
        cls = instance if isinstance(instance, type) else type(instance)
        head = self._owners.get((bound, cls))
        if head is None:
            if len(self._owners) > 4096:  # classes made at run time: never grow unbounded
                self._owners.clear()
            head = self._plans[bound].header + self.owner_part(instance) + b"|"
            self._owners[(bound, cls)] = head
        return head


@dataclass(frozen=True)
class _Plan:
    sig: _CompiledSignature
    included: tuple[int, ...]
    names: tuple[str, ...]
    header: bytes
    text_pos: int | None
    user_pos: int | None
    plain: bool  # no custom key function: material is header + arguments
    header_sep: bytes = b""

    def __post_init__(self) -> None:
        object.__setattr__(self, "header_sep", self.header + b"|")


def _heads(make: Callable[[int], Any], unit: bytes, limit: int) -> list[bytes]:
    """Length prefixes as the generic encoder writes them, taken from its own output for
    values of 0..limit-1 units: what `make(n)` encodes to, minus its n units of content.
    Formatting `b"s%d:"` per element costs more than encoding the element."""
    heads = []
    for n in range(limit):
        encoded = encode_value(make(n))
        heads.append(encoded[: len(encoded) - n * len(unit)])
    return heads


_UNIT = encode_value("a")
_STR_HEAD = _heads(lambda n: "a" * n, b"a", 128)
_SMALL_INT = [encode_value(i) for i in range(256)]  # counts, indexes, top_k, max_tokens...
_SEQ_HEAD = {
    list: _heads(lambda n: ["a"] * n, _UNIT, 32),
    tuple: _heads(lambda n: ("a",) * n, _UNIT, 32),
}


def _str_sequence(v: list[Any] | tuple[Any, ...], out: list[bytes]) -> bool:
    """A short list/tuple of plain str (retrieved passages, stop words, message texts):
    the generic encoder's bytes without its per-element dispatch and cycle bookkeeping
    (a sequence of str cannot contain itself). False, leaving `out` as it was, for
    anything else."""
    heads = _SEQ_HEAD[type(v)]
    if len(v) >= len(heads):
        return False
    start = len(out)
    out.append(heads[len(v)])
    for item in v:
        if type(item) is not str:
            del out[start:]
            return False
        data = item.encode("utf-8", "surrogatepass")
        n = len(data)
        out.append(_STR_HEAD[n] if n < 128 else b"s%d:" % n)
        out.append(data)
    return True


def encode_included(values: list[Any], included: tuple[int, ...]) -> bytes | None:
    """All included arguments in one pass: the hot path of every cache hit.

    Produces exactly the concatenation of the per-argument encodings (a property test
    pins the fast paths to the generic encoder); returns None when an argument cannot
    be encoded, so the caller can take the slow path that names it.
    """
    out: list[bytes] = []
    try:
        for i in included:
            v = values[i]
            t = type(v)
            if t is str:  # inlined _enc_str: prompts are the common case
                data = v.encode("utf-8", "surrogatepass")
                n = len(data)
                out.append(_STR_HEAD[n] if n < 128 else b"s%d:" % n)
                out.append(data)
                continue
            if t is int and 0 <= v < 256:
                out.append(_SMALL_INT[v])
                continue
            if (t is list or t is tuple) and _str_sequence(v, out):
                continue
            encoder = _EXACT.get(t)
            if encoder is not None:
                encoder(v, out, None)
            else:
                _encode(v, out, None)
    except (_Unencodable, RecursionError):
        return None
    return b"".join(out)


class BoundCall:
    """One call's bound arguments; computes key material on demand, at most once."""

    __slots__ = ("_maker", "_owner", "_plan", "_segments", "_self_obj", "values")

    def __init__(self, maker: KeyMaker, plan: _Plan, values: list[Any]) -> None:
        self._maker = maker
        self._plan = plan
        self.values = values
        self._segments: list[bytes] | None = None
        self._self_obj: Any = MISSING
        self._owner = b""

    def with_instance(self, instance: Any) -> BoundCall:
        """A method call: the class it goes through is part of the key; the instance
        itself only when it defines `__cache_key__()`."""
        self._owner = self._maker.owner_part(instance)
        if getattr(type(instance), "__cache_key__", None) is not None:
            self._self_obj = instance
        return self

    def _encode_segments(self) -> list[bytes]:
        """One encoding per included argument (the scope needs them apart)."""
        if self._segments is None:
            names = self._plan.names
            segments = []
            for i in self._plan.included:
                out: list[bytes] = []
                encode_argument(names[i], self.values[i], out)
                segments.append(b"".join(out))
            self._segments = segments
        return self._segments

    def material(self) -> bytes:
        """The exact-key material (what the two digests are taken over)."""
        plan = self._plan
        if self._self_obj is MISSING and plan.plain and not self._owner:
            return plan.header_sep + self._arguments()
        head = self._head()
        if self._maker.custom_key is not None:
            args, kwargs = self.call_args()
            out: list[bytes] = []
            encode_argument("key()", self._maker.custom_key(*args, **kwargs), out)
            return head + b"|custom|" + b"".join(out)
        return head + b"|" + self._arguments()

    def _head(self) -> bytes:
        """Header, class (methods) and the instance's `__cache_key__()` (when defined)."""
        head = self._plan.header + self._owner
        if self._self_obj is not MISSING:
            out: list[bytes] = []
            encode_argument("self", self._self_obj, out)
            head = head + b"|self|" + b"".join(out)
        return head

    def _arguments(self) -> bytes:
        if self._segments is not None:
            return b"".join(self._segments)
        encoded = encode_included(self.values, self._plan.included)
        if encoded is None:
            return b"".join(self._encode_segments())  # raises, naming the parameter
        return encoded

    def scope_material(self, replace: Callable[[Any], Any] | None = None) -> bytes:
        """Material of every included argument except the text argument: calls that
        differ only in their text share a scope, and only they may answer each other.
        `replace` (a `text_arg` callable's text taken out) maps each value first."""
        plan = self._plan
        parts = [self._head(), b"|scope|"]
        if replace is not None:
            for i in plan.included:
                out: list[bytes] = []
                encode_argument(plan.names[i], replace(self.values[i]), out)
                parts.append(b"".join(out))
            return b"".join(parts)
        for seg, i in zip(self._encode_segments(), plan.included, strict=True):
            if i != plan.text_pos:
                parts.append(seg)
        return b"".join(parts)

    def arguments(self) -> dict[str, Any]:
        """The bound arguments by name, defaults applied (what a text_arg callable gets)."""
        return dict(zip(self._plan.names, self.values, strict=True))

    @property
    def text(self) -> Any:
        pos = self._plan.text_pos
        return None if pos is None else self.values[pos]

    @property
    def user(self) -> Any:
        pos = self._plan.user_pos
        return None if pos is None else self.values[pos]

    def call_args(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The bound arguments as (args, kwargs) that re-create the call (for `key=`)."""
        sig = self._plan.sig
        args: tuple[Any, ...] = tuple(self.values[: sig.npos])
        kwargs = dict(
            zip(sig.names[sig.npos :], self.values[sig.npos : len(sig.names)], strict=True)
        )
        idx = len(sig.names)
        if sig.var_positional is not None:
            args += self.values[idx]
            idx += 1
        if sig.var_keyword is not None:
            kwargs.update(self.values[idx])
        return args, kwargs
