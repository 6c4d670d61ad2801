"""What a decorated function (and the class a method is called through) *is*, for keys.

A result computed by different code must never be served. So the identity that goes into
every key is `module.qualname` plus a digest of the code, like joblib.Memory does:

- **Source** (the normal case, notebooks included): the function's own source text from
  its `def` line on (decorator lines above it are left out, so changing `ttl=` does not
  re-key), dedented, line endings normalised, trailing whitespace stripped. Anything else
  inside the function's text counts: body, signature, defaults, docstring, comments.
  The file's path, the working directory, the line number and the indentation do not,
  so the same script run from another directory or machine keeps its keys, while two
  different scripts (both `__main__.summarize`) or an edited body never share them.
- **Bytecode** when there is no source (`python -c`, `exec`, frozen apps, `.pyc`-only
  installs): a digest of the code object (instructions, constants, names, flags,
  nested code objects) tagged with the interpreter's cache tag (`cpython-311`), because
  bytecode differs between Python versions; such keys change on a Python upgrade.
- **Name only** for callables without Python code (builtins, C extensions): nothing
  more can be known; logged at DEBUG.
- **Closures**: values a nested function captures from its enclosing function are part of
  its identity when they have a stable encoding (numbers, strings, containers, ...;
  functions and classes by their own identity), so `make_summarizer("en")` and
  `make_summarizer("fr")` never share entries. Captured objects without one (clients,
  connections) are left out (logged at DEBUG).

Helpers the function calls are not digested (only the function itself); an explicit
`version=` replaces the code digest entirely, for entries that must survive edits.

For methods the class through which the call is made is part of the key too
(`class_identity`): its `module.qualname` plus, unless `version=` is given, a digest of
the code of its own methods, so a subclass or another program's class of the same name
never receives this class's answers.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import logging
import sys
import textwrap
import types
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("pmm_memo")

_DIGEST_KEY = b"pmm_memo/code/v1"


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12, key=_DIGEST_KEY).hexdigest()


def _unwrap(func: Any) -> Any:
    """`inspect.unwrap`, tolerating a `__wrapped__` cycle (then: the object itself)."""
    try:
        return inspect.unwrap(func)
    except ValueError:
        return func


def qualified_name(obj: Any) -> str:
    """`module.qualname`: readable, and stable across processes (unlike id() or repr())."""
    module = getattr(obj, "__module__", None) or "?"
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or "?"
    return f"{module}.{qualname}"


def normalised_source(func: Callable[..., Any]) -> str | None:
    """The function's source from its `def` line on, normalised (see module docstring);
    None when Python has no source for it."""
    try:
        lines, _ = inspect.getsourcelines(func)
    except Exception:  # OSError/TypeError normally; inspect can raise others on odd code
        return None
    text = textwrap.dedent("".join(lines)).replace("\r\n", "\n").replace("\r", "\n")
    try:
        node = ast.parse(text).body[0]
    except (SyntaxError, IndexError):
        node = None  # e.g. a lambda inside a larger expression: keep the lines as they are
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.decorator_list:
        text = "\n".join(text.split("\n")[node.lineno - 1 :])
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def _const(value: Any, out: list[bytes]) -> None:
    """Constants of a code object, without hash-order or address dependence."""
    if isinstance(value, types.CodeType):
        out.append(b"code:" + bytecode_digest(value).encode())
    elif isinstance(value, tuple):
        out.append(b"(%d" % len(value))
        for item in value:
            _const(item, out)
    elif isinstance(value, frozenset):
        parts = []
        for item in value:
            sub: list[bytes] = []
            _const(item, sub)
            parts.append(b"".join(sub))
        out.append(b"{%d" % len(parts) + b"".join(sorted(parts)))
    else:
        text = f"{type(value).__name__}:{value!r}".encode("utf-8", "surrogatepass")
        out.append(b"%d:" % len(text) + text)


def bytecode_digest(code: types.CodeType) -> str:
    """Digest of what a code object does, independent of file, line and memory address."""
    out: list[bytes] = [sys.implementation.cache_tag.encode(), code.co_code]
    for names in (code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars):
        out.append(("\x00".join(names) + "\x01").encode("utf-8", "surrogatepass"))
    out.append(
        b"%d,%d,%d,%d"
        % (code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags)
    )
    _const(code.co_consts, out)
    return _digest(b"|".join(out))


def code_digest(func: Callable[..., Any]) -> str:
    """`src:<hex>`, `pyc:<hex>` or `name` (see the module docstring for when each)."""
    source = normalised_source(func)
    if source is not None:
        return "src:" + _digest(source.encode("utf-8", "surrogatepass"))
    code = getattr(_unwrap(func), "__code__", None)
    if isinstance(code, types.CodeType):
        return "pyc:" + bytecode_digest(code)
    logger.debug(
        "no source or bytecode for %s: its cache identity is its name alone",
        qualified_name(func),
    )
    return "name"


def _closure_part(func: Callable[..., Any]) -> str:
    """Digest of the encodable values `func` captured from enclosing functions."""
    target = _unwrap(func)
    cells = getattr(target, "__closure__", None)
    code = getattr(target, "__code__", None)
    if not cells or code is None:
        return ""
    from ._encoding import encode_value  # late: _encoding imports nothing from here

    parts: list[bytes] = []
    for name, cell in zip(code.co_freevars, cells, strict=False):
        try:
            value = cell.cell_contents
        except ValueError:
            continue  # an empty cell (e.g. a name bound after the def): nothing to capture
        if value is target or value is func:
            continue  # a recursive reference to itself
        if inspect.isfunction(value) or isinstance(value, type):
            data = (qualified_name(value) + "#" + _code_of(value)).encode()
        else:
            try:
                data = encode_value(value, name)
            except Exception:  # unencodable, too deep, or a __cache_key__ that raised
                logger.debug(
                    "captured variable %r of %s has no stable encoding; left out of its "
                    "cache identity",
                    name,
                    qualified_name(func),
                )
                continue
        parts.append(name.encode() + b"=" + data)
    return "+env:" + _digest(b"\x00".join(parts)) if parts else ""


def _code_of(value: Any) -> str:
    if isinstance(value, type):
        return "" if value.__module__ == "builtins" else _class_code(value)
    return code_digest(value)


def _encoded_parts(owner: Any, values: list[tuple[str, Any]]) -> bytes:
    """Encodable (name, value) pairs; the others are named but left out (logged)."""
    from ._encoding import encode_value

    parts = []
    for name, value in values:
        try:
            parts.append(name.encode() + b"=" + encode_value(value, name))
        except Exception:  # unencodable, too deep, or a __cache_key__ that raised
            logger.debug("%s of %r has no stable encoding; left out of its identity", name, owner)
            parts.append(name.encode() + b"=?")
    return b"\x00".join(parts)


def _object_state(obj: Any) -> str:
    """What a decorated object (callable instance, a bound method's `self`) carries:
    its `__cache_key__()` when defined, else its encodable attributes."""
    if getattr(type(obj), "__cache_key__", None) is not None:
        return _digest(_encoded_parts(obj, [("self", obj)]))
    attrs = sorted((getattr(obj, "__dict__", None) or {}).items())
    return _digest(_encoded_parts(obj, attrs))


def function_identity(func: Callable[..., Any], version: str | None) -> str:
    """The identity hashed into keys: `module.qualname@version` when a version is given,
    else `module.qualname#<code digest>[+env:<closure digest>]`.

    Decorated objects that are not plain functions carry what they are bound to:
    a `functools.partial` its bound arguments, a bound method its `self`, a callable
    instance its class's code and its state (`__cache_key__()` or encodable attributes).
    """
    if isinstance(func, functools.partial):
        bound = [(f"args[{i}]", a) for i, a in enumerate(func.args)]
        bound += sorted((f"kw[{k}]", v) for k, v in func.keywords.items())
        inner = function_identity(func.func, version)
        return f"{inner}+partial:{_digest(_encoded_parts(func, bound))}"
    if inspect.ismethod(func):
        owner = qualified_name(type(func.__self__))
        inner = function_identity(func.__func__, version)
        return f"{inner}+self:{owner}:{_object_state(func.__self__)}"
    target = _unwrap(func)
    is_instance = not (
        inspect.isfunction(target) or inspect.isbuiltin(target) or isinstance(target, type)
    )
    if is_instance and inspect.isfunction(inspect.getattr_static(type(target), "__call__", None)):
        cls = type(target)
        name = qualified_name(cls) + ".__call__"
        code = "" if version is not None else "#" + _class_code(cls)
        tag = f"@{version}" if version is not None else ""
        return f"{name}{tag}{code}+state:{_object_state(target)}"
    name = qualified_name(func)
    if version is not None:
        return f"{name}@{version}"
    return f"{name}#{code_digest(func)}{_closure_part(func)}"


def _functions_of(member: Any) -> list[Callable[..., Any]]:
    """The Python functions behind a class attribute (methods, properties, wrappers)."""
    if isinstance(member, property):
        return [f for f in (member.fget, member.fset, member.fdel) if f is not None]
    seen = 0
    while seen < 8:  # unwrap classmethod/staticmethod and decorator wrappers (ours too)
        seen += 1
        if isinstance(member, classmethod | staticmethod):
            member = member.__func__
        elif hasattr(member, "__wrapped__") and not isinstance(member, type):
            member = member.__wrapped__
        else:
            break
    return [member] if inspect.isfunction(member) else []


def _class_code(cls: type) -> str:
    parts = []
    for name in sorted(vars(cls)):
        for i, fn in enumerate(_functions_of(vars(cls)[name])):
            parts.append(f"{name}/{i}={code_digest(fn)}")
    return _digest("\n".join(parts).encode("utf-8", "surrogatepass"))


def class_identity(cls: type, versioned: bool) -> bytes:
    """What a method's key records about the class it is called through: its
    `module.qualname`, plus (unless the function has an explicit version) a digest of the
    code of the methods the class itself defines."""
    name = qualified_name(cls)
    if versioned:
        return name.encode("utf-8", "surrogatepass")
    return f"{name}#{_class_code(cls)}".encode("utf-8", "surrogatepass")
