"""Lazy factories: register a type without importing its (heavy) implementation."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy(target: str) -> Callable[..., Any]:
    """Return a factory for ``"package.module:Name"`` that imports it only when called.

    Registration hooks must not import torch; ``register("x", lazy("pkg.x:XCodec"))``
    defers the import to the moment a component is actually built.
    """
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"lazy target must look like 'package.module:Name', got {target!r}")

    def factory(**params: Any) -> Any:
        return getattr(importlib.import_module(module_name), attr)(**params)

    factory.target = target  # type: ignore[attr-defined]
    factory.__qualname__ = factory.__name__ = f"lazy({target})"
    return factory
