"""Missing pieces -- weights, datasets, untrained adaptive models -- found before any compute.

Every missing piece is collected with a one-line remedy, deduplicated (a weight file that
two components need is listed once, naming both). Pieces of explicitly requested
components stop the run with all of them at once (:class:`MissingPieces`, exit 2);
``--dry-run`` prints them under the plan. Default-suite components with missing pieces
are skipped and listed with the remedy. Online, weights are obtained (downloaded and
verified) here -- not in a dry run -- so a failed download is reported with the rest.

An untrained adaptive SR model (baseline 2) needs more than the command that trains it:
its starting weights, the perceptual loss's VGG19 and its training dataset
(``jcsr_bench.training.needs``); those are listed too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from jcsr_bench.components import missing_weights_of
from jcsr_bench.kit.errors import DataError, WeightsError, one_line
from jcsr_bench.kit.paths import offline
from jcsr_bench.results.store import quality_text
from jcsr_bench.training.config import resolve_config
from jcsr_bench.training.joint import joint_start_notes
from jcsr_bench.training.needs import missing_weights, training_needs

if TYPE_CHECKING:
    from jcsr_bench.run.plan import Component, Planner


@dataclass
class Skipped:
    """A component left out of the run (default suite only), with the remedy."""

    kind: str
    name: str
    reason: str


class MissingPieces(WeightsError, DataError):
    """Weights, datasets or trained models a run needs are missing (all are listed)."""


@dataclass
class Missing:
    """One missing piece: who needs it (label -> component kind and name), the remedy."""

    needed_by: dict[str, tuple[str, str]]
    remedy: str
    explicit: bool


def add_missing(found: list[Missing], needed_by: str, remedy: str, explicit: bool,
                kind: str, name: str) -> None:
    """Add a piece, merging it with an equal remedy already listed (deduplication)."""
    for item in found:
        if item.remedy == remedy:
            item.needed_by.setdefault(needed_by, (kind, name))
            item.explicit = item.explicit or explicit
            return
    found.append(Missing({needed_by: (kind, name)}, remedy, explicit))


#: A missing weight file's remedy (artifacts.weights wording), for grouping.
_WEIGHT_REMEDY = re.compile(r"^(?P<pre>.*?)weight file (?P<file>\S+) is not in (?P<folder>\S+): "
                            r"download it from (?P<url>\S+) into that folder(?P<tail>.*)$")
#: The same piece online when the download failed (``artifacts.weights`` wording).
_FAILED_DOWNLOAD = re.compile(r"^(?P<pre>.*?)could not download (?P<url>\S+): (?P<error>.*)\. "
                              r"Download it yourself into (?P<folder>\S+) \(file name "
                              r"(?P<file>\S+)\), or check your connection\.$")


def group_remedies(remedies: list[str]) -> list[str]:
    """Remedies for several weight files of one folder whose URLs share a pattern
    (``BASE/<file name>``) become one line naming the files; others stay as they are.
    Offline remedies and failed downloads (the same error) group alike."""
    groups: dict[tuple[str, ...], list[str]] = {}
    out: list[str | tuple[str, ...]] = []
    for remedy in remedies:
        m = _WEIGHT_REMEDY.match(remedy) or _FAILED_DOWNLOAD.match(remedy)
        if not m or not m["url"].endswith("/" + m["file"]):
            out.append(remedy)
            continue
        kind = "offline" if m.re is _WEIGHT_REMEDY else "failed"
        detail = m["tail"] if kind == "offline" else m["error"]
        key = (kind, m["folder"], m["url"][: -len(m["file"])], detail)
        if key not in groups:
            groups[key] = []
            out.append(key)
        groups[key].append(m["file"])
    lines = []
    for item in out:
        if isinstance(item, str):
            lines.append(item)
            continue
        kind, folder, base, detail = item
        files = groups[item]
        if len(files) == 1:
            lines.append(next(r for r in remedies if files[0] in r))
        elif kind == "offline":
            lines.append(f"{len(files)} weight files are not in {folder}: download each from "
                         f"{base}<name> into that folder{detail}: {', '.join(files)}")
        else:
            lines.append(f"{len(files)} weight files could not be downloaded ({detail}): "
                         f"download each from {base}<name> into {folder} yourself, or check "
                         f"your connection: {', '.join(files)}")
    return lines


def format_missing(found: list[Missing]) -> list[str]:
    """``needed by: remedy`` lines, one per distinct piece; a component's weight files
    of one folder and URL pattern share one line."""
    by_who: dict[str, list[str]] = {}
    for item in found:
        by_who.setdefault("; ".join(item.needed_by), []).append(item.remedy)
    return [f"  {who}: {line}" for who, remedies in by_who.items()
            for line in group_remedies(remedies)]


def print_skipped(skipped: list[Skipped], stream: TextIO) -> None:
    """The dry run's components left out (default suite), grouped per component."""
    if not skipped:
        return
    print("\nskipped (not evaluated):", file=stream)
    grouped: dict[tuple[str, str], list[str]] = {}
    for s in skipped:
        grouped.setdefault((s.kind, s.name), []).append(s.reason)
    for (kind, name), reasons in grouped.items():
        prefix = "missing weights: "
        weights = [r.removeprefix(prefix) for r in reasons if r.startswith(prefix)]
        lines = [r for r in reasons if not r.startswith(prefix)]
        lines += [prefix + line for line in group_remedies(weights)]
        for line in lines:
            print(f"  {kind} {name}: {line}", file=stream)


def not_evaluated_line(skipped: list[Skipped]) -> str | None:
    """A run's one short line for metrics left out for missing weights (the dry run has
    the details), or None."""
    names = list(dict.fromkeys(s.name for s in skipped if s.kind == "metric"
                               and s.reason.startswith("missing weights")))
    if not names:
        return None
    return (f"not evaluated: {', '.join(names)} -- `jcsr-bench run --dry-run` says what to "
            "fetch")


def print_missing(found: list[Missing], downloads: list[Missing], stream: TextIO) -> None:
    """The dry run's list of what must be done before the run can compute everything."""
    if downloads:
        print(f"\nto download when the run (or its training) starts ({len(downloads)}):",
              file=stream)
        for line in format_missing(downloads):
            print(line, file=stream)
    blocking = [m for m in found if m.explicit]
    if blocking:
        print(f"\nmissing ({len(blocking)}; the run stops until each is done):", file=stream)
        for line in format_missing(blocking):
            print(line, file=stream)


def missing_error(found: list[Missing], downloads: list[Missing] = ()) -> MissingPieces:
    """The error of a run that cannot start; ``downloads``: what training (online) will
    fetch, so that the list is the same, complete, whatever the network state."""
    blocking = [m for m in found if m.explicit]
    text = (f"{len(blocking)} missing piece(s), nothing was computed:\n"
            + "\n".join(format_missing(blocking)))
    if downloads:
        text += (f"\nand to download when training starts ({len(downloads)}):\n"
                 + "\n".join(format_missing(list(downloads))))
    return MissingPieces(text)


def check_weights(planner: Planner, codecs: list[Component], srs: list[Component], *,
                  train: Callable[[list], None] | None = None, fetch: bool = True
                  ) -> tuple[list[Component], list[Component], set]:
    """The codecs and SR models to run and the (sr, codec, quality) triples left out.

    Missing pieces go to ``planner.missing``. ``train`` receives ``[(sr, codec,
    qualities)]`` for untrained adaptive models and trains them; they are then looked up
    again. ``fetch`` (off in a dry run) downloads weights when online.
    """
    ok_codecs = [codec for codec in codecs if weights_ready(
        planner, "codec", codec.name, codec.explicit,
        missing_weights_of(codec.obj, codec.qualities),
        lambda codec=codec: _prefetch_codec(codec), fetch)]
    ok_srs = [sr for sr in srs if weights_ready(
        planner, "sr", sr.name, sr.explicit, missing_weights_of(sr.obj),
        lambda sr=sr: _prefetch_sr(sr), fetch)]
    left_out: set[tuple[str, str, str]] = set()
    for sr in ok_srs:
        if not callable(getattr(sr.obj, "for_codec", None)):
            continue
        untrained = _untrained(planner, sr, codecs)
        if untrained and train is not None:
            ready = [(codec, qs) for codec, qs, _ in untrained if codec in ok_codecs]
            if ready:
                train([(sr, codec, qualities) for codec, qualities in ready])
                planner.forget_adapted()
                untrained = _untrained(planner, sr, codecs)
        if untrained:
            _report_untrained(planner, sr, untrained)
        for codec, qualities, _ in untrained:
            left_out.update((sr.name, codec.name, quality_text(q)) for q in qualities)
    return ok_codecs, ok_srs, left_out


def weights_ready(planner: Planner, kind: str, name: str, explicit: bool, texts: list[str],
                  prefetch: Callable[[], list[str]], fetch: bool) -> bool:
    """True when a component's weights are all there. Online, missing ones are obtained
    now with ``prefetch`` (which returns what still fails); a dry run online lists them
    as downloads instead. What stays missing goes to ``planner.missing``."""
    label = f"{kind} {name}"
    if texts and not offline():
        if not fetch:  # a dry run online: the real run downloads them
            for text in texts:
                add_missing(planner.downloads, label, text, True, kind, name)
            return False  # not keyed: an identity may need the file
        texts = prefetch()
    for text in texts:
        add_missing(planner.missing, label, text, explicit, kind, name)
    return not texts


def _report_untrained(planner: Planner, sr: Component, untrained: list[tuple]) -> None:
    """The train command per codec, and what training itself needs."""
    found = planner.missing
    explicit = sr.explicit or any(codec.explicit for codec, _, _ in untrained)
    for need, remedy in training_needs(planner.registry, sr.name):
        add_missing(found, f"sr {sr.name} (training: {need})", remedy, explicit, "sr", sr.name)
    if not offline():  # online, training downloads them: said all the same
        adapt = planner.registry.resolve("sr", sr.name).params.get("adapt")
        if isinstance(adapt, dict):
            for need, remedy in missing_weights(planner.registry, resolve_config(adapt)):
                add_missing(planner.downloads, f"sr {sr.name} (training: {need})", remedy,
                            explicit, "sr", sr.name)
    for codec, qualities, texts in untrained:
        qs = ",".join(str(q) for q in qualities)
        who = f"sr {sr.name} after codec {codec.name}, quality {qs}"
        explicit_here = sr.explicit or codec.explicit
        remedy = (f"train them: `jcsr-bench train-sr --sr {sr.name} --codec {codec.name} "
                  f"--qualities {qs}` (or add --train to this run)")
        add_missing(found, who, remedy, explicit_here, "sr", sr.name)
        for note in joint_start_notes(planner.registry, sr.name, codec.name, codec.obj,
                                      qualities):
            add_missing(found, who, note, explicit_here, "sr", sr.name)
        # what kept the models from being looked up at all (e.g. an unreadable training
        # dataset: models are keyed by its content), unless a training need says it
        for is_untrained, text in texts:
            if not is_untrained and not any(item.remedy in text for item in found):
                add_missing(found, who, text, explicit_here, "sr", sr.name)


def skip_implicit(planner: Planner) -> None:
    """Default-suite components with missing pieces are skipped, each with its remedy."""

    for item in planner.missing:
        if item.explicit:
            continue
        for who, (kind, name) in item.needed_by.items():
            label = f"{kind} {name}"
            detail = (item.remedy if who == label
                      else f"{who.removeprefix(label + ' ')}: {item.remedy}")
            planner.skipped.append(Skipped(kind, name, f"missing weights: {detail}"))


def _prefetch_codec(codec: Component) -> list[str]:
    """Online: obtain (download + verify) weights now; what still fails is missing."""
    load = getattr(codec.obj, "model", None)
    if not callable(load):
        return []  # the component downloads on first use
    failed = []
    for quality in codec.qualities:
        try:
            load(quality)
        except Exception as exc:
            failed.append(f"quality {quality}: {one_line(exc)}")
    return failed


def _prefetch_sr(sr: Component) -> list[str]:
    try:
        _ = sr.obj.identity, sr.obj.scale  # resolves (downloads) the weights
    except Exception as exc:
        return [one_line(exc)]
    return []


def _untrained(planner: Planner, sr: Component, codecs: list[Component]) -> list[tuple]:
    """``[(codec, qualities, [(is TrainedWeightsMissing, message)])]`` not loadable."""
    try:
        from jcsr_bench.artifacts.trained_store import TrainedWeightsMissing
    except ImportError:  # pragma: no cover - the built-in plugin is always there
        TrainedWeightsMissing = WeightsError  # noqa: N806
    found = []
    for codec in codecs:
        if (sr.name, codec.name) in planner.refused:  # latent consumer, latent-less codec
            continue
        try:
            _ = codec.obj.identity
        except Exception:  # its own missing weights are reported already
            continue
        qualities, texts = [], []
        for quality in codec.qualities:
            try:
                planner.adapted(sr, codec, quality)
            except Exception as exc:
                qualities.append(quality)
                texts.append((isinstance(exc, TrainedWeightsMissing), one_line(exc)))
        if qualities:
            found.append((codec, qualities, texts))
    return found
