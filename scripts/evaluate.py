"""Evaluate a trained agent or a baseline on held-out seeds; optionally record videos.

    python scripts/evaluate.py run=runs/try1 episodes=100 video=3
    python scripts/evaluate.py policy=slower episodes=100 out=eval/slower
    python scripts/evaluate.py run=runs/try1 env.vehicles_density=1.5 safety=off faults=dropout30
    python scripts/evaluate.py suite=emergency policy=faster safety=rss out=eval/suite_faster

Writes DIR/metrics.json, DIR/episodes.csv and DIR/videos/*.mp4, or with suite=emergency
DIR/scenarios.json and DIR/scenarios.csv (DIR = out, default <run>/eval or eval/<policy>).
The safety monitor is on by default (safety=rss_exact). Any config group or key can be overridden.
"""

from __future__ import annotations

import sys
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    from agents.config import load_eval_config
    from agents.eval_job import format_metrics, run_evaluation, run_suite_evaluation
    from agents.schema import ConfigError
    from agents.suite import format_rows

    try:
        cfg = load_eval_config(CONFIG_DIR, argv)
        if cfg.suite is not None:
            rows, out = run_suite_evaluation(cfg)
            print(f"{cfg.policy} on suite {cfg.suite}, monitor {'on' if cfg.safety.enabled else 'off'}  ->  {out}")
            print(format_rows(rows))
            return 0
        metrics, out = run_evaluation(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{cfg.policy} on {cfg.env.id}, monitor {'on' if cfg.safety.enabled else 'off'}  ->  {out}")
    print(format_metrics(metrics))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
