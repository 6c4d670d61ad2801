"""User code type-checks: mypy --strict and pyright on tests/typing/user_code.py.

The file is copied to a directory outside the repository and checked there, so the
checkers find pmm_memo the way a user's project does: through the installed package
(`pip install -e .` must give type checkers the package, not only the interpreter).
Each `reveal_type` must print the annotated type and each `# error` line must be
reported, by both checkers; no other line may be. mypy runs with the
`pmm_memo.mypy_plugin` users configure (exactly pyright's outcome) and without it (the
`# mypy-binds` lines flip: the documented limitation the plugin removes).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

USER_CODE = Path(__file__).parent / "typing" / "user_code.py"
_REVEAL = re.compile(r"#\s*R:\s*(.+?)\s*(?:#|$)")


def _expected() -> tuple[dict[int, str], set[int], set[int]]:
    """(line -> revealed type, lines with a deliberate error, lines mypy binds)."""
    reveals: dict[int, str] = {}
    errors: set[int] = set()
    binds: set[int] = set()
    lines = USER_CODE.read_text().splitlines()
    code_starts = lines.index("from __future__ import annotations")  # after the docstring
    for n, line in enumerate(lines, start=1):
        if n <= code_starts:
            continue
        if m := _REVEAL.search(line):
            reveals[n] = m.group(1)
        if re.search(r"#\s*error\b", line):
            errors.add(n)
        if "# mypy-binds" in line:
            binds.add(n)
    return reveals, errors, binds


def _normalise(t: str) -> str:
    if m := re.search(r"fallback=([\w.]+)\]$", t):  # mypy prints a NamedTuple as a tuple
        t = m.group(1)
    return re.sub(r"\b(?:builtins|pmm_memo(?:\.\w+)*)\.", "", t)


def _check_outside_repo(tmp_path: Path, mypy_plugin: bool = False) -> Path:
    target = tmp_path / "user_code.py"
    shutil.copy(USER_CODE, target)
    if mypy_plugin:  # as a user's project enables it
        (tmp_path / "pyproject.toml").write_text(
            '[tool.mypy]\nplugins = ["pmm_memo.mypy_plugin"]\n'
        )
    return target


def _assert_outcome(
    reveals_got: dict[int, str], errors_got: set[int], *, mypy_binds: bool, output: str
) -> None:
    reveals, errors, binds = _expected()
    if mypy_binds:
        errors = errors ^ binds
    got = {n: _normalise(t) for n, t in reveals_got.items()}
    assert got == reveals, output
    assert errors_got == errors, (
        f"missed: {sorted(errors - errors_got)}, unexpected: {sorted(errors_got - errors)}\n"
        + output
    )


@pytest.mark.parametrize("mypy_plugin", [True, False], ids=["plugin", "no-plugin"])
def test_user_code_under_mypy_strict(tmp_path: Path, mypy_plugin: bool) -> None:
    target = _check_outside_repo(tmp_path, mypy_plugin)
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", target.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = out.stdout + out.stderr
    assert "import-not-found" not in output and "import-untyped" not in output, output
    reveals: dict[int, str] = {}
    errors: set[int] = set()
    for line in out.stdout.splitlines():
        if m := re.match(r"user_code\.py:(\d+): note: Revealed type is \"(.*)\"$", line):
            reveals[int(m.group(1))] = m.group(2)
        elif m := re.match(r"user_code\.py:(\d+): error:", line):
            errors.add(int(m.group(1)))
    _assert_outcome(reveals, errors, mypy_binds=not mypy_plugin, output=output)


def test_user_code_under_pyright(tmp_path: Path) -> None:
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent))
    if pyright is None:
        pytest.fail("pyright is not installed: pip install -e '.[test]'")
    target = _check_outside_repo(tmp_path)
    out = subprocess.run(
        [pyright, "--pythonpath", sys.executable, "--outputjson", target.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    import json

    report = json.loads(out.stdout)
    output = out.stdout[-20000:] + out.stderr
    reveals: dict[int, str] = {}
    errors: set[int] = set()
    for d in report["generalDiagnostics"]:
        line = d["range"]["start"]["line"] + 1
        if d["severity"] == "information":
            if m := re.match(r'Type of ".*" is "(.*)"$', d["message"], re.S):
                reveals[line] = m.group(1)
        elif d["severity"] == "error":
            assert d.get("rule") != "reportMissingImports", output
            errors.add(line)
    _assert_outcome(reveals, errors, mypy_binds=False, output=output)
