"""`python -m pmm_memo` runs the CLI."""

import sys

from .cli import main

sys.exit(main())
