"""Rewrite the configuration table in README.md from pmm_memo._config (one source)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pmm_memo._config import config_table  # noqa: E402


def main() -> None:
    readme = ROOT / "README.md"
    rows = "\n".join(
        f"| {var} | {default} | {meaning} |" for var, default, meaning in config_table()
    )
    table = f"| variable | default | meaning |\n|---|---|---|\n{rows}\n"
    text = re.sub(
        r"(<!-- config-table -->\n).*?(<!-- /config-table -->)",
        lambda m: m.group(1) + table + m.group(2),
        readme.read_text(),
        flags=re.S,
    )
    readme.write_text(text)


if __name__ == "__main__":
    main()
