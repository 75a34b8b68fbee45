"""Built-in codec types. Registration imports nothing heavy (see ``jcsr_bench.plugin.lazy``)."""

from jcsr_bench import hookimpl, lazy

SOURCE = (str, dict)  # a weight source: a local path, or {url, sha256}


@hookimpl
def register_codecs(register):
    register(
        "compressai",
        lazy("jcsr_bench_plugins.codecs.compressai_codec:CompressAICodec"),
        description="CompressAI learned image codecs with real entropy-coded bitstreams",
        params={
            "arch": str,
            "metric": str,
            "qualities": list,
            "weights": (str, dict),
            "pretrained": bool,
        },
    )
    register(
        "pillow",
        lazy("jcsr_bench_plugins.codecs.pillow_codec:PillowCodec"),
        description="JPEG, WebP, AVIF and JPEG 2000 through Pillow (always offline)",
        params={"format": str, "qualities": list, "options": dict},
    )
