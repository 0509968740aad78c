"""Files a run writes whole or not at all (a reader sees the old file or the new one, never half of it), and
the one-line error of a write that fails."""

import contextlib
import errno
import json
import os
from pathlib import Path

from zoo.errors import ZooError


def writing_error(path, err):
    """The one-line ZooError of an OSError while writing `path` (a full disk, a read-only folder)."""
    fix = {errno.ENOSPC: "free space there", errno.EDQUOT: "free space there (disk quota exceeded)",
           errno.EFBIG: "free space there or raise the file-size limit (ulimit -f)"}.get(
        err.errno, "make it writable")
    return ZooError(f"cannot write {path}: {err.strerror or err}: {fix}, or pass another run_dir=...")


def atomic_write_bytes(path, data):
    """Write `data` next to `path`, fsync, then rename over it: readers see the old or the new file, never half.
    A write that fails (a full disk, a read-only folder) removes its temporary file and raises one ZooError line."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise writing_error(path, err) from None


def write_json(path, data):
    """`data` as indented JSON, written atomically (folders created)."""
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())
