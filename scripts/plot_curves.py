"""Plot learning curves (return, crash rate, speed vs env steps) of one or more runs.

python scripts/plot_curves.py runs/try1 [runs/try2 ...] [--out curves.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run dirs (with tb/)")
    parser.add_argument("--out", type=Path, default=Path("learning_curves.png"), help="output PNG")
    args = parser.parse_args(argv)
    for run in args.runs:
        if not (run / "tb").is_dir():
            print(f"error: {run / 'tb'}: no TensorBoard logs", file=sys.stderr)
            return 2
    from agents.plots import plot_learning_curves

    print(plot_learning_curves({run.name: run for run in args.runs}, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
