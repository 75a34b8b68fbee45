"""Up-front checks of what a run will write, before any component is built or trained.

A run that cannot write its results should say so in one line at the start, not after
an hour of compute or as every cell "failed": ``--output`` must be a folder (or not
exist yet), its results store undamaged, and the output folder and the caches writable
(a file in the way, a read-only folder and a full disk are caught by a probe write).
"""

from __future__ import annotations

from pathlib import Path

from jcsr_bench.kit.disk import check_folder_path, probe_folder
from jcsr_bench.results.store import DB_NAME, check_store_file
from jcsr_bench.run.cache import ELSEWHERE, Cache

OUTPUT_REMEDY = "choose another --output"


def check_output(output: Path, *, write: bool) -> None:
    """``--output`` is not a file and (when ``write``) is writable; runs before the
    output folder is created and locked."""
    check_folder_path(Path(output), "--output", OUTPUT_REMEDY)
    if write:
        probe_folder(Path(output), "the output folder", OUTPUT_REMEDY)


def check_run_paths(output: Path, cache_root: Path | None, *, write: bool) -> None:
    """Raise ``StorageError`` unless ``output`` (and, when ``write``, the caches) are usable.

    ``cache_root`` is the run's codec cache (None: the default). A dry run
    (``write=False``) checks only that ``output`` is not a file and its store is sound.
    Nothing is created either way.
    """
    output = Path(output)
    check_output(output, write=write)
    check_store_file(output / DB_NAME)
    if not write:
        return
    from jcsr_bench.imaging.lr import lr_cache_dir

    Cache(cache_root).check_writable()
    probe_folder(lr_cache_dir(), "the LR image cache", ELSEWHERE)
