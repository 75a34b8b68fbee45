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

    # The JPEG AI CTC set (jcsr_bench_plugins.metrics.jpeg_ai): opt-in, computed when
    # named (`--metrics jpeg-ai`, the registry's preset); `pip install "jcsr-bench[jpeg-ai]"`.
    jpeg_ai = "jcsr_bench_plugins.metrics.jpeg_ai"
    for channel in "yuv":
        register(
            f"psnr-{channel}709",
            lazy(f"{jpeg_ai}:PSNR{channel.upper()}709"),
            description=f"PSNR on BT.709 full-range 10-bit {channel.upper()} (JPEG AI), peak 1023",
            params={},
            opt_in=True,
        )
    jpeg_ai_metrics = {
        "ms-ssim-y": ("MSSSIMY", "MS-SSIM (pytorch-msssim) on BT.709 10-bit Y (JPEG AI)"),
        "vif": ("VIF", "VIFp (piq) on BT.709 10-bit Y (JPEG AI)"),
        "fsim": ("FSIM", "FSIMc (piq, chromatic) on 10-bit RGB (JPEG AI)"),
        "iw-ssim": ("IWSSIM", "IW-SSIM (piq) on BT.709 10-bit Y (JPEG AI)"),
        "nlpd": ("NLPD", "NLPD (JPEG AI's formula) on BT.709 10-bit Y, lower is better"),
        "psnr-hvs": ("PSNRHVS", "PSNR-HVS (psnr-hvsm) on BT.709 10-bit Y (JPEG AI)"),
        "vmaf": ("VMAF", "VMAF v0.6.1 (vmaf-torch) on BT.709 10-bit Y (JPEG AI)"),
    }
    for name, (cls, description) in jpeg_ai_metrics.items():
        register(name, lazy(f"{jpeg_ai}:{cls}"), description=description, params={},
                 opt_in=True)
    register(
        "psnr-hvs-m",
        lazy(f"{jpeg_ai}:PSNRHVSM"),
        description="PSNR-HVS-M (psnr-hvsm, contrast masking) on BT.709 10-bit Y",
        params={},
        opt_in=True,
    )
    # The newest perceptual metrics (jcsr_bench_plugins.metrics.ssimulacra_cvvdp), opt-in.
    newer = "jcsr_bench_plugins.metrics.ssimulacra_cvvdp"
    register(
        "ssimulacra2",
        lazy(f"{newer}:SSIMULACRA2"),
        description="SSIMULACRA 2 (ssimulacra2 package, a port; not libjxl's tool) on sRGB",
        params={},
        opt_in=True,
    )
    register(
        "cvvdp",
        lazy(f"{newer}:CVVDP"),
        description="ColorVideoVDP (cvvdp), standard_4k display model, JOD, higher is better",
        params={},
        opt_in=True,
    )
