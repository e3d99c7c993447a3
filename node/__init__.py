"""lienthong: the node every state agency runs to exchange official documents (README.md)."""


def version() -> str:
    """The installed package's version ("unknown" when run from a tree that was not installed)."""
    from importlib.metadata import PackageNotFoundError, version as installed
    try:
        return installed("lienthong")
    except PackageNotFoundError:
        return "unknown"
