"""``python -m jcsr_bench``: the same as the ``jcsr-bench`` command."""

import sys

from jcsr_bench.cli.main import main

sys.exit(main())
