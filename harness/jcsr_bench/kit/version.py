"""The harness version: part of every cell's identity, so a new version recomputes."""

__version__ = "0.1.0"
