"""Digests of one function's *own* code, and the module-level names that code reads.

Used by `_identity` for every layer of a decorated function (wrappers included), so
nothing here unwraps: `inspect.getsourcelines(func)` would follow `__wrapped__` to the
innermost function and lose a decorator's own code, so the code object is asked instead.

- **Source** (`src:`): the text from the `def` line on (decorator lines above it left
  out), dedented, line endings normalised, trailing whitespace stripped; stable across
  directories, machines and Python versions.
- **Bytecode** (`pyc:`): instructions, constants, names, flags and nested code objects,
  tagged with the interpreter's cache tag (`cpython-311`). Used alone where there is no
  source, and *added* where the source text does not isolate the function: a lambda (two
  lambdas on one line share their line), or text that is not exactly one `def` of that
  name. Line numbers, file names and addresses never enter it.
"""

from __future__ import annotations

import ast
import dis
import hashlib
import inspect
import sys
import textwrap
import types
from typing import Any

_DIGEST_KEY = b"pmm_memo/code/v1"


def digest(data: bytes) -> str:
    """24 hex characters of keyed BLAKE2b: stable across processes, unlike hash()."""
    return hashlib.blake2b(data, digest_size=12, key=_DIGEST_KEY).hexdigest()


def own_code(func: Any) -> types.CodeType | None:
    """The code object of this very function (a wrapt proxy answers with the wrapped
    function's), never unwrapped; None for builtins and other objects."""
    code = getattr(func, "__code__", None)
    return code if isinstance(code, types.CodeType) else None


def _source_of(code: types.CodeType) -> str | None:
    try:
        lines, _ = inspect.getsourcelines(code)
    except Exception:  # OSError/TypeError normally; inspect can raise others on odd code
        return None
    return textwrap.dedent("".join(lines)).replace("\r\n", "\n").replace("\r", "\n")


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except Exception:  # ValueError, TypeError, RecursionError, ...
        return False
    return True


def _strip_decorators(text: str) -> tuple[str, ast.FunctionDef | ast.AsyncFunctionDef | None]:
    """(text from the `def` line on, the def when the text is exactly one def)."""
    try:
        body = ast.parse(text).body
    except SyntaxError:
        return text, None  # e.g. a lambda inside a larger expression: keep the lines
    node = body[0] if len(body) == 1 else None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return text, None
    if node.decorator_list:
        text = "\n".join(text.split("\n")[node.lineno - 1 :])
    return text, node


def _normalised(code: types.CodeType) -> tuple[str, bool, bool] | None:
    """(normalised text, does it isolate the function, are its defaults literals in it)."""
    text = _source_of(code)
    if text is None:
        return None
    text, node = _strip_decorators(text)
    text = "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")
    if node is None or node.name != code.co_name:
        return text, False, False
    defaults = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
    return text, True, all(_is_literal(d) for d in defaults)


def normalised_source(func: Any) -> str | None:
    """The function's own source from its `def` line on, normalised (see the module
    docstring); None when Python has no source for it."""
    code = own_code(func)
    found = None if code is None else _normalised(code)
    return None if found is None else found[0]


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
    return digest(b"|".join(out))


# Per code object (kept alive by the entry, so its id is never reused while memoised):
# classes and helpers shared by many decorated functions are read once per process.
_MEMO: dict[tuple[str, int], tuple[types.CodeType, Any]] = {}
_MEMO_LIMIT = 50_000


def _memoised(kind: str, code: types.CodeType, compute: Any) -> Any:
    found = _MEMO.get((kind, id(code)))
    if found is not None and found[0] is code:
        return found[1]
    result = compute(code)
    if len(_MEMO) >= _MEMO_LIMIT:
        _MEMO.clear()
    _MEMO[(kind, id(code))] = (code, result)
    return result


def code_digest(func: Any) -> str:
    """`src:<hex>`, `src:<hex>+pyc:<hex>` (source that does not isolate the function, a
    lambda), `pyc:<hex>` (no source) or `name` (no Python code: builtins)."""
    return code_facts(func)[0]


def code_facts(func: Any) -> tuple[str, bool]:
    """(`code_digest`, whether the digest pins the default values: True when each default
    is a literal in the digested source, e.g. `model="gpt-4o"`, and not an expression
    evaluated when the `def` ran, e.g. `lang=LANG` or a factory's `k=k`)."""
    code = own_code(func)
    if code is None:
        return "name", False
    result: tuple[str, bool] = _memoised("code", code, _code_facts)
    return result


def _code_facts(code: types.CodeType) -> tuple[str, bool]:
    found = _normalised(code)
    if found is None:
        return "pyc:" + bytecode_digest(code), False
    text, isolated, pinned = found
    src = "src:" + digest(text.encode("utf-8", "surrogatepass"))
    return (src, pinned) if isolated else (f"{src}+pyc:{bytecode_digest(code)}", False)


_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})
_STORES = frozenset({"STORE_GLOBAL", "DELETE_GLOBAL"})


def global_names(code: types.CodeType) -> list[str]:
    """Sorted module-level names the code (nested functions, lambdas and comprehensions
    included) reads and never changes: a name the function itself rebinds (`global n;
    n += 1`) or mutates in place (`CALLS[name] += 1`, `SEEN.append(x)`, `del CACHE[k]`,
    `STATE.x = 1`) is state, not configuration: its value at the first call would give
    every process and every run its own key."""
    result: list[str] = _memoised("globals", code, _global_names)
    return result


# Methods that change their object in place (list, dict, set, deque, Counter, ...).
_MUTATORS = frozenset(
    {
        "append", "appendleft", "extend", "extendleft", "insert", "pop", "popleft",
        "popitem", "remove", "clear", "update", "setdefault", "add", "discard", "sort",
        "reverse", "rotate", "subtract", "__setitem__", "__delitem__", "__iadd__",
    }
)  # fmt: skip
_SIMPLE_LOADS = frozenset({"LOAD_FAST", "LOAD_CONST", "LOAD_DEREF", "LOAD_GLOBAL", "LOAD_NAME"})


def _mutated(ins: list[dis.Instruction], i: int) -> str | None:
    """The module-level name instruction `i` mutates in place, if one is plain to see in
    CPython's usual shapes: `G.method(...)` with a mutator, `G[k] = v`, `del G[k]`,
    `G[k] op= v` (LOAD G, key, COPY 2, COPY 2), `G.attr = v`."""
    op = ins[i].opname
    if op in _LOADS and i + 1 < len(ins):
        after = ins[i + 1]
        if after.opname in ("LOAD_METHOD", "LOAD_ATTR") and after.argval in _MUTATORS:
            return str(ins[i].argval)
        shape = [x.opname for x in ins[i + 2 : i + 4]]
        if ins[i + 1].opname in _SIMPLE_LOADS and shape == ["COPY", "COPY"]:
            return str(ins[i].argval)
    if (
        op in ("STORE_SUBSCR", "DELETE_SUBSCR")
        and i >= 2
        and ins[i - 2].opname in _LOADS
        and ins[i - 1].opname in _SIMPLE_LOADS
    ):
        return str(ins[i - 2].argval)
    if op in ("STORE_ATTR", "DELETE_ATTR") and i >= 1 and ins[i - 1].opname in _LOADS:
        return str(ins[i - 1].argval)
    return None


def _global_names(code: types.CodeType) -> list[str]:
    loads: set[str] = set()
    stores: set[str] = set()
    pending = [code]
    while pending:
        current = pending.pop()
        instructions = list(dis.get_instructions(current))
        for i, ins in enumerate(instructions):
            if ins.opname in _LOADS:
                loads.add(ins.argval)
            elif ins.opname in _STORES:
                stores.add(ins.argval)
            mutated = _mutated(instructions, i)
            if mutated is not None:
                stores.add(mutated)
        pending.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return sorted(loads - stores)
