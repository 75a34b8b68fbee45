import json

from jcsr_bench.kit.environment import fingerprint


def test_fingerprint_names_what_decides_bit_identity():
    import torch

    fp = fingerprint("cpu")
    assert json.loads(json.dumps(fp)) == fp  # plain JSON data
    assert fp["threads"] == torch.get_num_threads()
    assert fp["isa"] == torch.backends.cpu.get_cpu_capability()
    assert fp["cpu"] and fp["device"] == "cpu"
    for name in ("python", "torch", "compressai", "Pillow", "pytorch-msssim", "Pillow:jpg"):
        assert fp["versions"][name]
