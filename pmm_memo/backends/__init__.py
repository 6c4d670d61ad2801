"""Storage backends: one module each, behind the `Backend` protocol in `_base`."""

from ._base import Backend, Entry, Neighbour, Stored, VectorQuery

__all__ = ["Backend", "Entry", "Neighbour", "Stored", "VectorQuery"]
