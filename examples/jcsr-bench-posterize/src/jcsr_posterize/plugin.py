"""Hook implementations: cheap, no torch import, no I/O (only names and factories)."""

from jcsr_bench import hookimpl, lazy


@hookimpl
def register_codecs(register):
    register(
        "posterize",
        lazy("jcsr_posterize.components:PosterizeCodec"),
        description="keep the top N bits of each channel, then zlib (quality = N)",
        params={"qualities": list, "level": int},
    )


@hookimpl
def register_sr_models(register):
    register(
        "nearest",
        lazy("jcsr_posterize.components:NearestSR"),
        description="nearest-neighbour upscaling",
        params={"scale": int},
    )
