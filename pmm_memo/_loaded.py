"""Classes of optional libraries, looked up only where the library is already loaded.

Why: numpy and pydantic are never imported just to check a value's type (exact caching
would pay ~260 ms for numpy); a value of their types can only exist once they are
imported. But a module another thread is still importing already sits in `sys.modules`
half-built, without the class yet: `sys.modules["numpy"].ndarray` then raises
AttributeError inside the caller's function. Here that is "not loaded" (None): no value of
the class can exist before the class does.
"""

from __future__ import annotations

import sys
from typing import Any


def loaded_class(module: str, name: str) -> Any:
    """`module.name` when `module` is imported far enough to have it, else None."""
    return getattr(sys.modules.get(module), name, None)
