"""The vectors of one partition of the embedded backend (see `memory`): a growable
float32 matrix, so a semantic lookup is one matrix-vector product over exactly the
entries it may match."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


class _Partition:
    """A growable float32 matrix with swap-remove, rows mapped to keys."""

    __slots__ = ("keys", "matrix", "n")

    def __init__(self, dim: int) -> None:
        import numpy as np

        # One row to start, doubling as it fills: most partitions (one per user and
        # scope) hold a single entry.
        self.matrix = np.empty((1, dim), dtype=np.float32)
        self.keys: list[str] = []
        self.n = 0

    def add(self, key: str, vector: np.ndarray) -> int:
        if self.n == self.matrix.shape[0]:
            import numpy as np

            grown = np.empty((self.n * 2, self.matrix.shape[1]), dtype=np.float32)
            grown[: self.n] = self.matrix[: self.n]
            self.matrix = grown
        self.matrix[self.n] = vector
        self.keys.append(key)
        self.n += 1
        return self.n - 1

    def remove(self, row: int) -> str | None:
        """Remove `row`; returns the key of the row moved into its place, if any."""
        last = self.n - 1
        moved = None
        if row != last:
            self.matrix[row] = self.matrix[last]
            self.keys[row] = self.keys[last]
            moved = self.keys[row]
        self.keys.pop()
        self.n -= 1
        return moved
