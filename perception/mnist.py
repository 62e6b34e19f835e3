"""MNIST-format datasets: the four standard IDX files, optionally gzipped. Nothing downloads."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
CLASS_NAMES = [str(d) for d in range(10)]


class IDXError(ValueError):
    """A missing or malformed IDX file; the message names the file."""


def find_file(directory: Path, stem: str) -> Path:
    """``stem`` or ``stem.gz`` in ``directory`` (MNIST mirrors also use ``.`` for ``-``)."""
    for name in (stem, f"{stem}.gz", stem.replace("-idx", ".idx"), f"{stem.replace('-idx', '.idx')}.gz"):
        if (directory / name).is_file():
            return directory / name
    raise IDXError(f"{directory / stem}: file not found (also looked for .gz)")


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Parse one IDX file of unsigned bytes; checks the magic number and the size."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise IDXError(f"{path}: cannot read ({err})") from None
    if len(data) < 4:
        raise IDXError(f"{path}: too short to be an IDX file")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise IDXError(f"{path}: wrong magic number 0x{found:08x} (expected 0x{magic:08x})")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{path}: truncated header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise IDXError(f"{path}: {len(data) - header} data bytes, header says {expected} for shape {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_pair(directory: Path, images: str, labels: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, 28, 28) uint8 and labels (N,) int64, with matching counts."""
    image_path, label_path = find_file(directory, FILES[images]), find_file(directory, FILES[labels])
    x = read_idx(image_path, IMAGES_MAGIC)
    y = read_idx(label_path, LABELS_MAGIC)
    if len(x) != len(y):
        raise IDXError(f"{image_path}: {len(x)} images but {label_path.name} has {len(y)} labels")
    if y.size and y.max() > 9:
        raise IDXError(f"{label_path}: label {int(y.max())} outside 0..9")
    return x[:, None, :, :].copy(), y.astype(np.int64)


def load_mnist(directory: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train": (x, y), "test": (x, y)}`` from an MNIST-format directory."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise IDXError(f"{directory}: directory not found")
    return {
        "train": load_pair(directory, "train_images", "train_labels"),
        "test": load_pair(directory, "test_images", "test_labels"),
    }


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write unsigned bytes as IDX (gzipped if the name ends in .gz); used by tests and converters."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())
    return path
