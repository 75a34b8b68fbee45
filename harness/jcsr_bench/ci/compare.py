"""``jcsr-bench compare``: judge a run's RD curves against a baseline, for CI.

Per dataset x combination and quality metric: BD-rate and BD-quality of the current
curve against the baseline's (signed; positive BD-rate = more bits for the same
quality = regression), per-point deltas, and the per-image BD-rate with a seeded
bootstrap interval over images (is a change noise or real?). Output digests decide
``unchanged`` (bit-identical) -- claimed only when both runs share an environment
fingerprint, since kernels differ per CPU ISA and thread count; otherwise the
comparison falls back to tolerances and says why. Timings are compared as ratios and
only warn unless ``fail_on_time`` is set (machines differ).

Exit status (:attr:`Comparison.exit_code`): 0 pass / unchanged / improvement / new,
1 regression, 3 incomparable or removed (the baseline no longer describes this run).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from jcsr_bench.kit.errors import JcsrError
from jcsr_bench.kit.suggest import did_you_mean
from jcsr_bench.results.aggregate import bootstrap_interval, rd_pairs, summarise
from jcsr_bench.results.bd import BDError, bd_quality, bd_rate
from jcsr_bench.results.labels import QUALITY_METRICS, spec

#: Statuses, most severe first (reports list the worst rows first).
STATUSES = ("regression", "incomparable", "removed", "new", "improvement", "pass",
            "unchanged")
EXIT_CODES = {"regression": 1, "incomparable": 3, "removed": 3}
RATE = "bpp"
#: Fingerprint fields whose difference makes bit-identity not expected.
FINGERPRINT_FIELDS = ("cpu", "isa", "machine", "threads", "device", "versions")
#: Timings below this (seconds, mean per image) are too short to compare as ratios.
MIN_TIMING_S = 0.005
TOLERANCE_KEYS = {"max_bd_rate", "max_quality_drop", "exact", "fail_on_time",
                  "warn_on_time"}

__all__ = ["Comparison", "CombinationResult", "MetricResult", "STATUSES", "Tolerances",
           "bd_pair", "bootstrap_interval", "compare", "judged_metrics", "mean_point",
           "tolerances_for"]


@dataclass(frozen=True)
class Tolerances:
    """What counts as a regression. BD-rate in percentage points, quality in its units."""

    max_bd_rate: float = 0.5
    max_quality_drop: float = 0.02
    exact: bool = False
    fail_on_time: float | None = None
    warn_on_time: float = 2.0
    #: metric -> its own max_bd_rate / max_quality_drop (a suite's ``per_metric``)
    per_metric: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def for_metric(self, metric: str) -> Tolerances:
        """The tolerances that judge ``metric`` (its ``per_metric`` entry applied)."""
        own = self.per_metric.get(metric)
        return replace(self, per_metric={}, **own) if own else self

    def with_overrides(self, overrides: Mapping[str, Any], where: str) -> Tolerances:
        """A copy with ``overrides`` applied, each checked; errors name ``where``."""
        unknown = set(overrides) - TOLERANCE_KEYS
        if unknown:
            raise JcsrError(f"{where}: unknown tolerance {sorted(unknown)[0]!r}; allowed: "
                            f"{', '.join(sorted(TOLERANCE_KEYS))}")
        fields = {**asdict(self), "per_metric": dict(self.per_metric)}
        for key, value in overrides.items():
            if key == "exact":
                ok = isinstance(value, bool)
            elif value is None:
                ok = key == "fail_on_time"  # "no time limit"
            else:
                ok = isinstance(value, int | float) and not isinstance(value, bool) \
                    and value >= 0
            if not ok:
                raise JcsrError(f"{where}: tolerance {key} must be "
                                f"{'true/false' if key == 'exact' else 'a number >= 0'}, "
                                f"got {value!r}")
            fields[key] = value
        return Tolerances(**fields)


def tolerances_for(label: str, base: Tolerances, suite_tolerances: Mapping[str, Any] | None,
                   cli: Mapping[str, Any], where: str = "the suite's tolerances") -> Tolerances:
    """Defaults < the suite's ``tolerances`` < command-line flags < the suite's
    ``per_combination`` entry for ``label`` (``codec+sr``): the most specific wins."""
    suite_tolerances = dict(suite_tolerances or {})
    per_metric = suite_tolerances.pop("per_metric", None) or {}
    if not isinstance(per_metric, Mapping):
        raise JcsrError(f"{where}: per_metric must map metric names to tolerances")
    own: dict[str, dict[str, float]] = {}
    for metric, values in per_metric.items():
        if metric not in QUALITY_METRICS:
            raise JcsrError(f"{where}: per_metric.{metric}: unknown quality metric."
                            f"{did_you_mean(str(metric), QUALITY_METRICS)}")
        if not isinstance(values, Mapping) or set(values) - {"max_bd_rate",
                                                             "max_quality_drop"}:
            raise JcsrError(f"{where}: per_metric.{metric}: expected {{max_bd_rate: N, "
                            f"max_quality_drop: N}}, got {values!r}")
        Tolerances().with_overrides(values, f"{where}: per_metric.{metric}")
        own[str(metric)] = dict(values)
    per = suite_tolerances.pop("per_combination", None) or {}
    if not isinstance(per, Mapping):
        raise JcsrError(f"{where}: per_combination must map codec+sr to tolerances")
    tol = base.with_overrides(suite_tolerances, where)
    tol = tol.with_overrides({k: v for k, v in cli.items() if v is not None}, "command line")
    tol = tol.with_overrides(per.get(label) or {}, f"{where}.per_combination.{label}")
    return replace(tol, per_metric=own) if own else tol


@dataclass
class MetricResult:
    """One quality metric of one combination: a JUnit test case."""

    metric: str
    status: str
    reason: str = ""
    bd_rate: float | None = None  # percent, current vs baseline (positive = regression)
    bd_quality: float | None = None  # metric units (negative = regression)
    bd_note: str = ""  # why BD is n/a, or an overlap warning
    image_bd_rates: dict[str, float | None] = field(default_factory=dict)
    interval: tuple[float, float] | None = None  # bootstrap CI of the mean per-image BD-rate
    interval_images: int = 0  # how many images the interval rests on
    interval_note: str = ""  # why there is no interval (too few images)
    points: list[dict[str, Any]] = field(default_factory=list)  # per-quality deltas


@dataclass
class CombinationResult:
    dataset: str
    codec: str
    sr: str
    status: str
    reason: str = ""
    identical: bool | None = None  # all output digests equal (None: digests missing)
    metrics: list[MetricResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # current / baseline
    warnings: list[str] = field(default_factory=list)
    tolerances: Tolerances = field(default_factory=Tolerances)

    @property
    def label(self) -> str:
        return f"{self.codec}+{self.sr}"

    def metric_status(self, m: MetricResult) -> str:
        """A metric shows its own status, except inside an unchanged combination and when
        the combination failed for a reason of its own (--exact, --fail-on-time)."""
        if self.status == "unchanged":
            return self.status
        own_reason = self.status == "regression" and all(
            x.status != "regression" for x in self.metrics)
        return self.status if own_reason and m.status == "pass" else m.status

    @property
    def worst_bd_rate(self) -> float:
        rates = [m.bd_rate for m in self.metrics if m.bd_rate is not None]
        return max(rates) if rates else -math.inf


@dataclass
class Comparison:
    combinations: list[CombinationResult]
    fingerprints_match: bool
    fingerprint_differences: list[str]
    notes: list[str]
    baseline_info: dict[str, Any]
    current_info: dict[str, Any]
    method: str = "pchip"
    #: the baseline holds no combination, so nothing was judged (incomparable, exit 3)
    empty_baseline: bool = False

    @property
    def exit_code(self) -> int:
        if self.empty_baseline:
            return EXIT_CODES["incomparable"]
        codes = {EXIT_CODES.get(c.status, 0) for c in self.combinations}
        return 1 if 1 in codes else max(codes, default=0)

    @property
    def verdict(self) -> str:
        """The overall status: the most severe of the combinations'."""
        if self.empty_baseline:
            return "incomparable"
        present = {c.status for c in self.combinations}
        return next((s for s in STATUSES if s in present), "unchanged")

    def ordered(self) -> list[CombinationResult]:
        """Worst first: by status severity, then by the largest BD-rate."""
        return sorted(self.combinations,
                      key=lambda c: (STATUSES.index(c.status), -c.worst_bd_rate,
                                     c.dataset, c.label))

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "exit_code": self.exit_code, "method": self.method,
                "fingerprints_match": self.fingerprints_match,
                "fingerprint_differences": self.fingerprint_differences,
                "notes": self.notes, "baseline": self.baseline_info,
                "current": self.current_info,
                "combinations": [dict(asdict(c), label=c.label) for c in self.ordered()]}


# -- helpers -----------------------------------------------------------------------------------
def _quality_transform(metric: str):
    return spec(metric).transform or (lambda v: v)


def judged_metrics(base: dict[str, Any], cur: dict[str, Any]) -> list[str]:
    """Quality metrics with a known direction that either run measured (a metric that
    only the baseline measured is a regression: the current run lost it)."""
    def present(combo: dict[str, Any]) -> set[str]:
        return {m for p in combo["points"] for cell in p["images"].values()
                for m, v in cell["values"].items() if v is not None}

    measured = present(base) | present(cur)
    return [m for m in QUALITY_METRICS if m in measured]


def mean_point(point: dict[str, Any], metric: str) -> tuple[float | None, str]:
    """(mean over images of metric, or None with why) in BD units."""
    transform = _quality_transform(metric) if metric != RATE else (lambda v: v)
    values = []
    for name, cell in point["images"].items():
        if cell["status"] != "ok":
            return None, f"{name} failed: {cell.get('error') or 'error'}"
        value = cell["values"].get(metric)
        if value is None:
            return None, f"{name}: {(cell.get('reasons') or {}).get(metric) or 'n/a'}"
        values.append(value)
    mean = math.fsum(values) / len(values)
    try:
        out = transform(mean)
    except ValueError as exc:
        return None, str(exc)
    return (out, "") if math.isfinite(out) else (None, f"{metric} is infinite in BD units")


def _image_series(combo: dict[str, Any], image: str, metric: str) -> tuple[list, list]:
    cells = [point["images"].get(image) for point in combo["points"]]
    values = [cell["values"] for cell in cells if cell is not None and cell["status"] == "ok"]
    return rd_pairs(((v.get(RATE), v.get(metric)) for v in values),
                    _quality_transform(metric))


def bd_pair(base_rq: tuple[list, list], cur_rq: tuple[list, list], method: str,
            names: tuple[str, str] = ("baseline", "current")):
    """(BD-rate, BD-quality, note); numbers None with the reason when undefined (the
    reason calls the curves ``names``)."""
    note = ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            rate = bd_rate(*base_rq, *cur_rq, method=method, names=names)
            quality = bd_quality(*base_rq, *cur_rq, method=method, names=names)
        except BDError as exc:
            return None, None, str(exc)
    if caught:
        note = str(caught[0].message)
    return rate, quality, note


def _identical(base: dict[str, Any], cur: dict[str, Any]) -> bool | None:
    """True when every cell's output digests *and* values (bits, metrics) match; None
    when some digest is missing."""
    for bp, cp in zip(base["points"], cur["points"], strict=True):
        for name, bcell in bp["images"].items():
            ccell = cp["images"].get(name)
            if ccell is None or ccell["status"] != bcell["status"]:
                return False
            if bcell["status"] != "ok":
                continue  # failed in both runs: nothing was produced
            if not bcell.get("digests") or not ccell.get("digests"):
                return None
            if bcell["digests"] != ccell["digests"] or bcell["values"] != ccell["values"]:
                return False  # equal outputs scored differently: a metric changed
    return True


def _qualities(combo: dict[str, Any]) -> list[Any]:
    return [p["quality"] for p in combo["points"]]


def _fingerprint_differences(base: dict[str, Any] | None, cur: dict[str, Any] | None
                             ) -> list[str]:
    if not base or not cur:
        return ["no environment fingerprint recorded in the "
                f"{'baseline' if not base else 'current results'}"]
    diffs = []
    for key in FINGERPRINT_FIELDS:
        if key == "versions":
            bv, cv = base.get(key) or {}, cur.get(key) or {}
            diffs += [f"{name} {bv.get(name)} vs {cv.get(name)}"
                      for name in sorted(set(bv) | set(cv)) if bv.get(name) != cv.get(name)]
        elif base.get(key) != cur.get(key):
            diffs.append(f"{key} {base.get(key)!r} vs {cur.get(key)!r}")
    return diffs


def _image_difference(base: Any, cur: Any) -> str:
    """Which images the current run lacks or adds (not both whole lists)."""
    if not isinstance(base, list) or not isinstance(cur, list):
        return f"images differ (baseline {base!r}, current {cur!r})"
    missing = [n for n in base if n not in cur]
    added = [n for n in cur if n not in base]
    parts = ([f"missing from the current run: {', '.join(missing)}"] if missing else []) + \
        ([f"added in the current run: {', '.join(added)}"] if added else [])
    return "images differ (" + ("; ".join(parts) or "same images, another order") + ")"


def _incomparable(base: dict[str, Any], cur: dict[str, Any], key: str) -> str:
    """Why a combination's two runs cannot be compared ('' when they can)."""
    bc, cc = base["combinations"][key], cur["combinations"][key]
    dataset = bc["dataset"]
    bd, cd = base["datasets"].get(dataset) or {}, cur["datasets"].get(dataset) or {}
    if bd.get("images") != cd.get("images"):
        return f"dataset {dataset}: {_image_difference(bd.get('images'), cd.get('images'))}"
    if bd.get("identity") != cd.get("identity"):
        return (f"dataset {dataset}: identity differs ({bd.get('identity')} vs "
                f"{cd.get('identity')}): the images' content changed")
    if _qualities(bc) != _qualities(cc):
        return f"qualities differ (baseline {_qualities(bc)}, current {_qualities(cc)})"
    if base.get("conventions_id") != cur.get("conventions_id"):
        return "metric conventions differ (harness conventions text changed)"
    bm, cm = base.get("metrics") or {}, cur.get("metrics") or {}
    changed = [m for m in judged_metrics(bc, cc) if m in bm and m in cm and bm[m] != cm[m]]
    if changed:
        return f"metric definitions differ: {', '.join(changed)} (metric identity changed)"
    run_b, run_c = base.get("run") or {}, cur.get("run") or {}
    for item in ("scale", "kernel"):
        if run_b.get(item) != run_c.get(item):
            return f"{item} differs ({run_b.get(item)} vs {run_c.get(item)})"
    return ""


# -- judging -----------------------------------------------------------------------------------
def _judge_metric(bc: dict[str, Any], cc: dict[str, Any], metric: str, tol: Tolerances,
                  method: str, seed: int) -> MetricResult:
    points = []
    base_rq: tuple[list, list] = ([], [])
    cur_rq: tuple[list, list] = ([], [])
    missing = []
    for bp, cp in zip(bc["points"], cc["points"], strict=True):
        br, bq = mean_point(bp, RATE)[0], mean_point(bp, metric)
        cr, cq = mean_point(cp, RATE)[0], mean_point(cp, metric)
        row = {"quality": bp["quality"], "bpp_baseline": br, "bpp_current": cr,
               "baseline": bq[0], "current": cq[0]}
        if br is not None and bq[0] is not None:
            base_rq[0].append(br)
            base_rq[1].append(bq[0])
        if cr is not None and cq[0] is not None:
            cur_rq[0].append(cr)
            cur_rq[1].append(cq[0])
        elif br is not None and bq[0] is not None:
            missing.append(f"quality {bp['quality']}: {cq[1] or 'no rate'}")
        if None not in (br, cr, bq[0], cq[0]):
            row["bpp_change_pct"] = (cr / br - 1.0) * 100.0
            row["delta"] = cq[0] - bq[0]
        points.append(row)
    result = MetricResult(metric, "pass", points=points)
    result.bd_rate, result.bd_quality, result.bd_note = bd_pair(base_rq, cur_rq, method)
    images = list(bc["points"][0]["images"]) if bc["points"] else []
    for image in images:
        rate, _, _ = bd_pair(_image_series(bc, image, metric), _image_series(cc, image, metric),
                         method)
        result.image_bd_rates[image] = rate
    summary = summarise(result.image_bd_rates, seed=seed)
    result.interval, result.interval_images = summary.interval, summary.used
    result.interval_note = summary.why
    if missing:
        result.status, result.reason = "regression", "n/a in the current run: " + "; ".join(
            missing)
        return result
    if result.bd_rate is not None:
        worse = []
        if result.bd_rate > tol.max_bd_rate:
            worse.append(f"BD-rate {result.bd_rate:+.3f} % > {tol.max_bd_rate:g}")
        if result.bd_quality < -tol.max_quality_drop:
            worse.append(f"BD-quality {result.bd_quality:+.4f} < -{tol.max_quality_drop:g}")
        better = (result.bd_rate < -tol.max_bd_rate
                  or result.bd_quality > tol.max_quality_drop)
    else:  # BD undefined: judge each quality on its own
        worse, better = [], False
        for row in points:
            if "delta" not in row:
                continue
            more_bits = row["bpp_change_pct"] > tol.max_bd_rate
            if (row["delta"] < -tol.max_quality_drop and row["bpp_change_pct"] >= 0) or (
                    more_bits and row["delta"] <= 0):
                worse.append(f"quality {row['quality']}: {row['delta']:+.4f} at "
                             f"{row['bpp_change_pct']:+.2f} % bits")
            elif (row["delta"] > tol.max_quality_drop and row["bpp_change_pct"] <= 0) or (
                    row["bpp_change_pct"] < -tol.max_bd_rate and row["delta"] >= 0):
                better = True
    if worse:
        result.status, result.reason = "regression", "; ".join(worse)
    elif better:
        result.status = "improvement"
        result.reason = (f"BD-rate {result.bd_rate:+.3f} %, BD-quality "
                         f"{result.bd_quality:+.4f}" if result.bd_rate is not None
                         else "better at some qualities, worse at none")
    return result


def _timings(bc: dict[str, Any], cc: dict[str, Any]) -> dict[str, float]:
    """Mean-per-image timing ratios (current / baseline), where both are measurable."""
    ratios = {}
    for name in ("encode_s", "decode_s", "sr_s"):
        means = []
        for combo in (bc, cc):
            got = [cell.get("timings", {}).get(name) for p in combo["points"]
                   for cell in p["images"].values()]
            got = [v for v in got if v is not None]
            means.append(math.fsum(got) / len(got) if got else None)
        if None not in means and means[0] >= MIN_TIMING_S:
            ratios[name] = means[1] / means[0]
    return ratios


def _judge(base: dict[str, Any], cur: dict[str, Any], key: str, tol: Tolerances,
           fingerprints_match: bool, why_not_exact: str, method: str,
           seed: int) -> CombinationResult:
    bc, cc = base["combinations"][key], cur["combinations"][key]
    result = CombinationResult(bc["dataset"], bc["codec"], bc["sr"], "pass", tolerances=tol)
    reason = _incomparable(base, cur, key)
    if reason:
        result.status, result.reason = "incomparable", reason
        return result
    result.identical = _identical(bc, cc)
    metrics = judged_metrics(bc, cc)
    if not metrics:
        result.status = "incomparable"
        result.reason = "no quality metric with a known direction was measured"
        return result
    result.metrics = [_judge_metric(bc, cc, m, tol.for_metric(m), method, seed)
                      for m in metrics]
    result.timings = _timings(bc, cc)
    for name, ratio in result.timings.items():
        if tol.fail_on_time is not None and ratio > tol.fail_on_time:
            result.warnings.append(f"{name} x{ratio:.2f} > --fail-on-time {tol.fail_on_time:g}")
        elif ratio > tol.warn_on_time:
            result.warnings.append(f"{name} x{ratio:.2f} slower")
    slow = [w for w in result.warnings if "--fail-on-time" in w]
    if result.identical and fingerprints_match:
        result.status = "unchanged"
        result.reason = "bit-identical outputs (payloads, decoded and SR images), equal values"
    elif tol.exact and fingerprints_match and result.identical is False:
        result.status = "regression"
        result.reason = "outputs differ from the baseline (--exact: any change fails)"
    else:
        statuses = {m.status for m in result.metrics}
        result.status = ("regression" if "regression" in statuses else
                         "improvement" if "improvement" in statuses else "pass")
        result.reason = "; ".join(f"{m.metric}: {m.reason}" for m in result.metrics
                                  if m.status == result.status and m.reason)
        if result.status == "pass":
            result.reason = "within tolerance"
        if result.identical and not fingerprints_match:
            result.reason += f" (outputs bit-identical, but {why_not_exact})"
        elif tol.exact and not fingerprints_match:
            result.reason += f" (--exact not applied: {why_not_exact})"
        elif result.identical is None and tol.exact:
            result.reason += " (--exact not applied: output digests missing from a store)"
    if slow:
        result.status = "regression"
        result.reason = "; ".join([*slow, *([result.reason] if result.reason else [])])
    return result


def _info(data: dict[str, Any]) -> dict[str, Any]:
    return {"harness_version": data.get("harness_version"),
            "git_commit": data.get("git_commit"), "run": data.get("run"),
            "environment": data.get("environment")}


def compare(baseline: dict[str, Any], current: dict[str, Any], *,
            tolerances: Tolerances | None = None,
            suite_tolerances: Mapping[str, Any] | None = None,
            cli_tolerances: Mapping[str, Any] | None = None,
            method: str = "pchip", seed: int = 0, allow_empty: bool = False) -> Comparison:
    """Compare two baselines (see :mod:`jcsr_bench.ci.baseline`); never writes anything.

    A baseline without combinations judges nothing: incomparable unless ``allow_empty``
    (an emptied baseline file must not pass the gate)."""
    base_tol = tolerances or Tolerances()
    diffs = _fingerprint_differences(baseline.get("environment"), current.get("environment"))
    match = not diffs
    why_not = ""
    notes = []
    if not match:
        why_not = ("environments differ (" + "; ".join(diffs[:4])
                   + (f"; +{len(diffs) - 4} more" if len(diffs) > 4 else "")
                   + "): bit-identity is not expected, judged by tolerances")
        notes.append(f"Fell back to tolerances: {why_not}.")
    suites = [(d.get("run") or {}).get("suite") for d in (baseline, current)]
    if suites[0] != suites[1]:
        notes.append(f"Suites differ: baseline from {suites[0] or 'no suite'}, current from "
                     f"{suites[1] or 'no suite'}.")
    if baseline.get("harness_version") != current.get("harness_version"):
        notes.append(f"Harness version {baseline.get('harness_version')} (baseline) vs "
                     f"{current.get('harness_version')} (current).")
    results = []
    keys = list(dict.fromkeys([*baseline["combinations"], *current["combinations"]]))
    for key in keys:
        in_base, in_cur = key in baseline["combinations"], key in current["combinations"]
        combo = (baseline if in_base else current)["combinations"][key]
        tol = tolerances_for(f"{combo['codec']}+{combo['sr']}", base_tol, suite_tolerances,
                             cli_tolerances or {})
        if not in_cur:
            results.append(CombinationResult(combo["dataset"], combo["codec"], combo["sr"],
                                             "removed", "in the baseline, not in the current "
                                             "run", tolerances=tol))
        elif not in_base:
            results.append(CombinationResult(combo["dataset"], combo["codec"], combo["sr"],
                                             "new", "not in the baseline (not judged)",
                                             tolerances=tol))
        else:
            results.append(_judge(baseline, current, key, tol, match, why_not, method, seed))
    empty = not baseline["combinations"] and not allow_empty
    return Comparison(results, match, diffs, notes, _info(baseline), _info(current), method,
                      empty_baseline=empty)
