"""Fit a learned shield to a trained run (written to RUN/shield.pt; evaluations then apply it).

    python scripts/fit_shield.py run=runs/try1 [shield=learned] [shield.steps=6000 shield.source=monitor]

The trained policy drives with the run's safety monitor; every state it reaches is labelled with the
meta-actions that would be unsafe there, and a head on the policy's frozen features learns them.
Training does the same at its end when the run's config has shield.steps > 0.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    from agents.schema import ConfigError
    from agents.shield_fit import fit_run_shield, load_shield_job

    try:
        run_dir, cfg = load_shield_job(CONFIG_DIR, argv)
        report = fit_run_shield(run_dir, cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"shield -> {run_dir / 'shield.pt'}")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
