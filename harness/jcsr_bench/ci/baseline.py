"""CI baselines: a run's results as a small, schema-versioned, human-diffable JSON file.

A baseline keeps what ``jcsr-bench compare`` needs to judge a later run without the
original store: per combination (dataset x codec x SR) the per-image points (quality,
bits, every metric value or its n/a reason), the content digests of each cell's
payload, decoded image and SR output (equal digests = a bit-identical pipeline), the
identities of datasets, codecs, SR models and metrics, the harness and conventions
versions, the git commit (the run's, recorded with its results, else the working
directory's), and the environment fingerprint (bit-identity only holds
within one fingerprint). Keys are sorted and each combination is one block, so a
``git diff`` of a committed baseline shows exactly what moved. A results folder (or
its ``results.sqlite``) is accepted wherever a baseline is.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from jcsr_bench.kit.environment import git_commit
from jcsr_bench.kit.errors import DataError
from jcsr_bench.kit.identity import digest
from jcsr_bench.results.store import DB_NAME, Store, quality_text

FORMAT = "jcsr-bench-baseline"
SCHEMA = 1
TIMINGS = ("encode_s", "decode_s", "sr_s")

__all__ = ["FORMAT", "SCHEMA", "baseline_from_results", "combination_key", "dumps",
           "git_commit", "load_baseline", "save_baseline"]


def combination_key(dataset: str, codec: str, sr: str) -> str:
    """How a combination is keyed and named in baselines and reports."""
    return f"{dataset}/{codec}+{sr}"


def baseline_from_results(results: Path) -> dict[str, Any]:
    """Build the baseline data of a results folder (or ``results.sqlite``) in memory."""
    db = Path(results)
    db = db / DB_NAME if db.is_dir() else db
    with Store(db, readonly=True) as store:
        meta = store.meta()
        rows = store.rows()
    if not rows:
        raise DataError(f"{db} holds no results: run `jcsr-bench run --output "
                        f"{db.parent}` first")
    combos: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    images: dict[str, dict[int, str]] = defaultdict(dict)
    for row in rows:
        images[row["dataset"]][row["image_index"]] = row["image"]
        points = combos[(row["dataset"], row["codec"], row["sr"])]
        point = points.setdefault(quality_text(row["quality"]), {
            "quality": row["quality"], "index": row["quality_index"],
            "sr_identity": row["sr_key"], "images": {}})
        cell: dict[str, Any] = {
            "status": row["status"],
            "values": {k: v for k, v in row["values"].items() if k not in TIMINGS},
            # 4 significant digits: timings vary run to run; a diff should not drown
            "timings": {k: float(f"{v:.4g}") for k, v in row["values"].items()
                        if k in TIMINGS and v is not None},
            "digests": row["digests"],
        }
        if row["reasons"]:
            cell["reasons"] = row["reasons"]
        if row["error"]:
            cell["error"] = row["error"]
        point["images"][row["image"]] = cell
    datasets_meta = meta.get("datasets") or {}
    components = meta.get("components") or {}
    codec_ids = components.get("codecs") or {}
    config = meta.get("config") or {}
    return {
        "format": FORMAT,
        "schema": SCHEMA,
        "harness_version": meta.get("harness_version"),
        "conventions": meta.get("conventions"),
        "conventions_id": digest(meta.get("conventions") or ""),
        "git_commit": meta.get("git_commit") or git_commit(),  # the run's, else here
        "environment": meta.get("environment"),
        "run": {"date": meta.get("date"), "suite": config.get("suite"),
                "anchor": meta.get("anchor"), "scale": config.get("scale"),
                "kernel": config.get("kernel")},
        "datasets": {
            name: {"identity": (datasets_meta.get(name) or {}).get("identity"),
                   "images": [by_index[i] for i in sorted(by_index)]}
            for name, by_index in sorted(images.items())
        },
        "metrics": dict(components.get("metrics") or {}),
        "combinations": {
            combination_key(*key): {
                "dataset": key[0], "codec": key[1], "sr": key[2],
                "codec_identity": codec_ids.get(key[1]),
                "points": [{k: v for k, v in p.items() if k != "index"}
                           for p in sorted(points.values(), key=lambda p: p["index"])],
            }
            for key, points in combos.items()
        },
    }


def dumps(baseline: dict[str, Any]) -> str:
    """Sorted keys, one value per line: a diff of two baselines is readable."""
    return json.dumps(baseline, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def save_baseline(results: Path, out: Path) -> dict[str, Any]:
    """Write the baseline of ``results`` to ``out`` atomically; return its data."""
    from jcsr_bench.kit.atomic import atomic_write

    baseline = baseline_from_results(results)
    atomic_write(Path(out), dumps(baseline))
    return baseline


def load_baseline(path: Path | str) -> dict[str, Any]:
    """A baseline JSON file, or a results folder / ``results.sqlite`` read as one."""
    path = Path(path)
    if path.is_dir() or path.suffix in (".sqlite", ".db"):
        if not (path / DB_NAME if path.is_dir() else path).is_file():
            raise DataError(f"{path}: no {DB_NAME} there: give a baseline JSON file or a "
                            "folder written by `jcsr-bench run --output`")
        return baseline_from_results(path)
    if not path.is_file():
        raise DataError(f"no baseline at {path}: create one explicitly with `jcsr-bench "
                        f"baseline save --results DIR --out {path}`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path} is not a readable baseline JSON file: {exc}") from exc
    except RecursionError:
        raise DataError(f"{path} is not a baseline: JSON nested too deeply (a baseline is "
                        "a few levels of plain data)") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataError(f"{path} is not a jcsr-bench baseline (no \"format\": \"{FORMAT}\"); "
                        "write one with `jcsr-bench baseline save`")
    if data.get("schema") != SCHEMA:
        raise DataError(f"{path} has baseline schema {data.get('schema')!r}, this jcsr-bench "
                        f"reads schema {SCHEMA}: save the baseline again with this version")
    _validate(data, path)
    return data


def _bad(path: Path, key: str, why: str) -> DataError:
    return DataError(f"{path}: baseline key {key} {why}; save the baseline again with "
                     "`jcsr-bench baseline save` (or fix that key)")


def _typed(value: Any, kind: type | tuple[type, ...], path: Path, key: str, what: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise _bad(path, key, f"is {type(value).__name__} {value!r:.40}, expected {what}")
    return value


def _number(value: Any, path: Path, key: str) -> None:
    _typed(value, (int, float), path, key, "a number")
    if not math.isfinite(value):
        raise _bad(path, key, f"is {value}, not a finite number")


def _validate(data: dict[str, Any], path: Path) -> None:
    """The structure ``compare`` reads: each problem named by its key (a value that is a
    string, a point without ``images``, NaN or infinite values are refused at load)."""
    combos = _typed(data.get("combinations"), dict, path, "'combinations'", "a mapping")
    for name, combo in combos.items():
        where = f"combinations[{name!r}]"
        _typed(combo, dict, path, where, "a mapping")
        for field in ("dataset", "codec", "sr"):
            _typed(combo.get(field), str, path, f"{where}.{field}", "a string")
        points = _typed(combo.get("points"), list, path, f"{where}.points", "a list")
        for i, point in enumerate(points):
            at = f"{where}.points[{i}]"
            _typed(point, dict, path, at, "a mapping")
            if "quality" not in point:
                raise _bad(path, f"{at}.quality", "is missing")
            images = point.get("images")
            if images is None:
                raise _bad(path, f"{at}.images", "is missing")
            for image, cell in _typed(images, dict, path, f"{at}.images", "a mapping").items():
                _validate_cell(cell, path, f"{at}.images[{image!r}]")


def _validate_cell(cell: Any, path: Path, at: str) -> None:
    _typed(cell, dict, path, at, "a mapping")
    _typed(cell.get("status"), str, path, f"{at}.status", "a string")
    reasons = _typed(cell.get("reasons", {}), dict, path, f"{at}.reasons", "a mapping")
    values = _typed(cell.get("values", {}), dict, path, f"{at}.values", "a mapping")
    for metric, value in values.items():
        if value is None and metric in reasons:
            continue  # n/a, with its reason
        if value is None:
            raise _bad(path, f"{at}.values[{metric!r}]", "is null without a reason in "
                       "'reasons'")
        _number(value, path, f"{at}.values[{metric!r}]")
    for name, value in _typed(cell.get("timings", {}), dict, path, f"{at}.timings",
                              "a mapping").items():
        _number(value, path, f"{at}.timings[{name!r}]")
    for stage, value in _typed(cell.get("digests", {}), dict, path, f"{at}.digests",
                               "a mapping").items():
        _typed(value, str, path, f"{at}.digests[{stage!r}]", "a string")
