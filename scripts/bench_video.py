"""Measure what video recording adds to an evaluation's wall time, side by side in one process.

    python scripts/bench_video.py [run=runs/NAME | policy=idle] [episodes=5]

The same seeds are played in blocks by the evaluation's own ``play``: once without
recording and once recording every episode (every simulation frame, HUD, H.264),
timed until the last MP4 is complete. Two rounds, the order swapped in the second,
share the machine's noise.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def main(argv: list[str]) -> int:
    from agents.config import load_eval_config
    from agents.eval_job import make_policy, play
    from agents.evaluation import eval_seeds
    from agents.schema import ConfigError
    from envs import make_env

    try:
        cfg = load_eval_config(
            CONFIG_DIR, [*argv, "episodes=5"] if not any(a.startswith("episodes=") for a in argv) else argv
        )
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    plain = make_env(cfg.env, cfg.reward, safety=cfg.safety)
    filmed = make_env(cfg.env, cfg.reward, render_mode="rgb_array", safety=cfg.safety)
    policy = make_policy(cfg, plain)
    seeds = eval_seeds(cfg.episodes, cfg.seed)
    totals = {"plain": 0.0, "recorded": 0.0}
    steps = {}
    with tempfile.TemporaryDirectory() as tmp:
        for order in (("plain", "recorded"), ("recorded", "plain")):
            for kind in order:
                env, video = (plain, 0) if kind == "plain" else (filmed, len(seeds))
                start = time.perf_counter()
                results = play(env, policy, seeds, video, Path(tmp) / kind)
                totals[kind] += time.perf_counter() - start
                steps.setdefault(kind, [r.steps for r in results])
        assert steps["plain"] == steps["recorded"], "recording must not change the episodes"
        assert len(list((Path(tmp) / "recorded").glob("*.mp4"))) == len(seeds)
    overhead = totals["recorded"] / totals["plain"] - 1
    print(
        f"{cfg.policy}, {cfg.episodes} episodes x 2 rounds: plain {totals['plain']:.2f} s, "
        f"recorded {totals['recorded']:.2f} s, overhead {overhead:+.1%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
