"""Turning a call into a cache key: bind arguments to the signature, encode, hash.

Pure and I/O-free. Binding is compiled once per function (`_binding`) and the common
argument shapes are encoded in one pass (`_encode_fast`), so the key for a memory-backend
hit stays within a few microseconds.

Key material = key scheme + function identity (`_identity`: module, qualified name and a
digest of the code, or the explicit version) + parameter names + for methods the class the
call goes through + each included argument's canonical encoding (see `_encoding`). It is
hashed twice (`_digests`):
- XXH3-128 (optionally seeded from CACHE_HASH_SECRET) -> the `<qhash>` of
  `cache:<tenant>:<qhash>`;
- keyed BLAKE2b-64 -> the `check` digest stored in the entry. A hit is accepted only when
  it matches, so an XXH3 collision (XXH3 is fast, not collision-resistant, and an attacker
  who controls prompts could search for one) is a miss, never another caller's answer.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ._binding import MISSING, _CompiledSignature
from ._encode_fast import encode_included
from ._encoding import encode_argument
from ._errors import ConfigError
from ._identity import class_identity, function_identity, qualified_name

# Bumping this re-keys every entry; golden tests pin the current value.
# pmm2: function identity includes the code digest; methods include their class.
KEY_SCHEME = b"pmm2"
logger = logging.getLogger("pmm_memo")


def function_id(func: Callable[..., Any]) -> str:
    """`module.qualname`: stable across processes, unlike `id()` or `repr()`."""
    return qualified_name(func)


# One re-entrant lock for first-call identities (a `__cache_key__` read while describing
# captured objects may call another cached function); re-created in a forked child, where
# a thread that held it does not exist.
_RESOLVING = threading.RLock()


def _fresh_lock_in_child() -> None:
    global _RESOLVING
    _RESOLVING = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_lock_in_child)


def _identity_or_unique(func: Callable[..., Any], version: str | None, name: str) -> str:
    """The function identity; if computing it fails (it never should: `_identity` guards
    every object it reads), one unique to this process, so a cache failure never breaks
    the call and never shares an entry it cannot vouch for."""
    try:
        return function_identity(func, version)
    except Exception:
        logger.warning(
            "cache identity of %s could not be computed; its entries stay private to this process",
            name,
            exc_info=True,
        )
        return f"{name}#unresolved:{os.urandom(12).hex()}"


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
        # func_name is for people (CLI, logs); func_id is what keys hash (see _identity),
        # computed at the first call (`_resolve`), not here.
        self.func_name = function_id(func) + (f"@{version}" if version is not None else "")
        self._func = func
        self._version = version
        self.versioned = version is not None
        self._owners: dict[tuple[bool, type], bytes] = {}
        self._owner_parts: dict[type, bytes] = {}
        params = list(inspect.signature(func).parameters.values())
        self._full = _CompiledSignature.compile(params)
        self.signature = self._full  # the whole signature (no identity needed to read it)
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
        # The identity reads the module-level data the function reads (`_identity`), so
        # it is taken at the first call, when a global bound after the decorator ran (in
        # `if __name__ == "__main__":`) exists: until then `plan` resolves; afterwards
        # it is the plain lookup `plans[bound]` (the hit path pays nothing more). So
        # nothing may ask for a plan or `func_id` at decoration (tests/test_global_values).
        self._once: dict[str, tuple[str, dict[bool, _Plan]]] = {}
        self.plan: Callable[[bool], _Plan] = self._first_plan

    def _resolve(self) -> tuple[str, dict[bool, _Plan]]:
        """(function identity, plans), computed once, under `_RESOLVING`: threads racing
        on the first call must not parse source at once (`ast.parse` in concurrent
        threads raises SystemError "AST constructor recursion depth mismatch" on CPython
        3.11), and all of them must use one identity."""
        found = self._once.get("resolved")
        if found is None:
            with _RESOLVING:
                found = self._once.get("resolved")
                if found is None:
                    func_id = _identity_or_unique(self._func, self._version, self.func_name)
                    plans = {
                        False: self._plan(self._full, func_id),
                        True: self._plan(self._bound, func_id),
                    }
                    found = self._once.setdefault("resolved", (func_id, plans))
            self.plan = found[1].__getitem__
        return found

    def _first_plan(self, bound: bool) -> _Plan:
        return self._resolve()[1][bound]

    @property
    def func_id(self) -> str:
        """The function identity hashed into keys (see `_identity`); resolves it."""
        return self._resolve()[0]

    @staticmethod
    def _first_data_param(params: list[inspect.Parameter]) -> str | None:
        for p in params:
            if p.name in ("self", "cls"):
                continue
            return p.name
        return None

    def _plan(self, sig: _CompiledSignature, func_id: str) -> _Plan:
        names = sig.all_names
        included = tuple(i for i, n in enumerate(names) if n not in self.ignore)
        fid = func_id.encode("utf-8", "surrogatepass")  # a qualname may hold anything
        header = b"%s|%d:%s|%s" % (
            KEY_SCHEME,
            len(fid),
            fid,
            ",".join(names[i] for i in included).encode(),
        )
        text_pos = names.index(self.text_arg) if self.text_arg in names else None
        user_pos = names.index(self.user_arg) if self.user_arg in names else None
        return _Plan(sig, included, names, header, text_pos, user_pos, self.custom_key is None)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any], bound: bool) -> BoundCall | None:
        plan = self.plan(bound)
        values = plan.sig.bind(args, kwargs)
        if values is None:
            return None
        return BoundCall(self, plan, values)

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
            head = self.plan(bound).header + self.owner_part(instance) + b"|"
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
    width: int = 0  # how many named parameters (values a positional call binds)
    all_included: bool = False  # nothing ignored: the values are encoded as they are

    def __post_init__(self) -> None:
        object.__setattr__(self, "header_sep", self.header + b"|")
        object.__setattr__(self, "width", len(self.sig.names))
        object.__setattr__(self, "all_included", self.included == tuple(range(len(self.names))))


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
        text_pos = plan.text_pos
        if self._segments is None and text_pos is not None and type(self.values[text_pos]) is str:
            # A str always encodes: left out without encoding it (a prompt can be long).
            for i in plan.included:
                if i != text_pos:
                    out = []
                    encode_argument(plan.names[i], self.values[i], out)
                    parts.append(b"".join(out))
            return b"".join(parts)
        for seg, i in zip(self._encode_segments(), plan.included, strict=True):
            if i != text_pos:
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
