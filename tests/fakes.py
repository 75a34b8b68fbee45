"""Fake components that count their calls, and a registry of them, for run tests.

Fakes implement the component protocols (jcsr_bench.components): a lossy quantising
codec (self-contained payload), a nearest-neighbour SR model, a tiny in-memory dataset.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import signal
import struct
import time
import types
import zlib
from collections import Counter
from pathlib import Path

import torch

from jcsr_bench import hookimpl
from jcsr_bench.kit.identity import digest, make_identity
from jcsr_bench.plugin.manager import PluginManager
from jcsr_bench.plugin.registry import Registry
from jcsr_bench.results.store import load_rows
from jcsr_bench.run.engine import pixel_hash, run
from jcsr_bench.testing import sample_image

ENCODES: Counter = Counter()  # (codec identity, quality, LR pixel hash) -> encode calls


class FakeCodec:
    """Quantises each sample to ``step * quality``; payload = header + zlib."""

    def __init__(self, step: int = 8, qualities=(1, 2), weights: str | None = None,
                 delay: float = 0.0, fail_quality=None, missing: bool = False,
                 crash_quality=None):
        self.step, self.delay, self.fail_quality = step, delay, fail_quality
        self.crash_quality = crash_quality
        self.weights, self.missing = weights, missing
        wid = hashlib.sha256(Path(weights).read_bytes()).hexdigest() if weights else None
        self.identity = make_identity("fake-codec", step=step, weights=wid)
        self.qualities = list(qualities)

    def missing_weights(self, qualities=None):
        return [f"fake weights for {q}: put them in /nowhere" for q in qualities or []] \
            if self.missing else []

    def encode(self, image, quality):
        ENCODES[(self.identity, quality, pixel_hash(image))] += 1
        log = os.environ.get("FAKE_CODEC_LOG")
        if log:
            with open(log, "a") as handle:
                handle.write(f"{self.identity} {quality}\n")
        if self.delay:
            time.sleep(self.delay)
        if quality == self.crash_quality and multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)  # a worker process dies mid-unit
        if quality == self.fail_quality:
            raise RuntimeError(f"fake codec cannot do quality {quality}")
        step = self.step * quality
        h, w = image.shape[1:]
        q = (image.to(torch.int32) // step).to(torch.uint8)
        return struct.pack(">HHB", h, w, step) + zlib.compress(q.numpy().tobytes())

    def decode(self, data):
        h, w, step = struct.unpack_from(">HHB", data)
        raw = zlib.decompress(data[5:])
        q = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(3, h, w).to(torch.int32)
        return (q * step + step // 2).clamp(0, 255).to(torch.uint8)


class FakeSR:
    """Nearest-neighbour upscaling."""

    def __init__(self, scale: int = 4, shift: int = 0):
        self.scale, self.shift = scale, shift
        self.identity = make_identity("fake-sr", scale=scale, shift=shift)
        self.calls = 0

    def upscale(self, image):
        self.calls += 1
        out = image.repeat_interleave(self.scale, 1).repeat_interleave(self.scale, 2)
        return (out.int() + self.shift).clamp(0, 255).to(torch.uint8)


class FakeLatentCodec(FakeCodec):
    """A fake codec offering its latent: the quantised levels, synthesised by scaling."""

    def decode_latent(self, data):
        from jcsr_bench.components import Latent

        h, w, step = struct.unpack_from(">HHB", data)
        raw = zlib.decompress(data[5:])
        q = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(1, 3, h, w).float()
        return Latent(q * step, step, (h, w), (0, 0), 1)

    def synthesize(self, latent):
        step = latent.quality
        return (latent.y[0] + step // 2).clamp(0, 255).to(torch.uint8)


class FakeLatentSR(FakeSR):
    """Declares it consumes the latent: nearest-neighbour upscaling of its synthesis + 1."""

    consumes_latent = True

    def __init__(self, scale: int = 4):
        super().__init__(scale, shift=1)
        self.identity = make_identity("fake-latent-sr", scale=scale)

    def upscale(self, image):
        raise AssertionError("a latent-consuming model is never handed the decoded image")

    def upscale_latent(self, latent, codec):
        return FakeSR.upscale(self, codec.synthesize(latent))


class FakeImages:
    """``n`` deterministic images, iterated (no names/load: the generic path)."""

    def __init__(self, n: int = 3, height: int = 40, width: int = 56, bad: str | None = None):
        self.images = [(f"img{i}", sample_image(height, width, seed=i)) for i in range(n)]
        if bad:
            self.images[1] = (bad, torch.zeros(3, 8, 8, dtype=torch.float32))
        self.identity = digest([pixel_hash(im) if im.dtype == torch.uint8 else "bad"
                                for _, im in self.images])

    def __iter__(self):
        return iter(self.images)

    def __len__(self):
        return len(self.images)


def make_plugin():
    plugin = types.ModuleType("jcsr_fake_plugin")

    @hookimpl
    def register_codecs(register):
        register("fake-codec", FakeCodec, params={"step": int, "qualities": list,
                                                  "weights": str, "delay": float,
                                                  "fail_quality": int, "missing": bool,
                                                  "crash_quality": int})
        register("fake-latent-codec", FakeLatentCodec, params={"step": int, "qualities": list})

    @hookimpl
    def register_sr_models(register):
        register("fake-sr", FakeSR, params={"scale": int, "shift": int})
        register("fake-latent-sr", FakeLatentSR, params={"scale": int})

    @hookimpl
    def register_datasets(register):
        register("fake-images", FakeImages, params={"n": int, "height": int, "width": int,
                                                    "bad": str})

    plugin.register_codecs = register_codecs
    plugin.register_sr_models = register_sr_models
    plugin.register_datasets = register_datasets
    return plugin


REGISTRY = """
codecs:
  fa: {type: fake-codec, step: 8, qualities: [1, 2]}
  fb: {type: fake-codec, step: 12, qualities: [1, 2]}
  slow-a: {type: fake-codec, step: 8, qualities: [1, 2], delay: DELAY}
  slow-b: {type: fake-codec, step: 12, qualities: [1, 2], delay: DELAY}
  flaky: {type: fake-codec, step: 8, qualities: [1, 2], fail_quality: 2}
  crashy: {type: fake-codec, step: 8, qualities: [1, 2], crash_quality: 2}
  gone: {type: fake-codec, step: 9, qualities: [1], missing: true}
  weighted: {type: fake-codec, step: 8, qualities: [1, 2], weights: WEIGHTS}
sr:
  up: {type: fake-sr}
  up-bright: {type: fake-sr, shift: 3}
  x2: {type: fake-sr, scale: 2}
datasets:
  tiny: {type: fake-images, n: 3}
  broken: {type: fake-images, n: 3, bad: broken-one}
suites:
  default:
    datasets: [tiny]
    codecs: [fa, gone]
    sr: [up, bicubic]
    anchor: {codec: fa, sr: bicubic}
"""


def make_registry(folder: Path, delay: float = 0.0) -> Registry:
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "weights.bin"
    if not weights.exists():
        weights.write_bytes(b"version 1")
    path = folder / "registry.yaml"
    path.write_text(REGISTRY.replace("DELAY", str(delay)).replace("WEIGHTS", str(weights)))
    registry = Registry(PluginManager(entry_points=False, extra_plugins=(make_plugin(),)))
    registry.add_file(path)
    registry.check_suites()
    return registry


def go(registry, tmp_path, out="out", **kwargs):
    kwargs.setdefault("datasets", ["tiny"])
    kwargs.setdefault("codecs", ["fa", "fb"])
    kwargs.setdefault("srs", ["up", "bicubic"])
    return run(registry=registry, output=tmp_path / out, progress=False,
               stream=io.StringIO(), device="cpu", **kwargs)


def _values(db: Path) -> dict:
    """Stored metric values without timings, keyed by names."""
    return {(r["dataset"], r["image"], r["codec"], str(r["quality"]), r["sr"]):
            {k: v for k, v in r["values"].items() if not k.endswith("_s")}
            for r in load_rows(db)}
