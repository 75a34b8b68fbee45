"""User-facing errors: the CLI prints their message (no traceback) and exits 2."""


class JcsrError(Exception):
    """An error the user can fix; the message says what and how."""


class PluginError(JcsrError):
    """A plugin failed to load or registered something invalid."""


class RegistryError(JcsrError):
    """registry.yaml (or a user registry) is invalid, or names something unknown."""


class WeightsError(JcsrError):
    """A weight file is missing, unverifiable, or unsafe to load."""


class DataError(JcsrError):
    """An image or dataset cannot be read."""


class StorageError(JcsrError):
    """A file or folder a command writes to is unusable: a full disk, a read-only folder,
    a file in the way, a damaged results store. Nothing already stored is touched."""


class CacheWarning(UserWarning):
    """A cache entry did not match its stored digest (changed on disk); it is recomputed."""


def one_line(exc: BaseException) -> str:
    """An exception as one line (the class name too unless it is one of ours)."""
    text = " ".join(str(exc).split())
    return text if isinstance(exc, JcsrError) else f"{type(exc).__name__}: {text}"
