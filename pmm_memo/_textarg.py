"""Where an embedding function's text comes from, checked at decoration time.

`text_arg` names a parameter (default: the first one), or is a callable that takes the
bound arguments as a dict `{name: value}` (defaults applied, `self`/`cls` left out) and
returns the text, e.g. the last user message of a chat:

    @semantic_lookup(text_arg=lambda a: a["messages"][-1]["content"])
    def chat(messages: list[dict[str, str]], model: str) -> str: ...

With a callable, *everything else* is the scope: every argument, with the returned text
object replaced by a marker wherever it occurs (found by identity inside lists, tuples
and dicts). Two chats with the same history, model and settings whose last messages are
near-duplicates may answer each other; a different earlier message never does. When the
text is not found in the arguments (the callable built a new string), the scope holds
the whole arguments, so only the same call matches: logged once.

A named text parameter whose annotation rules out `str` (`messages: list[dict]`) is a
ConfigError at decoration time; without an annotation that says so, a non-str text at
call time means exact matching only, logged once per function.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from ._errors import ConfigError

_MAX_DEPTH = 32  # containers nested deeper than this are left as they are (whole in scope)


class _TextMarker:
    """Stands in the scope for the text a `text_arg` callable extracted."""

    __slots__ = ()

    def __cache_key__(self) -> str:
        return "semantic text"


TEXT_MARKER = _TextMarker()


def replace_text(value: Any, text: Any, depth: int = 0) -> tuple[Any, bool]:
    """`value` with every occurrence of the object `text` replaced by TEXT_MARKER, and
    whether there was one. Only exact list/tuple/dict are rebuilt (their encodings do
    not depend on identity); anything else is kept whole."""
    if value is text:
        return TEXT_MARKER, True
    kind = type(value)
    if depth >= _MAX_DEPTH or kind not in (list, tuple, dict):
        return value, False
    if kind is dict:
        found = False
        out: dict[Any, Any] = {}
        for k, v in value.items():
            nv, hit = replace_text(v, text, depth + 1)
            out[k] = nv
            found = found or hit
        return (out if found else value), found
    items = []
    found = False
    for v in value:
        nv, hit = replace_text(v, text, depth + 1)
        items.append(nv)
        found = found or hit
    return (kind(items) if found else value), found


def may_be_str(annotation: Any) -> bool | None:
    """Does an annotation allow a str? None when it cannot tell (no annotation, a
    string annotation that did not resolve, a TypeVar, ...)."""
    if annotation is inspect.Parameter.empty or annotation is Any or annotation is object:
        return True
    if isinstance(annotation, str | typing.TypeVar | typing.ForwardRef):
        return None
    supertype = getattr(annotation, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        return may_be_str(supertype)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return may_be_str(typing.get_args(annotation)[0])
    if origin is typing.Union or isinstance(annotation, types.UnionType):
        answers = [may_be_str(a) for a in typing.get_args(annotation)]
        if any(a is True for a in answers):
            return True
        return False if all(a is False for a in answers) else None
    if origin is typing.Literal:
        return any(isinstance(a, str) for a in typing.get_args(annotation))
    if annotation is typing.LiteralString:
        return True
    cls = origin if isinstance(origin, type) else annotation
    if isinstance(cls, type):
        # str passes `Sequence`, `Hashable`, `Iterable`...; a str subclass is a str.
        return issubclass(str, cls) or issubclass(cls, str)
    return None


def check_text_param(func: Callable[..., Any], name: str | None, option: str) -> None:
    """ConfigError when the text parameter's annotation rules out str."""
    if name is None:
        return
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable forward references: judge the raw annotation
        hints = {}
    param = inspect.signature(func).parameters.get(name)
    if param is None or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
        return
    annotation = hints.get(name, param.annotation)
    if may_be_str(annotation) is False:
        shown = getattr(annotation, "__name__", None) or repr(annotation)
        if typing.get_origin(annotation) is not None:
            shown = repr(annotation)
        raise ConfigError(
            f"{option} on {func.__qualname__}: its text argument {name!r} is annotated "
            f"{shown}, not str, so it cannot be embedded. Name the str parameter "
            f"(text_arg='prompt') or pass a callable that returns the text, e.g. "
            f"text_arg=lambda a: a[{name!r}][-1]['content']"
        )


# What `text_arg=` accepts: a parameter name, or a callable of the bound arguments.
TextArg = str | Callable[[dict[str, Any]], str | None] | None
