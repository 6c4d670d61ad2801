"""mypy plugin: types `@cached` / `@semantic_lookup` staticmethods and methods exactly.

Enable it in the mypy configuration (mypy is imported only here, never at runtime)::

    [tool.mypy]
    plugins = ["pmm_memo.mypy_plugin"]

Why: `CachedFunction.__get__` (`pmm_memo/_typing.py`) reads the binding off the first
parameter's type with self-typed overloads. pyright checks those; mypy takes the first
overload whose instance/owner fit, so without this plugin it binds a staticmethod's first
parameter (`Repo.pure(3)`: "Too many arguments") and a method's `self` when it is read
through its class (`Repo.get(repo, "k")`). mypy's semantic analysis does know which
decorated functions are staticmethods (`FuncDef.is_static`, whichever side of `@cached`
`@staticmethod` is on), so when one of the decorators is applied to a function this plugin
replaces the `CachedFunction[P, R]` it returns with:

- `CachedStaticMethod[P, R]` for a staticmethod: nothing is ever bound;
- `CachedMethod[P, R]` for a plain method: bound through an instance, not through the class;
- classmethods, module-level and nested functions keep `CachedFunction[P, R]`, which mypy
  already binds right.

Hooks: mypy's documented `Plugin.get_function_hook` (bare `@cached`) and
`Plugin.get_method_hook` (`@cached(...)`, a `CacheDecorator.__call__`); mypy calls both
with the `Decorator` node as context when it applies a decorator
(https://mypy.readthedocs.io/en/stable/extending_mypy.html).
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.checker import TypeChecker
from mypy.nodes import Decorator, TypeInfo
from mypy.plugin import FunctionContext, MethodContext, Plugin
from mypy.types import Instance, Type, get_proper_type

_TYPING = "pmm_memo._typing"
_DECORATORS = frozenset({"pmm_memo._decorators.cached", "pmm_memo._decorators.semantic_lookup"})
_CACHE_DECORATOR_CALL = f"{_TYPING}.CacheDecorator.__call__"
_CACHED_FUNCTION = f"{_TYPING}.CachedFunction"


def _retype(ctx: FunctionContext | MethodContext) -> Type:
    """The decorated function's type, given what the decorator is applied to."""
    returned = get_proper_type(ctx.default_return_type)
    decorator = ctx.context
    if (
        not isinstance(decorator, Decorator)
        or not isinstance(returned, Instance)
        or returned.type.fullname != _CACHED_FUNCTION
    ):
        return ctx.default_return_type
    func = decorator.func
    if func.is_static:
        name = "CachedStaticMethod"
    elif func.info and not func.is_class:  # a method (a nested function has no class)
        name = "CachedMethod"
    else:
        return ctx.default_return_type
    # By module, not `named_generic_type`: that resolves dotted names through package
    # attributes, and `pmm_memo` does not expose `_typing`. Loaded: CachedFunction is from it.
    assert isinstance(ctx.api, TypeChecker), ctx.api
    info = ctx.api.modules[_TYPING].names[name].node
    assert isinstance(info, TypeInfo), info
    return Instance(info, returned.args)


class CachedPlugin(Plugin):
    """Routes the decorators' calls to `_retype`."""

    def get_function_hook(self, fullname: str) -> Callable[[FunctionContext], Type] | None:
        return _retype if fullname in _DECORATORS else None

    def get_method_hook(self, fullname: str) -> Callable[[MethodContext], Type] | None:
        return _retype if fullname == _CACHE_DECORATOR_CALL else None


def plugin(version: str) -> type[Plugin]:
    """Entry point mypy calls with its version; the hooks used exist since mypy 0.9."""
    return CachedPlugin
