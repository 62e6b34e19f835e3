"""Atomic file writes: a crash or kill never leaves a half-written output.

Shared by every package; it lives in the lowest layer so that nothing imports upward.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temp file onto ``path``.

    :param path: final destination
    :param write: writes the complete file at the given temporary path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))


def write_json(path: str | Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_yaml(path: str | Path, data: Any) -> Path:
    return write_text(path, yaml.safe_dump(data, sort_keys=False))


def save_model(model: Any, path: str | Path) -> Path:
    """Save an SB3 model zip atomically (SB3 keeps a given non-empty suffix as is)."""
    return atomic_write(path, lambda p: model.save(str(p)))


def copy_file(source: str | Path, destination: str | Path) -> Path:
    """Copy a file atomically."""
    import shutil

    return atomic_write(destination, lambda p: shutil.copyfile(Path(source).expanduser(), p))
