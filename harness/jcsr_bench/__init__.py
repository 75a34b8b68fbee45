"""jcsr-bench: benchmark joint learned image compression and super-resolution.

The public API is exactly what this module exports. Importing it is cheap (no torch):
plugins import ``hookimpl`` from here at registration time.
"""

from jcsr_bench.api import BenchmarkResult, run_benchmark
from jcsr_bench.components import Codec, Dataset, Metric, NotApplicable, SRModel
from jcsr_bench.hookspecs import hookimpl
from jcsr_bench.kit.version import __version__
from jcsr_bench.plugin.lazy import lazy

__all__ = [
    "BenchmarkResult",
    "Codec",
    "Dataset",
    "Metric",
    "NotApplicable",
    "SRModel",
    "__version__",
    "hookimpl",
    "lazy",
    "run_benchmark",
]
