"""Python source loaded as a module from its own file: "another program" in one process,
for tests of function and class identity (same qualified names, other code or values)."""

from __future__ import annotations

import importlib.util
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def load_module(
    directory: Path, source: str, name: str = "mod", preset: Mapping[str, Any] | None = None
) -> Any:
    """Import `source` (dedented) as module `name` from `directory/<name>.py`; each
    directory is one program, so two loads of one name are two distinct modules.
    `preset`: names set in the module's namespace before its code runs."""
    path = directory / f"{name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    vars(module).update(preset or {})
    spec.loader.exec_module(module)
    return module
