"""Built-in dataset types. Registration imports nothing heavy."""

from jcsr_bench import hookimpl, lazy


@hookimpl
def register_datasets(register):
    register(
        "samples",
        lazy("jcsr_bench_plugins.datasets.sources:SamplesDataset"),
        description="real photographs shipped inside scikit-image (offline)",
        params={"names": list, "limit": int, "skip_bad": bool, "crop": int},
    )
    register(
        "folder",
        lazy("jcsr_bench_plugins.datasets.sources:FolderDataset"),
        description="every image under a directory (recursive, sorted)",
        params={"root": str, "glob": str, "recursive": bool, "skip_bad": bool,
                "limit": int},
    )
    register(
        "kodak",
        lazy("jcsr_bench_plugins.datasets.sources:KodakDataset"),
        description="the 24 Kodak images (local folder or verified download)",
        params={"root": str, "download": bool, "skip_bad": bool, "limit": int},
    )
    register(
        "div2k",
        lazy("jcsr_bench_plugins.datasets.sources:DIV2KDataset"),
        description="DIV2K train (0001-0800) / valid (0801-0900), official layout",
        params={"root": str, "split": str, "official_lr": bool, "download": bool,
                "skip_bad": bool, "limit": int},
    )
    register(
        "df2k",
        lazy("jcsr_bench_plugins.datasets.sources:DF2KDataset"),
        description="DIV2K train + Flickr2K (3,450 images), for training",
        params={"root": str, "div2k_root": str, "flickr2k_root": str, "skip_bad": bool,
                "limit": int},
    )
    register(
        "jpegai",
        lazy("jcsr_bench_plugins.datasets.sources:JPEGAIDataset"),
        description="the JPEG AI test set from a local folder",
        params={"root": str, "glob": str, "recursive": bool, "skip_bad": bool,
                "limit": int},
    )
