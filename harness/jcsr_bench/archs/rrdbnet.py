"""RRDBNet (ESRGAN's generator), every published key scheme, strict loading.

Published RRDBNet weights come in three key schemes (see docs/sr-and-baseline-2.md): the
ESRGAN repository's (``RRDB_trunk``, ``trunk_conv``, ``upconv1``, ``HRconv``), BasicSR /
Real-ESRGAN's (``body``, ``conv_body``, ``conv_up1``, ``conv_hr``; wrapped in ``params``
/ ``params_ema``) and the oldest sequential one (``model.0``, ``model.1.sub...``). They
are all converted to BasicSR keys, our canonical ``state_dict``; the architecture
hyper-parameters are read off the weights, and loading is strict. Shared by the
``esrgan`` SR plugin and adaptive-SR training, as BasicSR's ``archs/``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from jcsr_bench.artifacts import weights
from jcsr_bench.artifacts.weights import unwrap_state_dict
from jcsr_bench.kit.errors import JcsrError, WeightsError

IMPL_VERSION = 1  # bump when RRDBNet's numerics change (invalidates cached outputs)


# --------------------------------------------------------------------------- network


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs with dense connections; output scaled by 0.2 and added to the input."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        g = num_grow_ch
        self.conv1 = nn.Conv2d(num_feat, g, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + g, g, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * g, g, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * g, g, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * g, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5.mul_(0.2).add_(x)


class RRDB(nn.Module):
    """Residual in residual dense block: three dense blocks, residual scaling 0.2."""

    def __init__(self, num_feat: int, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.rdb3(self.rdb2(self.rdb1(x)))
        return out.mul_(0.2).add_(x)


class RRDBNet(nn.Module):
    """ESRGAN's generator. Float NCHW input in [0, 1], float output (not clamped).

    ``scale`` 4 is ESRGAN's; 2 and 1 are Real-ESRGAN's variants (pixel-unshuffled input,
    same x4 body). The ``state_dict`` uses BasicSR key names.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
        scale: int = 4,
        skip: str | None = None,
    ) -> None:
        super().__init__()
        if scale not in (1, 2, 4):
            raise JcsrError(f"RRDBNet supports scale 1, 2 or 4, got {scale!r}")
        if skip not in (None, "bicubic"):
            raise JcsrError(f"RRDBNet skip must be null or 'bicubic', got {skip!r}")
        self.scale = scale
        self.arch = {
            "num_in_ch": num_in_ch,
            "num_out_ch": num_out_ch,
            "num_feat": num_feat,
            "num_block": num_block,
            "num_grow_ch": num_grow_ch,
            "scale": scale,
            "skip": skip,
        }
        self._unshuffle = {4: 1, 2: 2, 1: 4}[scale]
        in_ch = num_in_ch * self._unshuffle**2
        self.conv_first = nn.Conv2d(in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        self.skip = skip
        if skip == "bicubic":
            # The network learns a residual over bicubic upscaling (small models trained
            # briefly start from bicubic quality). The marker buffer makes the variant
            # part of the weights, so ``infer_arch`` recovers it; the zero-initialised last
            # conv makes a fresh model exactly bicubic.
            self.register_buffer("skip_bicubic", torch.ones(()))
            nn.init.zeros_(self.conv_last.weight)
            nn.init.zeros_(self.conv_last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        source = x
        h, w = x.shape[-2:]
        f = self._unshuffle
        if f > 1:
            pad_h, pad_w = (-h) % f, (-w) % f
            if pad_h or pad_w:
                x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
            x = F.pixel_unshuffle(x, f)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        if f > 1:
            out = out[..., : h * self.scale, : w * self.scale]
        if self.skip == "bicubic":
            out = out + F.interpolate(source, scale_factor=self.scale, mode="bicubic",
                                      align_corners=False)
        return out


DEFAULT_ARCH = {
    "num_in_ch": 3,
    "num_out_ch": 3,
    "num_feat": 64,
    "num_block": 23,
    "num_grow_ch": 32,
    "scale": 4,
    "skip": None,
}

# --------------------------------------------------------------------------- key schemes

_WRAPPERS = ("params_ema", "params", "state_dict", "model_state_dict")

_ESRGAN_REPO = [  # ESRGAN repository (RRDB_ESRGAN_x4.pth) -> BasicSR
    (
        re.compile(r"^RRDB_trunk\.(\d+)\.RDB(\d)\.conv(\d)\.(weight|bias)$"),
        r"body.\1.rdb\2.conv\3.\4",
    ),
    (re.compile(r"^trunk_conv\.(weight|bias)$"), r"conv_body.\1"),
    (re.compile(r"^upconv(\d)\.(weight|bias)$"), r"conv_up\1.\2"),
    (re.compile(r"^HRconv\.(weight|bias)$"), r"conv_hr.\1"),
]

_OLD_BODY = re.compile(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$")
_OLD_LAYER = re.compile(r"^model\.(\d+)(?:\.sub\.(\d+))?\.(weight|bias)$")


def _unwrap(state: Mapping[str, Any]) -> dict[str, Any]:
    """Unwrap BasicSR-style containers (prefer ``params_ema``) and DataParallel prefixes."""
    if not isinstance(state, Mapping):
        raise WeightsError(f"expected a state_dict (a mapping), got {type(state).__name__}")
    return unwrap_state_dict(state, keys=_WRAPPERS)


def detect_scheme(state: Mapping[str, Any]) -> str:
    """``"basicsr"``, ``"esrgan"`` (ESRGAN repo) or ``"old"`` (sequential ``model.N``)."""
    keys = set(state)
    if any(k.startswith("RRDB_trunk.") for k in keys) or "trunk_conv.weight" in keys:
        return "esrgan"
    if "model.0.weight" in keys:
        if any(".conv1x1." in k for k in keys):
            raise WeightsError(
                "this is an ESRGAN+ checkpoint (extra 1x1 convs); the esrgan type loads "
                "plain RRDBNet only -- use the spandrel type for it"
            )
        return "old"
    if "conv_first.weight" in keys:
        return "basicsr"
    sample = ", ".join(sorted(keys)[:6])
    raise WeightsError(
        "not an RRDBNet (ESRGAN) checkpoint: none of the known key schemes "
        f"(conv_first/body..., RRDB_trunk/trunk_conv..., model.0/model.1.sub...) matches; "
        f"keys start with: {sample}{' ...' if len(keys) > 6 else ''}"
    )


def _from_old(state: dict[str, Any]) -> dict[str, Any]:
    """``model.0`` / ``model.1.sub.i.RDBj.convk.0`` / ``model.3,6,8,10`` -> BasicSR keys."""
    body_ids = [int(m.group(1)) for k in state if (m := _OLD_BODY.match(k))]
    num_block = max(body_ids) + 1 if body_ids else 0
    # model.1.sub.<num_block> is the trunk conv; the sequential tail is
    # [upsample, conv, lrelu] per x2 step, then conv_hr, lrelu, conv_last.
    tail = sorted({int(m.group(1)) for k in state if (m := _OLD_LAYER.match(k))} - {0, 1})
    names = {}
    if len(tail) >= 2:
        ups = tail[:-2]
        names = {idx: f"conv_up{i + 1}" for i, idx in enumerate(ups)}
        names[tail[-2]] = "conv_hr"
        names[tail[-1]] = "conv_last"
        if len(ups) != 2:
            raise WeightsError(
                f"old-arch RRDBNet with {len(ups)} upsampling convs (scale {2 ** len(ups)}) "
                "is not supported by the esrgan type (x4 only); use the spandrel type"
            )
    out: dict[str, Any] = {}
    for key, value in state.items():
        if m := _OLD_BODY.match(key):
            i, j, k, kind = m.groups()
            out[f"body.{i}.rdb{j}.conv{k}.{kind}"] = value
        elif (m := _OLD_LAYER.match(key)) and m.group(1) == "0" and m.group(2) is None:
            out[f"conv_first.{m.group(3)}"] = value
        elif m and m.group(1) == "1" and m.group(2) == str(num_block):
            out[f"conv_body.{m.group(3)}"] = value
        elif m and m.group(2) is None and int(m.group(1)) in names:
            out[f"{names[int(m.group(1))]}.{m.group(3)}"] = value
        else:
            out[key] = value  # left as is: strict loading reports it as unexpected
    return out


def to_basicsr_keys(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Any of the three published schemes (possibly wrapped) -> BasicSR key names."""
    state = _unwrap(state_dict)
    scheme = detect_scheme(state)
    if scheme == "basicsr":
        return state
    if scheme == "old":
        return _from_old(state)
    out = {}
    for key, value in state.items():
        for pattern, repl in _ESRGAN_REPO:
            if pattern.match(key):
                key = pattern.sub(repl, key)
                break
        out[key] = value
    return out


def infer_arch(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """RRDBNet constructor kwargs read off the weights (any scheme)."""
    state = to_basicsr_keys(state_dict)
    try:
        first = state["conv_first.weight"]
        last = state["conv_last.weight"]
        grow = state["body.0.rdb1.conv1.weight"]
    except KeyError as err:
        raise WeightsError(
            f"RRDBNet checkpoint lacks {err.args[0]!r}; cannot infer the arch"
        ) from None
    blocks = [int(m.group(1)) for k in state if (m := re.match(r"^body\.(\d+)\.", k))]
    in_ch, out_ch = int(first.shape[1]), int(last.shape[0])
    if in_ch == out_ch * 16:
        scale, num_in = 1, in_ch // 16
    elif in_ch == out_ch * 4:
        scale, num_in = 2, in_ch // 4
    else:
        scale, num_in = 4, in_ch
    return {
        "num_in_ch": num_in,
        "num_out_ch": out_ch,
        "num_feat": int(first.shape[0]),
        "num_block": max(blocks) + 1,
        "num_grow_ch": int(grow.shape[0]),
        "scale": scale,
        "skip": "bicubic" if "skip_bicubic" in state else None,
    }


def _listing(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def load_state_strict(net: nn.Module, state: Mapping[str, Any], source: str = "") -> None:
    """``load_state_dict(strict=True)`` with a readable missing / unexpected / shape report."""
    expected = net.state_dict()
    missing = sorted(k for k in expected if k not in state)
    unexpected = sorted(k for k in state if k not in expected)
    shapes = sorted(
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)
    )
    if missing or unexpected or shapes:
        parts = [f"weights {source or '(state_dict)'} do not fit RRDBNet{getattr(net, 'arch', '')}"]
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_listing(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches ({len(shapes)}): {_listing(shapes)}")
        raise WeightsError("\n  ".join(parts))
    net.load_state_dict(state, strict=True)


def _load_file(path: Path) -> Mapping[str, Any]:
    return weights.load_checkpoint(path)


def load_rrdbnet(path_or_state_dict: str | Path | Mapping[str, Any]) -> RRDBNet:
    """Build an RRDBNet from a checkpoint file or state_dict in any scheme, strictly."""
    if isinstance(path_or_state_dict, (str, Path)):
        source = str(path_or_state_dict)
        state_dict = _load_file(Path(path_or_state_dict).expanduser())
    else:
        source, state_dict = "", path_or_state_dict
    state = to_basicsr_keys(state_dict)
    try:
        arch = infer_arch(state)
    except WeightsError as err:
        raise WeightsError(f"{source or 'state_dict'}: {err}") from None
    net = RRDBNet(**arch)
    load_state_strict(net, {k: v for k, v in state.items()}, source)
    return net.eval()
