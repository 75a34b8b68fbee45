"""LPIPS and DISTS: learned perceptual distances (lower is better).

Both take every weight file through :mod:`jcsr_bench.artifacts.weights` (published URL, SHA-256,
torch hub's checkpoint folder, ``--offline``): the ImageNet backbones are torchvision's
published files, the learned heads are the authors' files.

- LPIPS v0.1 runs the authors' ``lpips`` package (``pip install "jcsr-bench[perceptual]"``)
  with a randomly initialised network into which the verified files are loaded: the
  package's own constructor would fetch the backbone through torchvision, unverified.
- DISTS is written here (:class:`DISTSNet`): the ``DISTS_pytorch`` package downloads VGG16
  in its constructor and reads its alpha/beta from ``sys.prefix``, so it cannot take
  verified files; the tests prove this network equal to the package on the same weights.

Conventions: the full 8-bit RGB image, per image; LPIPS inputs in [-1, 1], DISTS inputs
in [0, 1]; no resizing.
"""

from __future__ import annotations

import warnings
from typing import Any

from jcsr_bench.artifacts import weights
from jcsr_bench.imaging.quality import _check_pair
from jcsr_bench.kit.identity import make_identity

#: torchvision's published ImageNet backbones (file names carry their hash prefix).
BACKBONES = {
    "alex": {"url": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"},
    "vgg": {"url": "https://download.pytorch.org/models/vgg16-397923af.pth"},
}

_LPIPS_RAW = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1"
#: The LPIPS authors' v0.1 linear layers (the files shipped in their repository and in
#: the ``lpips`` wheel; full SHA-256 of those files).
LPIPS_HEADS = {
    "alex": {
        "url": f"{_LPIPS_RAW}/alex.pth",
        "sha256": "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
        "filename": "lpips-v0.1-alex-df73285e.pth",
    },
    "vgg": {
        "url": f"{_LPIPS_RAW}/vgg.pth",
        "sha256": "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
        "filename": "lpips-v0.1-vgg-a78928a0.pth",
    },
}

#: The DISTS authors' alpha/beta weights (``DISTS_pytorch/weights.pt`` in their repository).
DISTS_HEAD = {
    "url": "https://github.com/dingkeyan93/DISTS/raw/master/DISTS_pytorch/weights.pt",
    "sha256": "f5e65c96230b7f6ca995691647d482237e4cab8a50c5c4a5784f219ef0748218",
    "filename": "dists-f5e65c96.pt",
}


def _float01(image: Any, device: Any) -> Any:
    """``uint8 [3, H, W]`` -> ``float32 [1, 3, H, W]`` in [0, 1] on ``device``."""
    return image.to(device).unsqueeze(0).float().div_(255.0)


class _Perceptual:
    """Shared plumbing: weight sources, offline remedies, lazy network, device."""

    higher_is_better = False
    accepts_prepared = True  # jcsr_bench.imaging.quality.compute_metric: on the run's device

    def __init__(self, sources: dict[str, Any]) -> None:
        self.sources = {role: weights.normalize_source(s) for role, s in sources.items()}
        self._net: Any = None
        self._device = "cpu"

    def missing_weights(self) -> list[str]:
        """Remedies for weight files not available offline (empty: ready to run)."""
        return [r for r in (weights.missing_remedy(s) for s in self.sources.values()) if r]

    def fetch_weights(self) -> None:
        """Download (and verify) every weight file not yet in the cache; the planner
        calls this before a run when the network is allowed."""
        for source in self.sources.values():
            weights.resolve(source)

    def _weights_identity(self) -> dict[str, str]:
        return {role: s.get("sha256") or str(s.get("path")) for role, s in self.sources.items()}

    def _state(self, role: str) -> dict[str, Any]:
        path = weights.resolve(self.sources[role])
        return weights.unwrap_state_dict(weights.load_checkpoint(path))

    def to(self, device: Any) -> _Perceptual:
        self._device = device
        if self._net is not None:
            self._net.to(device)
        return self

    def network(self) -> Any:
        if self._net is None:
            self._net = self._build().eval().to(self._device)
        return self._net

    def compute(self, reference: Any, test: Any) -> float:
        """The distance; a prepared reference keeps its float copy for the image's cells."""
        import torch

        reference, test = _check_pair(reference, test)
        net = self.network()
        device = next(net.parameters()).device
        with torch.inference_mode():
            x = reference.derived(f"float01:{device}", lambda image: _float01(image, device))
            return float(self._distance(net, x, _float01(test.image, device)))


class LPIPS(_Perceptual):
    """LPIPS v0.1 (Zhang et al. 2018), AlexNet (default, the authors' forward metric) or VGG."""

    def __init__(self, net: str = "alex", weights: Any = None, backbone: Any = None) -> None:
        if net not in LPIPS_HEADS:
            raise ValueError(f"lpips: net must be one of {sorted(LPIPS_HEADS)}, got {net!r}")
        self.net = net
        self.name = f"lpips-{net}" if net != "alex" else "lpips"
        super().__init__({"head": weights or LPIPS_HEADS[net],
                          "backbone": backbone or BACKBONES[net]})
        self.identity = make_identity("metric:lpips", version="0.1", net=net,
                                      range="[-1,1]", weights=self._weights_identity(), v=1)

    def _build(self) -> Any:
        try:
            import lpips
        except ImportError as exc:
            from jcsr_bench.kit.errors import PluginError

            raise PluginError(
                'the lpips metric needs the authors\' package: pip install "jcsr-bench[perceptual]"'
            ) from exc
        import torchvision

        with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained`
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(net=self.net, pretrained=False, pnet_rand=True, verbose=False)
        backbone = (torchvision.models.alexnet if self.net == "alex"
                    else torchvision.models.vgg16)(weights=None)
        backbone.load_state_dict(self._state("backbone"))
        for stage in model.net.children():  # slices hold torchvision's layers by index
            for index, layer in stage.named_children():
                layer.load_state_dict(backbone.features[int(index)].state_dict())
        head = self._state("head")
        expected = {k for k in model.state_dict() if k.startswith("lin") and k[3].isdigit()}
        if set(head) != expected:
            raise ValueError(f"LPIPS head file has keys {sorted(head)}, "
                             f"expected {sorted(expected)}")
        model.load_state_dict(head, strict=False)
        return model

    @staticmethod
    def _distance(net: Any, reference: Any, test: Any) -> Any:
        return net(reference, test, normalize=True)  # [0, 1] -> [-1, 1] inside


class DISTSNet:
    """Factory for the DISTS network (Ding et al. 2020): VGG16 with L2 pooling."""

    STAGES = ((0, 4), (5, 9), (10, 16), (17, 23), (24, 30))  # VGG16 feature indices
    CHANNELS = (3, 64, 128, 256, 512, 512)

    @classmethod
    def build(cls, vgg_state: dict[str, Any], head: dict[str, Any]) -> Any:
        import torch
        import torchvision
        from torch import nn

        class L2Pool(nn.Module):
            """Hanning-window L2 pooling, stride 2 (replaces VGG's max pooling)."""

            def __init__(self, channels: int) -> None:
                super().__init__()
                import numpy as np

                a = np.hanning(5)[1:-1]
                g = torch.tensor(a[:, None] * a[None, :], dtype=torch.float32)
                g = g / g.sum()
                self.register_buffer("filter", g[None, None].repeat(channels, 1, 1, 1))

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                out = nn.functional.conv2d(x ** 2, self.filter, stride=2, padding=1,
                                           groups=x.shape[1])
                return (out + 1e-12).sqrt()

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                vgg = torchvision.models.vgg16(weights=None)
                vgg.load_state_dict(vgg_state)
                features = vgg.features
                stages = []
                for i, (start, stop) in enumerate(cls.STAGES):
                    layers = [] if i == 0 else [L2Pool(cls.CHANNELS[i])]
                    layers += [features[j] for j in range(start, stop)]
                    stages.append(nn.Sequential(*layers))
                self.stages = nn.ModuleList(stages)
                self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
                self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
                if set(head) != {"alpha", "beta"}:
                    raise ValueError(f"DISTS weights have keys {sorted(head)}, "
                                     "expected alpha, beta")
                self.register_buffer("alpha", head["alpha"].float().reshape(1, -1, 1, 1))
                self.register_buffer("beta", head["beta"].float().reshape(1, -1, 1, 1))

            def features(self, x: torch.Tensor) -> list[torch.Tensor]:
                out = [x]
                h = (x - self.mean) / self.std
                for stage in self.stages:
                    h = stage(h)
                    out.append(h)
                return out

            def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                total = self.alpha.sum() + self.beta.sum()
                alpha = torch.split(self.alpha / total, cls.CHANNELS, dim=1)
                beta = torch.split(self.beta / total, cls.CHANNELS, dim=1)
                structure = texture = 0
                c1 = c2 = 1e-6
                for k, (fx, fy) in enumerate(zip(self.features(x), self.features(y))):
                    mx, my = fx.mean([2, 3], keepdim=True), fy.mean([2, 3], keepdim=True)
                    s1 = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
                    structure = structure + (alpha[k] * s1).sum(1, keepdim=True)
                    vx = ((fx - mx) ** 2).mean([2, 3], keepdim=True)
                    vy = ((fy - my) ** 2).mean([2, 3], keepdim=True)
                    cov = (fx * fy).mean([2, 3], keepdim=True) - mx * my
                    s2 = (2 * cov + c2) / (vx + vy + c2)
                    texture = texture + (beta[k] * s2).sum(1, keepdim=True)
                return 1 - (structure + texture).squeeze()

        return Net()


class DISTS(_Perceptual):
    """DISTS (Ding et al. 2020): structure + texture similarity of VGG16 features."""

    name = "dists"

    def __init__(self, weights: Any = None, backbone: Any = None) -> None:
        super().__init__({"head": weights or DISTS_HEAD, "backbone": backbone or BACKBONES["vgg"]})
        self.identity = make_identity("metric:dists", range="[0,1]",
                                      weights=self._weights_identity(), v=1)

    def _build(self) -> Any:
        return DISTSNet.build(self._state("backbone"), self._state("head"))

    @staticmethod
    def _distance(net: Any, reference: Any, test: Any) -> Any:
        return net(reference, test)
