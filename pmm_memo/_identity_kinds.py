"""What kind of object a value is, for `_identity`: the classification its walk relies on.

Which objects are identified by what they *are* (functions, classes, partials, builtins:
"code-like"), which are immutable constants safe to read at decoration time, which class
attributes are housekeeping rather than behaviour, and the stable `module.qualname` every
token starts with. Pure functions of the object, no state and no I/O.
"""

from __future__ import annotations

import enum
import functools
import inspect
import re
import types
from collections.abc import Iterator
from typing import Any

__all__ = [
    "BUILTIN_CALLABLES",
    "CLASS_HOUSEKEEPING",
    "accessors",
    "enumerate_named",
    "home_of",
    "is_code_like",
    "is_constant",
    "python_call",
    "qualified_name",
]

BUILTIN_CALLABLES = (
    types.BuiltinFunctionType,  # also bound builtin methods ("a".upper)
    types.MethodDescriptorType,  # str.upper
    types.WrapperDescriptorType,  # str.__add__
    types.MethodWrapperType,  # "a".__add__
    types.ClassMethodDescriptorType,  # dict.__dict__["fromkeys"]
)
_SCALARS = (str, bytes, int, float, complex, bool, type(None))
# Class attributes that say where a class was written, not what it does.
CLASS_HOUSEKEEPING = frozenset(
    {
        "__dict__",
        "__weakref__",
        "__module__",
        "__qualname__",
        "__doc__",
        "__firstlineno__",
        "__static_attributes__",
        "__annotations__",
        "__orig_bases__",
        "__parameters__",
        "__slots__",
        "_abc_impl",
    }
)


def qualified_name(obj: Any) -> str:
    """`module.qualname`: readable, and stable across processes (unlike id() or repr())."""
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str):  # method descriptors: the module of their class
        module = getattr(getattr(obj, "__objclass__", None), "__module__", None) or "?"
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or "?"
    return f"{module}.{qualname}"


def is_constant(value: Any, depth: int = 0) -> bool:
    """Immutable values that are safe to read at decoration time: scalars, enum members,
    and tuples/frozensets of those."""
    if isinstance(value, (*_SCALARS, enum.Enum)):
        return True
    if type(value) in (tuple, frozenset) and depth < 8:
        return all(is_constant(item, depth + 1) for item in value)
    return False


_CODE_LIKE = (
    type,
    functools.partial,
    types.MethodType,
    classmethod,
    staticmethod,
    property,
    functools.cached_property,
    re.Pattern,
    *BUILTIN_CALLABLES,
)


def is_code_like(value: Any) -> bool:
    """Callables identified by what they are (code), not by an encoding of their state."""
    return (
        inspect.isfunction(value)
        or isinstance(value, _CODE_LIKE)
        or type(value).__module__ == "operator"  # itemgetter, attrgetter, methodcaller
    )


def enumerate_named(args: Any) -> Iterator[tuple[str, Any]]:
    for i, arg in enumerate(args if isinstance(args, tuple) else (args,)):
        yield f"args[{i}]", arg


def accessors(prop: property) -> list[Any]:
    return [prop.fget, prop.fset, prop.fdel]


def python_call(obj: Any) -> Any:
    """The Python `__call__` of an instance's class, or None (C callables, non-callables)."""
    if isinstance(obj, type):
        return None
    call = inspect.getattr_static(type(obj), "__call__", None)
    return call if inspect.isfunction(call) else None


def home_of(func: Any) -> str | None:
    """The module of what is decorated: through partials and bound methods to their
    function, through a callable instance to its class."""
    for _ in range(16):
        if isinstance(func, functools.partial):
            func = func.func
        elif isinstance(func, types.MethodType):
            func = func.__func__
        else:
            break
    module = getattr(func, "__module__", None)  # a callable instance: its class's
    return module if isinstance(module, str) else None
