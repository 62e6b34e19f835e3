"""Compare evaluations: one markdown table and a crash-rate-vs-speed plot.

    python scripts/compare.py eval/slower runs/try1/eval [--plot compare.png] [--labels slower,try1]

Each DIR must hold a metrics.json written by scripts/evaluate.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def label_for(directory: Path) -> str:
    """``runs/try1/eval`` -> ``try1``; ``eval/slower`` -> ``slower``."""
    return directory.parent.name if directory.name == "eval" else directory.name


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="evaluation dirs (with metrics.json)")
    parser.add_argument("--plot", type=Path, default=Path("compare.png"), help="output PNG")
    parser.add_argument("--labels", help="comma-separated labels, one per dir")
    args = parser.parse_args(argv)
    labels = args.labels.split(",") if args.labels else [label_for(d) for d in args.dirs]
    if len(labels) != len(args.dirs):
        print(f"error: --labels: {len(labels)} labels for {len(args.dirs)} dirs", file=sys.stderr)
        return 2
    evaluations = {}
    for label, directory in zip(labels, args.dirs, strict=True):
        path = directory / "metrics.json"
        if not path.is_file():
            print(f"error: {path}: not found (run scripts/evaluate.py first)", file=sys.stderr)
            return 2
        evaluations[label] = json.loads(path.read_text())

    from agents.plots import markdown_table, plot_crash_vs_speed

    print(markdown_table(evaluations))
    try:
        plot = plot_crash_vs_speed(evaluations, args.plot)
    except OSError as err:
        print(f"error: --plot: cannot write {args.plot} ({err.strerror or err})", file=sys.stderr)
        return 2
    print(f"\nplot: {plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
