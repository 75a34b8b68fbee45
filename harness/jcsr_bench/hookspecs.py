"""The pluggy hook specifications: one register-callback hook per component kind.

A plugin calls ``register("type-name", factory, description="...")``; ``factory(**params)``
builds the component from a registry entry's parameters. Hooks must stay cheap: no torch
import, no weight loading, no file I/O (``jcsr-bench plugins`` and ``--help`` stay fast).
Hookspecs only ever gain optional arguments.
"""

import pluggy

PROJECT_NAME = "jcsr_bench"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_codecs(register):
    """Register codec types: ``register(name, factory, **metadata)``."""


@hookspec
def register_sr_models(register):
    """Register super-resolution model types: ``register(name, factory, **metadata)``."""


@hookspec
def register_datasets(register):
    """Register dataset types: ``register(name, factory, **metadata)``."""


@hookspec
def register_metrics(register):
    """Register image-quality metric types: ``register(name, factory, **metadata)``."""
