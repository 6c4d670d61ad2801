"""`semantic_lookup(verify=...)`: a judge consulted before a semantic candidate is a hit.

A judge is `(query_text, cached_text) -> bool` (or an `async def` returning bool), e.g.
a cheap LLM call asking "do these two questions ask the same thing?". It sees only
candidates that already passed the threshold and the guards, and only the best of them
(one judge call per semantic lookup at most). True = hit; False = miss (counted in
`cache_info().verify_rejections`). A judge that raises, times out or returns something
other than a bool fails *open to a miss*: the function is called, the failure is counted
and logged once, and the caller never sees the judge's error.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger("pmm_memo")

Verifier = Callable[[str, str], bool] | Callable[[str, str], Awaitable[bool]]


def check(verify: object, func_is_async: bool | None) -> Any:
    """Validate `verify=` at decoration time; TypeError naming what to pass instead."""
    if verify is None:
        return None
    if not callable(verify):
        raise TypeError(
            f"verify must be a callable (query_text, cached_text) -> bool, "
            f"not {type(verify).__name__}"
        )
    if inspect.iscoroutinefunction(verify) and func_is_async is False:
        raise TypeError(
            "verify is an async function but the decorated function is sync: pass a sync "
            "judge, or decorate an async def function"
        )
    return verify


class Judge:
    """Runs one verifier, failing open to a miss; logs the first failure of each kind."""

    def __init__(self, verify: Any) -> None:
        self.verify = verify
        self._logged: set[str] = set()

    def _failed(self, what: str) -> bool:
        if what not in self._logged:
            self._logged.add(what)
            logger.warning("verify judge failed (%s); the lookup is a miss", what)
        return False

    def _verdict(self, result: object) -> bool:
        if isinstance(result, bool):
            return result
        return self._failed(f"returned {type(result).__name__}, not bool")

    def __call__(self, query_text: str, cached_text: str) -> bool:
        try:
            result = self.verify(query_text, cached_text)
        except Exception as exc:
            return self._failed(type(exc).__name__)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()  # never awaited: close it so no warning leaks
            return self._failed("returned an awaitable to a sync function")
        return self._verdict(result)

    async def acall(self, query_text: str, cached_text: str) -> bool:
        try:
            if inspect.iscoroutinefunction(self.verify):
                result = await self.verify(query_text, cached_text)
            else:
                # A sync judge (likely a blocking HTTP call) runs off the event loop.
                result = await asyncio.to_thread(self.verify, query_text, cached_text)
                if inspect.isawaitable(result):
                    result = await result
        except Exception as exc:
            return self._failed(type(exc).__name__)
        return self._verdict(result)
