"""Built-in image-quality metrics (docs/metrics.md, conventions)."""

from jcsr_bench import hookimpl, lazy


@hookimpl
def register_metrics(register):
    register(
        "psnr-rgb",
        lazy("jcsr_bench_plugins.metrics.distortion:PSNRRGB"),
        description="PSNR over all RGB channels, 8-bit, data range 255, per image",
        params={},
    )
    register(
        "psnr-y",
        lazy("jcsr_bench_plugins.metrics.distortion:PSNRY"),
        description="PSNR on BT.601 luma (16-235), border of `scale` pixels cropped",
        params={"border": int},
    )
    register(
        "ms-ssim-rgb",
        lazy("jcsr_bench_plugins.metrics.distortion:MSSSIMRGB"),
        description="MS-SSIM (pytorch-msssim) on 8-bit RGB, data range 255, linear",
        params={},
    )
    register(
        "lpips",
        lazy("jcsr_bench_plugins.metrics.perceptual:LPIPS"),
        description="LPIPS v0.1 (AlexNet default; net: vgg), inputs in [-1, 1], lower is better",
        params={"net": str, "weights": (str, dict), "backbone": (str, dict)},
    )
    register(
        "dists",
        lazy("jcsr_bench_plugins.metrics.perceptual:DISTS"),
        description="DISTS (VGG16, L2 pooling), inputs in [0, 1], lower is better",
        params={"weights": (str, dict), "backbone": (str, dict)},
    )
