"""lienthong: the node every state agency runs to exchange official documents (README.md)."""
import functools


@functools.cache
def version() -> str:
    """The installed package's version ("unknown" when run from a tree that was not installed). Read once per
    process: importlib.metadata parses the package's METADATA on every call (~5 ms, once per agency started
    on a host, and on every metrics scrape), and what is installed does not change under a running process."""
    from importlib.metadata import PackageNotFoundError, version as installed
    try:
        return installed("lienthong")
    except PackageNotFoundError:
        return "unknown"
