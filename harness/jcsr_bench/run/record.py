"""The recorder: the single writer of a run's SQLite store and of the codec-output cache.

It lives on the driver. Each unit result is recorded as it arrives, one transaction per
cell, so a run killed at any moment keeps everything already recorded and the next run
(with any executor) computes only what is missing. Codec outputs computed by a unit are
written to the on-disk cache here, never by the unit itself (workers need no shared
filesystem).
"""

from __future__ import annotations

import sys
from typing import Any

from jcsr_bench.results.store import Store
from jcsr_bench.run.cache import Cache, CodecOutput
from jcsr_bench.run.plan import Plan
from jcsr_bench.run.workunit import UnitResult, codec_cache_info


class Recorder:
    """``with Recorder(plan, meta) as rec: rec.add(result)``; the run row is closed on exit.

    ``status`` is what the run row ends with: ``finished``, ``stopped (fail-fast)``, or
    ``interrupted`` when the block is left by an exception.
    """

    def __init__(self, plan: Plan, meta: dict[str, Any], *, progress: bool | None = None):
        self.plan = plan
        self.meta = meta
        self.progress = progress
        self.cache = Cache(plan.settings.cache_root)
        self.codecs = {c.name: c.obj for c in plan.codecs}
        self.computed = self.codec_runs = self.codec_hits = 0
        self.stopped = False
        self.interrupted = False  # set by the engine on Ctrl-C / SIGTERM
        self.status = "interrupted"

    def __enter__(self) -> Recorder:
        from tqdm import tqdm

        self.store = Store(self.plan.settings.db_path)
        self.run_id = self.store.begin_run(self.meta)
        self.bar = tqdm(total=self.plan.pending, unit="cell", desc="jcsr-bench",
                        file=sys.stderr, dynamic_ncols=True,
                        disable=None if self.progress is None else not self.progress)
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self.bar.close()
        try:
            if exc_type is None:
                self.status = "stopped (fail-fast)" if self.stopped else "finished"
            self.store.end_run(self.run_id, self.status, {"computed": self.computed,
                                                          "codec_runs": self.codec_runs})
        finally:
            self.store.close()

    def cached(self, codec_key: str) -> CodecOutput | None:
        """The cached codec output for ``codec_key`` (never with ``--overwrite always``)."""
        if self.plan.settings.overwrite == "always":
            return None
        return self.cache.load_codec(codec_key)

    def add(self, result: UnitResult) -> bool:
        """Record one unit's cells (and codec output); True when the run must stop."""
        unit = result.unit
        if result.codec_output is not None:
            self.codec_runs += 1
            self.cache.save_codec(unit.codec_key, result.codec_output,
                                  codec_cache_info(unit, self.codecs[unit.codec]))
        elif result.cache_hit:
            self.codec_hits += 1
        for record in result.records:
            self.store.record(record, self.run_id)
            self.computed += 1
            self.bar.update(1)
            self.bar.set_postfix_str(f"{unit.codec} q={unit.quality} {record.sr}",
                                     refresh=False)
            if record.status != "ok" and self.plan.settings.fail_fast:
                self.stopped = True
        return self.stopped
