"""Built-in super-resolution types. Registration imports nothing heavy."""

from jcsr_bench import hookimpl, lazy

INFERENCE = {"tile": int, "tile_overlap": int, "precision": str}


@hookimpl
def register_sr_models(register):
    register(
        "esrgan",
        lazy("jcsr_bench_plugins.sr.esrgan:ESRGAN"),
        description="RRDBNet (ESRGAN) x4; every published key scheme; adaptive per codec (B2)",
        params={"weights": (str, dict), "arch": dict, "adapt": dict, **INFERENCE},
    )
    register(
        "bicubic",
        lazy("jcsr_bench_plugins.sr.classic:BicubicSR"),
        description="Pillow bicubic upscaling",
        params={"scale": int},
    )
    register(
        "lanczos",
        lazy("jcsr_bench_plugins.sr.classic:LanczosSR"),
        description="Pillow Lanczos upscaling",
        params={"scale": int},
    )
    register(
        "none",
        lazy("jcsr_bench_plugins.sr.classic:NoSR"),
        description="no upscaling: codec-only evaluation at the codec's input resolution",
        params={},
    )
    register(
        "spandrel",
        lazy("jcsr_bench_plugins.sr.spandrel_sr:SpandrelSR"),
        description="any SR checkpoint spandrel recognises (Real-ESRGAN, SwinIR, HAT, ...)",
        params={"weights": (str, dict), **INFERENCE},
    )
