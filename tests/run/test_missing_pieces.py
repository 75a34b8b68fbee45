"""Every missing piece at once, each with one deduplicated remedy (issue 15.2).

The headline command ``run --codec bmshj --sr esrgan-b2`` on a machine with nothing
downloaded: the codec's eight weight files, B1's weights (esrgan-b2 starts from them),
VGG19 (its perceptual loss), its training dataset and the training itself.
"""

from __future__ import annotations

import io
import urllib.error
import urllib.request

import pytest
from fakes import ENCODES, go, make_registry

from jcsr_bench.kit.errors import DataError, WeightsError
from jcsr_bench.plugin.manager import PluginManager
from jcsr_bench.plugin.registry import load_registry
from jcsr_bench.run.engine import run

BMSHJ_FILES = ["bmshj2018-hyperprior-1-7eb97409.pth.tar", "bmshj2018-hyperprior-2-93677231.pth.tar",
               "bmshj2018-hyperprior-3-6d87be32.pth.tar", "bmshj2018-hyperprior-4-de1b779c.pth.tar",
               "bmshj2018-hyperprior-5-f8b614e1.pth.tar", "bmshj2018-hyperprior-6-1ab9c41e.pth.tar",
               "bmshj2018-hyperprior-7-3804dcbd.pth.tar", "bmshj2018-hyperprior-8-a583f0cf.pth.tar"]
B1_FILE = "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth"
VGG_FILE = "vgg19-dcbb9e9d.pth"
TRAIN = "`jcsr-bench train-sr --sr esrgan-b2 --codec bmshj --qualities 1,2,3,4,5,6,7,8`"


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """The shipped registry with no data and an empty torch hub folder."""
    monkeypatch.setenv("JCSR_BENCH_DATA_ROOT", str(tmp_path / "no-data"))
    return load_registry([], manager=PluginManager(entry_points=False))


def _headline(registry, tmp_path, **kwargs):
    out = io.StringIO()
    summary = run(registry=registry, codecs=["bmshj"], srs=["esrgan-b2"], device="cpu",
                  output=tmp_path / "out", progress=False, stream=out, **kwargs)
    return summary, out.getvalue()


def _lines(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_dry_run_offline_lists_every_missing_piece_once(shipped, tmp_path):
    summary, text = _headline(shipped, tmp_path, dry_run=True)
    assert summary.exit_code == 2  # the real run would stop
    assert "missing (12; the run stops until each is done)" in text
    for name in [*BMSHJ_FILES, B1_FILE, VGG_FILE]:
        assert len(_lines(text, name)) == 1, name
    assert _lines(text, B1_FILE)[0].lstrip().startswith(
        "sr esrgan-b2 (training: starting weights esrgan-b1):")
    assert _lines(text, VGG_FILE)[0].lstrip().startswith(
        "sr esrgan-b2 (training: VGG19 for the perceptual loss):")
    dataset = _lines(text, "training dataset df2k")
    assert len(dataset) == 1 and "DIV2K_train_HR" in dataset[0] and "--data-root" in dataset[0]
    assert len(_lines(text, TRAIN)) == 1
    assert not (tmp_path / "out").exists()


def test_real_run_offline_stops_with_all_pieces_at_once(shipped, tmp_path):
    with pytest.raises(WeightsError) as info:
        _headline(shipped, tmp_path)
    message = str(info.value)
    assert message.startswith("12 missing piece(s), nothing was computed:")
    for name in [*BMSHJ_FILES, B1_FILE, VGG_FILE, "training dataset df2k", TRAIN]:
        assert len(_lines(message, name)) == 1, name
    assert isinstance(info.value, DataError)  # a dataset is among them
    assert not (tmp_path / "out").exists()


def test_online_without_network_never_advises_dropping_offline(shipped, tmp_path,
                                                               monkeypatch):
    monkeypatch.delenv("JCSR_BENCH_OFFLINE")

    def unreachable(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    # the dry run downloads nothing and says what the run will download
    summary, text = _headline(shipped, tmp_path, dry_run=True)
    # bmshj's 8 files, B1's and VGG19 (training), and the perceptual metrics' 5 (vgg16
    # shared by dists and lpips-vgg): complete whatever the network state (issue 25.5)
    assert "to download when the run (or its training) starts (15):" in text
    for name in [B1_FILE, VGG_FILE]:
        assert len(_lines(text, name)) == 1, name
    assert "offline" not in text
    assert len(_lines(text, TRAIN)) == 1 and len(_lines(text, "training dataset df2k")) == 1
    # the real run tries, and lists each failed download once with the rest
    with pytest.raises(WeightsError) as info:
        _headline(shipped, tmp_path)
    message = str(info.value)
    assert "offline" not in message
    # bmshj's 8 failed downloads share one line naming each file once (issue 25.6)
    assert ("8 weight files could not be downloaded (<urlopen error network is unreachable>): "
            "download each from https://compressai.s3.amazonaws.com/models/v1/<name>") in message
    for name in BMSHJ_FILES:
        assert message.count(name) == 1, name
    assert message.count(TRAIN) == 1


def test_a_piece_needed_twice_is_listed_once_naming_both(tmp_path):
    ENCODES.clear()
    registry = make_registry(tmp_path / "reg")
    extra = tmp_path / "twin.yaml"
    extra.write_text("codecs:\n  gone-too: {type: fake-codec, step: 7, qualities: [1], "
                     "missing: true}\n")
    registry.add_file(extra)
    with pytest.raises(WeightsError) as info:
        go(registry, tmp_path, codecs=["fa", "gone", "gone-too"])
    message = str(info.value)
    assert message.count("fake weights for 1: put them in /nowhere") == 1
    assert "codec gone; codec gone-too: fake weights for 1" in message
    assert not ENCODES


@pytest.mark.slow
def test_cli_headline_dry_run_exits_2_without_traceback(tmp_path):
    from helpers import run_cli

    result = run_cli("run", "--codec", "bmshj", "--sr", "esrgan-b2", "--dry-run", "--output",
                     str(tmp_path / "out"), env={
                         "JCSR_BENCH_LOAD_PLUGINS": "", "JCSR_BENCH_OFFLINE": "1",
                         "JCSR_BENCH_DATA_ROOT": str(tmp_path / "no-data")}, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "missing (12;" in result.stdout and TRAIN in result.stdout


def test_the_plan_shows_the_blocked_cells_and_groups_a_codecs_files(shipped, tmp_path,
                                                                    monkeypatch):
    monkeypatch.delenv("JCSR_BENCH_OFFLINE")

    def unreachable(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    summary, text = _headline(shipped, tmp_path, dry_run=True)
    assert ("blocked (56 cells, until the missing pieces below are done):\n"
            "  samples: bmshj+esrgan-b2: 56 cells (7 images x 8 qualities), by codec "
            "bmshj's weights, sr esrgan-b2 untrained for codec bmshj\n") in text
    (line,) = _lines(text, "bmshj2018-hyperprior-")  # 8 files, one line
    assert line.startswith("  codec bmshj: 8 weight files are not in ")
    assert "download each from https://compressai.s3.amazonaws.com/models/v1/<name> " in line
    assert line.endswith(", ".join(BMSHJ_FILES))
    # the real run online says what training will download, as the dry run does
    with pytest.raises(WeightsError) as info:
        _headline(shipped, tmp_path)
    message = str(info.value)
    assert "and to download when training starts (2):" in message
    assert B1_FILE in message and VGG_FILE in message


def test_a_run_says_in_one_line_which_optional_metrics_it_left_out(shipped, tmp_path):
    out = io.StringIO()
    summary = run(registry=shipped, codecs=["jpeg"], srs=["bicubic"], qualities=[50],
                  limit=1, device="cpu", output=tmp_path / "out", progress=False, stream=out)
    assert summary.exit_code == 0
    text = out.getvalue()
    assert ("\nnot evaluated: lpips, dists, lpips-vgg -- `jcsr-bench run --dry-run` says what "
            "to fetch\n") in text
    assert "alexnet-owt-7be5be79.pth" not in text and "skipped (not evaluated)" not in text
    _, dry = _headline(shipped, tmp_path, dry_run=True)
    assert "  metric lpips: missing weights: weight file alexnet-owt-7be5be79.pth" in dry
