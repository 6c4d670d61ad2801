"""What a decorated function (and the class a method is called through) *is*, for keys.

A result computed by different code must never be served. So the identity that goes into
every key is `module.qualname` plus a digest of everything that decides what the
function computes, collected once, at its first call (the hit path never sees this):

- **Its code**, layer by layer: the decorated object and every function along its
  `__wrapped__` chain (a `functools.wraps` decorator's wrapper has code and captured
  values of its own). Each layer's code is digested by `_code_digest` (source, plus
  bytecode for lambdas and other text that does not isolate the function).
- **Values it captured** (closure cells) and its default values, when they have a stable
  encoding (numbers, strings, containers, ...). Captured *callables* are identified the
  same way, recursively: a function by its code, closures, defaults and the constants it
  reads; a builtin or method descriptor by its qualified name (and the object it is bound
  to); a `functools.partial` by its function and bound arguments; a class by its
  identity; a callable instance by its class and state. Objects without a stable encoding
  (clients, connections) are left out (logged at DEBUG).
- **Whose code is digested**: the decorated function's own module, plus lambdas and
  nested functions or classes anywhere (a `<locals>` name does not pin its code).
  Functions and classes of other modules count by `module.qualname` and their captured
  values: reading a library's source would cost a lot at decoration time and re-key on
  every library upgrade.
- **Module-level names its code reads** (directly, or in nested functions and
  comprehensions), as bound at the function's *first call* (`_keys.KeyMaker` computes the
  identity then, so a global set in `if __name__ == "__main__":` counts): constants and
  plain data (str, bytes, numbers, bool, None, enum members, and tuples, lists, dicts,
  sets and frozensets of those: `_global_values`) by value; functions, classes and
  partials of the *same module* by their own identity (recursively, so a helper's
  globals count too); functions and classes of other modules by `module.qualname` only.
  Modules, instances (clients, loggers, locks: named in one DEBUG line) and names the
  function assigns itself are left out. With `version=` these are left out too.
- `version=` replaces every code digest (and the module-level names) with the given
  version; captured values, defaults, partial arguments and instance state still count,
  since they are data, not edits.

For methods the class through which the call is made is part of the key too
(`class_identity`): its `module.qualname`, its own attributes (methods by their identity,
immutable constants by value: factory-made classes of one qualname differ in those) and
the same for each base class in its MRO (builtins left out), so a subclass, another
program's class of the same name, or a class made by a factory with other values never
receives this class's answers.

Recursion is guarded against cycles and bounded (`_BUDGET` objects per identity); all of
it is stable across processes, directories and machines: no id(), hash() or paths in it.
"""

from __future__ import annotations

import functools
import inspect
import logging
import re
import types
from collections.abc import Callable, Iterator
from typing import Any

from ._code_digest import code_digest, code_facts, digest, global_names, normalised_source, own_code
from ._global_values import data_token
from ._identity_kinds import (
    BUILTIN_CALLABLES,
    CLASS_HOUSEKEEPING,
    accessors,
    enumerate_named,
    home_of,
    is_code_like,
    is_constant,
    python_call,
    qualified_name,
)

__all__ = [
    "class_identity",
    "code_digest",
    "function_identity",
    "normalised_source",
    "qualified_name",
]

logger = logging.getLogger("pmm_memo")

_BUDGET = 600  # objects described per identity: bounds decoration time on huge graphs
_MAX_DEPTH = 40


class _Walk:
    """One identity computation: a cycle guard, a budget, and memoised class digests."""

    def __init__(self, versioned: bool, home: str | None) -> None:
        self.versioned = versioned
        self.home = home  # the module whose code is digested (see `_is_home`)
        self.budget = _BUDGET
        self.path: set[int] = set()  # ids of objects being described (cycles only)
        self.classes: dict[type, str] = {}
        # Inside a class token only immutable values count: a class's identity is taken
        # at its first call, when mutable captured values (lists, recorders) may differ.
        self.frozen = False
        self.left_out: list[str] = []  # module-level names read but not in the identity

    def _is_home(self, obj: Any) -> bool:
        """Is `obj`'s code digested? Yes for the decorated function's own module, and for
        lambdas and nested functions or classes anywhere (their names do not pin their
        code); other modules' functions and classes count by name (and captured data)."""
        qualname = getattr(obj, "__qualname__", None)
        if isinstance(qualname, str) and "<" in qualname:
            return True
        return self.home is not None and getattr(obj, "__module__", None) == self.home

    # -- values (captured, default, bound, attributes) -------------------------------------

    def value(self, value: Any, name: str) -> bytes | None:
        """A value's stable token, or None (left out) when it has none."""
        if is_code_like(value):
            return self.describe(value).encode("utf-8", "surrogatepass")
        if self.frozen and not is_constant(value):
            if python_call(value) is not None:  # a callable instance: its class only
                return self.describe(value).encode("utf-8", "surrogatepass")
            return None
        from ._encoding import encode_value  # late: _encoding imports us lazily

        try:
            return encode_value(value, name)
        except Exception:  # unencodable, too deep, or a __cache_key__ that raised
            if python_call(value) is not None:  # a callable instance: class and state
                return self.describe(value).encode("utf-8", "surrogatepass")
        logger.debug(
            "%s (%s) has no stable encoding; left out of the cache identity",
            name,
            type(value).__qualname__,
        )
        return None

    def values(self, pairs: Iterator[tuple[str, Any]] | list[tuple[str, Any]]) -> str:
        """Digest of (name, value) pairs; unencodable ones are named but left out."""
        parts = []
        for name, value in pairs:
            token = self.value(value, name)
            parts.append(name.encode() + b"=" + (b"?" if token is None else token))
        return digest(b"\x00".join(parts))

    def state(self, obj: Any) -> str:
        """An object's state: its `__cache_key__()` when defined, else its attributes."""
        if getattr(type(obj), "__cache_key__", None) is not None:
            return self.values([("self", obj)])
        return self.values(sorted((getattr(obj, "__dict__", None) or {}).items()))

    # -- callables --------------------------------------------------------------------------

    def describe(self, obj: Any) -> str:
        """The identity token of a callable (or class), recursively; cycle-safe."""
        key = id(obj)
        if key in self.path:
            return "cycle:" + qualified_name(obj)
        if self.budget <= 0 or len(self.path) >= _MAX_DEPTH:
            logger.debug("cache identity: %s not digested (too large a graph)", obj)
            return "more:" + qualified_name(obj)
        self.budget -= 1
        self.path.add(key)
        try:
            return self._describe(obj)
        except Exception:  # odd objects (raising properties, ...) never fail decoration
            logger.debug("cache identity: %s could not be described", type(obj), exc_info=True)
            return "odd:" + qualified_name(type(obj))
        finally:
            self.path.discard(key)

    def _describe(self, obj: Any) -> str:
        if isinstance(obj, functools.partial):
            bound = [(f"args[{i}]", a) for i, a in enumerate(obj.args)]
            bound += sorted((f"kw[{k}]", v) for k, v in obj.keywords.items())
            return f"{self.describe(obj.func)}+partial:{self.values(bound)}"
        if isinstance(obj, types.MethodType):
            owner = obj.__self__
            if isinstance(owner, type):
                return f"{self.describe(obj.__func__)}+cls:{self.class_token(owner)}"
            return (
                f"{self.describe(obj.__func__)}+self:{qualified_name(type(owner))}:"
                f"{self.state(owner)}"
            )
        if isinstance(obj, classmethod | staticmethod):
            return f"{type(obj).__name__}:{self.describe(obj.__func__)}"
        if isinstance(obj, property):
            parts = ("-" if f is None else self.describe(f) for f in accessors(obj))
            return "property:" + ",".join(parts)
        if isinstance(obj, functools.cached_property):
            return "cached_property:" + self.describe(obj.func)
        if isinstance(obj, type):
            return "class:" + self.class_token(obj)
        if isinstance(obj, re.Pattern):
            return f"re:{digest(repr((obj.pattern, obj.flags)).encode())}"
        if type(obj) is types.FunctionType:
            return qualified_name(obj) + self.function_layer(obj)
        if inspect.isfunction(obj):  # a proxy (wrapt): what it wraps, under its own type
            inner = getattr(obj, "__wrapped__", None)
            # A decorated function names itself by a fixed label (see _wrapper).
            label = getattr(type(obj), "identity_label", None)
            return f"proxy:{label or qualified_name(type(obj))}<{self.describe(inner)}"
        if isinstance(obj, BUILTIN_CALLABLES):
            return "builtin:" + qualified_name(obj) + self._bound_to(obj)
        if type(obj).__module__ == "operator":
            return "operator:" + self._reduced(obj)
        return self._instance(obj)

    def function_layer(self, func: types.FunctionType) -> str:
        """`#code+env:..+def:..+glob:..` of one Python function, then `<` the identity of
        what it wraps (`functools.wraps`), if anything."""
        code = own_code(func)
        pinned = False  # are the defaults literals in the digested source?
        parts = []
        if not self.versioned and self._is_home(func):
            found, pinned = code_facts(func)
            parts.append("#" + found)
        cells = func.__closure__ or ()
        if code is not None and cells:
            captured = []
            for name, cell in zip(code.co_freevars, cells, strict=False):
                try:
                    captured.append((name, cell.cell_contents))
                except ValueError:
                    continue  # an empty cell (a name bound after the def)
            parts.append("+env:" + self.values(captured))
        defaults = [(f"d{i}", v) for i, v in enumerate(func.__defaults__ or ())]
        defaults += sorted((f"kw[{k}]", v) for k, v in (func.__kwdefaults__ or {}).items())
        # Defaults count unless the digested source spells them out as literals; with a
        # version, only in nested functions (`lambda x, k=k: ...` made per call of its
        # factory: data, not an edit).
        nested = "<" in func.__qualname__
        if defaults and not pinned and (nested or not self.versioned):
            parts.append("+def:" + self.values(defaults))
        if code is not None and not self.versioned and func.__module__ == self.home:
            found = self.module_names(func, code)
            if found:
                parts.append("+glob:" + found)
        wrapped = getattr(func, "__wrapped__", None)  # set by functools.wraps
        if wrapped is not None and wrapped is not func:
            parts.append("<" + self.describe(wrapped))
        return "".join(parts)

    def module_names(self, func: types.FunctionType, code: types.CodeType) -> str:
        """Digest of the module-level names `code` reads (see the module docstring)."""
        namespace = func.__globals__
        module = namespace.get("__name__")
        parts = []
        for name in global_names(code):
            if name not in namespace:
                continue  # a builtin, or not bound yet when the decorator runs
            value = namespace[name]
            if is_constant(value):
                token = self.value(value, name)
            elif isinstance(value, functools.partial) or (
                (inspect.isfunction(value) or isinstance(value, type))
                and getattr(value, "__module__", None) == module
            ):
                token = self.describe(value).encode("utf-8", "surrogatepass")
            elif is_code_like(value):
                token = ("name:" + qualified_name(value)).encode("utf-8", "surrogatepass")
            elif isinstance(value, types.ModuleType):
                continue  # modules: what the code calls in them counts by name
            else:  # mutable plain data by value (`_global_values`); instances left out
                token = data_token(value, name)
                if token is None:
                    self.left_out.append(f"{name} ({type(value).__qualname__})")
            if token is not None:
                parts.append(name.encode() + b"=" + token)
        return digest(b"\x00".join(parts)) if parts else ""

    def _bound_to(self, obj: Any) -> str:
        owner = getattr(obj, "__self__", None)
        if owner is None or isinstance(owner, types.ModuleType):
            return ""
        if isinstance(owner, type):
            return "+cls:" + qualified_name(owner)
        token = self.value(owner, "__self__")
        return "+self:" + (digest(token) if token is not None else "?")

    def _reduced(self, obj: Any) -> str:
        try:
            _, args = obj.__reduce__()[:2]
        except Exception:
            return qualified_name(type(obj))
        return f"{qualified_name(type(obj))}:{self.values(list(enumerate_named(args)))}"

    def _instance(self, obj: Any) -> str:
        """A callable instance: its class (code unless versioned) and its state; a C
        callable (lru_cache wrapper, ...) by its type; then what it wraps, if anything."""
        cls = type(obj)
        if python_call(obj) is not None:
            text = f"{qualified_name(cls)}.__call__#{self.class_token(cls, subject=True)}"
            if not self.frozen:
                text += "+state:" + self.state(obj)
        else:
            text = "callable:" + qualified_name(obj)
        wrapped = getattr(obj, "__wrapped__", None)
        if wrapped is not None and wrapped is not obj and not isinstance(obj, type):
            text += "<" + self.describe(wrapped)
        return text

    # -- classes ----------------------------------------------------------------------------

    def class_token(self, cls: type, subject: bool = False) -> str:
        """`module.qualname` + digest of its own attributes and its bases' (by name and
        own attributes), e.g. for `Sub(Base)`: Sub's methods and constants, then Base's.
        A class that is only referred to (not the `subject`, not home) counts by name."""
        known = self.classes.get(cls)
        if known is not None:
            return known
        if cls.__module__ == "builtins" or not (subject or self._is_home(cls)):
            return qualified_name(cls)
        self.classes[cls] = "cycle:" + qualified_name(cls)  # while its attributes are read
        parts = []
        frozen, self.frozen = self.frozen, True
        try:
            for klass in cls.__mro__:
                if klass.__module__ != "builtins":
                    parts.append(f"{qualified_name(klass)}={self._own_attributes(klass)}")
        finally:
            self.frozen = frozen
        whole = "\x00".join(parts).encode("utf-8", "surrogatepass")
        token = f"{qualified_name(cls)}:{digest(whole)}"
        self.classes[cls] = token
        return token

    def _own_attributes(self, cls: type) -> str:
        parts = []
        for name, member in sorted(vars(cls).items()):
            if name in CLASS_HOUSEKEEPING:
                continue
            if is_code_like(member) or python_call(member) is not None:
                token = self.describe(member)
            elif is_constant(member):
                found = self.value(member, name)
                token = "" if found is None else found.decode("utf-8", "surrogatepass")
            else:
                continue  # mutable containers and other objects: state, not identity
            parts.append(f"{name}={token}")
        return digest("\x00".join(parts).encode("utf-8", "surrogatepass"))


def function_identity(func: Callable[..., Any], version: str | None) -> str:
    """The identity hashed into keys: `module.qualname` then `@version` when given, then
    what the object is (see the module docstring): for a plain function
    `#<code digest>[+env:..][+def:..][+glob:..][<wrapped]`; a `functools.partial` adds
    `+partial:<bound arguments>`, a bound method `+self:<class>:<state>`, a callable
    instance `=<class>.__call__#<class token>+state:<state>`."""
    walk = _Walk(version is not None, home_of(func))
    head = qualified_name(func) + ("" if version is None else f"@{version}")
    if type(func) is types.FunctionType:
        walk.path.add(id(func))  # a closure referring to the function itself: a cycle
        found = head + walk.function_layer(func)
    else:
        found = f"{head}={walk.describe(func)}"
    if walk.left_out:
        logger.debug(
            "cache identity of %s: module-level names left out (not plain data): %s",
            head,
            ", ".join(sorted(set(walk.left_out))),
        )
    return found


def class_identity(cls: type, versioned: bool) -> bytes:
    """What a method's key records about the class it is called through: its
    `module.qualname` and the digest of its own and its bases' attributes (code digests
    left out when the function has an explicit version)."""
    walk = _Walk(versioned, cls.__module__)
    return walk.class_token(cls, subject=True).encode("utf-8", "surrogatepass")
