"""Writing a file so that a reader (or a crash) sees the old content or the new, never a part."""
from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """`data` to a temporary file beside `path` (created with `mode`, whatever the umask allows, then set
    to it exactly), renamed over `path`."""
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
