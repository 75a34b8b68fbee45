"""LPIPS and DISTS: equal to the authors' packages on the same weight files, the known
properties of a distance, and offline behaviour (skipped by default, refused by name).

The published weights cannot be downloaded here, so randomly initialised backbones and
heads are saved in the published formats: under the published file names for the
reference packages (which look them up in torch hub's folder without a hash check) and
under the same naming scheme with their own hash prefix for jcsr-bench (which verifies).
"""

import hashlib
import io
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from jcsr_bench.cli.main import main
from jcsr_bench.kit.errors import WeightsError
from jcsr_bench.plugin.registry import load_registry
from jcsr_bench.run.engine import run
from jcsr_bench_plugins.metrics.perceptual import BACKBONES, DISTS, LPIPS

lpips = pytest.importorskip("lpips")
DISTS_pt = pytest.importorskip("DISTS_pytorch.DISTS_pt")

LPIPS_CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    """Random weights in the published formats: {role: (bytes, published file name)}."""
    import torchvision

    gen = torch.Generator().manual_seed(0)

    def blob(state):
        buf = io.BytesIO()
        torch.save(state, buf)
        return buf.getvalue()

    def backbone(model):
        state = model(weights=None).state_dict()  # torchvision's own (random) init
        return {k: (v if k.startswith("features") else torch.zeros_like(v))
                for k, v in state.items()}  # the classifier is unused: zeros save time

    torch.manual_seed(0)
    files = {
        "alexnet": (blob(backbone(torchvision.models.alexnet)), "alexnet-owt-7be5be79.pth"),
        "vgg16": (blob(backbone(torchvision.models.vgg16)), "vgg16-397923af.pth"),
        "dists": (blob({"alpha": torch.rand(1, 1475, 1, 1, generator=gen),
                        "beta": torch.rand(1, 1475, 1, 1, generator=gen)}), "weights.pt"),
    }
    for net, channels in LPIPS_CHANNELS.items():
        head = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen)
                for i, c in enumerate(channels)}
        files[f"lpips-{net}"] = (blob(head), f"{net}.pth")
    return files


@pytest.fixture(scope="module")
def hub_home(tmp_path_factory, weight_files):
    """A torch home whose hub folder holds every file under its published name and under
    an own hash prefix; returns (home, {role: source for jcsr-bench}, {role: published})."""
    home = tmp_path_factory.mktemp("torch-home")
    folder = home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    sources, published = {}, {}
    for role, (data, name) in weight_files.items():
        (folder / name).write_bytes(data)
        published[role] = folder / name
        digest = hashlib.sha256(data).hexdigest()
        stem, ext = name.split(".", 1)
        own = folder / f"{stem}-{digest[:8]}.{ext}"
        shutil.copyfile(folder / name, own)
        sources[role] = {"url": f"https://example.invalid/{own.name}", "sha256": digest[:8]}
    return home, sources, published


@pytest.fixture
def hub(hub_home, monkeypatch):
    home, sources, published = hub_home
    monkeypatch.setenv("TORCH_HOME", str(home))
    return sources, published


def photo(name="astronaut", size=(232, 200)):
    from skimage import data

    array = getattr(data, name)()[: size[1], : size[0], :3]
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()


def jpeg(image, quality):
    buf = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(buf, "JPEG", quality=quality)
    return torch.from_numpy(np.array(Image.open(buf))).permute(2, 0, 1).contiguous()


def ours(hub_sources, kind, net="alex"):
    if kind == "dists":
        return DISTS(weights=hub_sources["dists"], backbone=hub_sources["vgg16"])
    backbone = hub_sources["alexnet" if net == "alex" else "vgg16"]
    return LPIPS(net=net, weights=hub_sources[f"lpips-{net}"], backbone=backbone)


def as_float(image):
    return image.unsqueeze(0).float() / 255


@pytest.mark.slow
@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_equals_the_authors_package_on_the_same_files(hub, net):
    sources, published = hub
    with pytest.warns(UserWarning):  # lpips passes torchvision's deprecated `pretrained`
        reference = lpips.LPIPS(net=net, model_path=str(published[f"lpips-{net}"]),
                                verbose=False)
    metric = ours(sources, "lpips", net)
    for name in ("astronaut", "chelsea"):
        hr = photo(name)
        for test in (jpeg(hr, 10), jpeg(hr, 60)):
            with torch.no_grad():
                expected = reference(as_float(hr), as_float(test), normalize=True).item()
            assert metric.compute(hr, test) == pytest.approx(expected, abs=1e-6)
            assert expected > 0


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # the package's torchvision `pretrained`
def test_dists_equals_the_authors_package_on_the_same_files(hub, weight_files):
    sources, _ = hub
    reference = DISTS_pt.DISTS(load_weights=False)  # its VGG16 comes from the hub folder
    head = torch.load(io.BytesIO(weight_files["dists"][0]), weights_only=True)
    reference.alpha.data, reference.beta.data = head["alpha"], head["beta"]
    metric = ours(sources, "dists")
    for name in ("astronaut", "coffee"):
        hr = photo(name, (201, 177))  # odd sizes
        test = jpeg(hr, 15)
        expected = reference(as_float(hr), as_float(test)).item()
        assert metric.compute(hr, test) == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["lpips", "dists"])
def test_identical_is_zero_and_stronger_jpeg_is_farther(hub, kind):
    metric = ours(hub[0], kind)
    hr = photo("chelsea")
    assert metric.compute(hr, hr) == pytest.approx(0.0, abs=1e-6)
    distances = [metric.compute(hr, jpeg(hr, q)) for q in (90, 40, 5)]
    assert distances[0] < distances[1] < distances[2]
    assert metric.higher_is_better is False


def test_published_name_with_other_content_is_refused(tmp_path, monkeypatch):
    from jcsr_bench.artifacts import weights
    from jcsr_bench_plugins.metrics.perceptual import DISTS_HEAD

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    folder = tmp_path / "th" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / DISTS_HEAD["filename"]).write_bytes(b"not the authors' file")
    assert DISTS().missing_weights() == [weights.missing_remedy(BACKBONES["vgg"])]
    with pytest.raises(WeightsError, match="hash mismatch.*f5e65c96"):
        weights.resolve(DISTS_HEAD)


def test_identity_follows_the_weights(hub):
    sources, _ = hub
    assert ours(sources, "lpips").identity != LPIPS().identity
    assert LPIPS(net="vgg").identity != LPIPS().identity
    assert ours(sources, "dists").identity == ours(sources, "dists").identity


def test_missing_weights_offline_skip_by_default_and_fail_by_name(tmp_path, capsys):
    common = ["--offline", "--codec", "jpeg", "--sr", "bicubic", "--qualities", "20,60",
              "--limit", "1", "--output", str(tmp_path / "out")]
    assert main(["run", *common]) == 0
    out = capsys.readouterr().out  # one short line a run; the dry run has the files
    assert "not evaluated: lpips, dists, lpips-vgg -- `jcsr-bench run --dry-run`" in out
    assert main(["run", *common, "--dry-run"]) == 0
    out = capsys.readouterr().out
    for name in ("lpips", "dists", "lpips-vgg"):
        assert f"metric {name}:" in out
    for file in ("alexnet-owt-7be5be79.pth", "lpips-v0.1-alex-df73285e.pth",
                 "vgg16-397923af.pth", "dists-f5e65c96.pt"):
        assert file in out
    assert main(["run", *common, "--metrics", "psnr-rgb,lpips,dists"]) == 2
    err = capsys.readouterr().err
    assert "nothing was computed" in err
    for file in ("alexnet-owt-7be5be79.pth", "lpips-v0.1-alex-df73285e.pth",
                 "vgg16-397923af.pth", "dists-f5e65c96.pt"):
        assert file in err


@pytest.mark.slow
def test_run_stores_perceptual_values(hub, tmp_path):
    import yaml

    sources, _ = hub
    user = tmp_path / "user.yaml"
    user.write_text(yaml.safe_dump({"metrics": {
        "lpips-test": {"type": "lpips", "weights": sources["lpips-alex"],
                       "backbone": sources["alexnet"]},
    }}))
    registry = load_registry([user])
    summary = run(registry=registry, datasets=["samples"], codecs=["jpeg"], srs=["bicubic"],
                  qualities=[10, 80], limit=1, metrics=["psnr-rgb", "lpips-test"],
                  output=tmp_path / "out", progress=False, stream=io.StringIO())
    assert summary.exit_code == 0, summary.failed
    from jcsr_bench.results.store import Store

    with Store(tmp_path / "out" / "results.sqlite") as store:
        rows = store.rows()
    values = {row["quality"]: row["values"]["lpips-test"] for row in rows}
    assert set(values) == {10, 80} and values[10] > values[80] > 0
    assert all("ms-ssim-rgb" not in row["values"] for row in rows)  # --metrics chose


# -- reports --------------------------------------------------------------------------


def perceptual_curve(codec, sr, rates, psnr, lpips_values):
    from jcsr_bench.results.curves import Curve, Point

    points = [Point(i + 1, {"bpp": r, "psnr-rgb": q, "ms-ssim-rgb": 0.9 + 0.01 * i,
                            "lpips": d}, {}, 3)
              for i, (r, q, d) in enumerate(zip(rates, psnr, lpips_values))]
    return Curve("photos", codec, sr, points)


RATES = [0.1, 0.2, 0.4, 0.8]
PSNR = [28.0, 30.0, 32.0, 34.0]
DIST = [0.40, 0.30, 0.22, 0.15]


def test_leaderboard_reports_bd_on_minus_distance():
    from jcsr_bench.report.leaderboard import render_leaderboard
    from jcsr_bench.results.bd import bd_quality, bd_rate

    anchor = perceptual_curve("jpeg", "bicubic", RATES, PSNR, DIST)
    better = perceptual_curve("jpeg", "esrgan", RATES, PSNR, [d - 0.02 for d in DIST])
    text = render_leaderboard([anchor, better], {"datasets": {}}, anchor=("jpeg", "bicubic"))
    assert "BD-Rate LPIPS (%)" in text and "BD-LPIPS" in text
    assert "Perceptual metrics: LPIPS v0.1 and DISTS" in text and "−distance" in text
    row = next(line for line in text.splitlines() if "jpeg+esrgan" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    negated = [-d for d in DIST], [-(d - 0.02) for d in DIST]
    expected_rate = bd_rate(RATES, negated[0], RATES, negated[1])
    assert expected_rate < 0  # lower LPIPS at equal rate = bit savings
    assert f"{expected_rate:+.2f}" in cells
    assert f"{bd_quality(RATES, negated[0], RATES, negated[1]):+.3f}" == "+0.020"
    assert "+0.020" in cells
    plain = render_leaderboard([perceptual_curve("a", "b", RATES, PSNR, [None] * 4)],
                               {"datasets": {}}, anchor=None)
    assert "LPIPS" not in plain  # no column without values


@pytest.mark.slow
def test_perception_distortion_plot(tmp_path):
    from jcsr_bench.report.plots import plot_reports

    curves = [perceptual_curve("jpeg", "bicubic", RATES, PSNR, DIST),
              perceptual_curve("jpeg", "esrgan", RATES, [p - 1 for p in PSNR],
                               [d - 0.05 for d in DIST])]
    files = {p.name for p in plot_reports(curves, tmp_path, anchor=("jpeg", "bicubic"))}
    assert {"pd-photos-lpips.png", "pd-photos-lpips.svg", "rd-photos-lpips.png",
            "rd-photos-psnr-rgb.png", "rd-photos-ms-ssim-rgb.png"} <= files
    svg = (tmp_path / "pd-photos-lpips.svg").read_text()
    assert "perception–distortion" in svg and "LPIPS (lower is better)" in svg


@pytest.mark.slow
def test_online_run_downloads_and_verifies_the_weights_first(hub_home, tmp_path, monkeypatch):
    """Online, a metric's missing files are fetched (file:// URLs here) and verified
    before the run, like codec and SR weights; a dry run only lists them."""
    import yaml

    _, sources, _ = hub_home
    folder = hub_home[0] / "hub" / "checkpoints"

    def remote(role):
        name = sources[role]["url"].rsplit("/", 1)[1]
        return {"url": f"file://{folder / name}", "sha256": sources[role]["sha256"],
                "filename": f"fetched-{name}"}

    monkeypatch.delenv("JCSR_BENCH_OFFLINE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-home"))
    user = tmp_path / "user.yaml"
    user.write_text(yaml.safe_dump({"metrics": {"lpips-remote": {
        "type": "lpips", "weights": remote("lpips-alex"), "backbone": remote("alexnet")}}}))
    registry = load_registry([user])
    common = dict(registry=registry, datasets=["samples"], codecs=["jpeg"], srs=["bicubic"],
                  qualities=[30], limit=1, metrics=["lpips-remote"], progress=False,
                  output=tmp_path / "out")
    dry = io.StringIO()
    assert run(**common, dry_run=True, stream=dry).exit_code == 0
    assert "to download when the run (or its training) starts" in dry.getvalue()
    hub = tmp_path / "empty-home" / "hub" / "checkpoints"
    assert not hub.exists() or not any(hub.iterdir())
    assert run(**common, stream=io.StringIO()).exit_code == 0
    assert sorted(p.name for p in hub.iterdir()) == sorted(
        remote(role)["filename"] for role in ("lpips-alex", "alexnet"))


@pytest.mark.slow
def test_run_with_the_perceptual_preset_gives_a_bd_rate_for_each_metric(hub, tmp_path):
    """Acceptance: ``run --metrics perceptual`` on samples with JPEG and WebP writes a
    BD-Rate for LPIPS, DISTS, SSIMULACRA 2 and CVVDP. Offline the published LPIPS/DISTS
    files cannot be had, so a user registry points ``lpips`` and ``dists`` at local files
    (random weights in the published formats: the values measure nothing, the path is
    the real one)."""
    import yaml

    sources, _ = hub
    user = tmp_path / "user.yaml"
    user.write_text(yaml.safe_dump({"metrics": {
        "lpips": {"type": "lpips", "weights": sources["lpips-alex"],
                  "backbone": sources["alexnet"]},
        "dists": {"type": "dists", "weights": sources["dists"], "backbone": sources["vgg16"]},
    }}))
    summary = run(registry=load_registry([user]), datasets=["samples"],
                  codecs=["jpeg", "webp"], srs=["bicubic"], qualities=[10, 30, 50, 75],
                  limit=1, metrics=["perceptual"], output=tmp_path / "out", progress=False,
                  stream=io.StringIO())
    assert summary.exit_code == 0, summary.failed
    from helpers import table_row

    cells = table_row((tmp_path / "out" / "leaderboard.md").read_text(), "webp+bicubic")
    for short in ("LPIPS", "DISTS", "SSIMULACRA2", "CVVDP"):
        assert float(cells[f"BD-Rate {short} (%)"].split()[0]) < 0, (short, cells)
