"""Measure what video recording adds to an evaluation episode's wall time, side by side in one process.

    python scripts/bench_video.py [run=runs/NAME | policy=idle] [episodes=5]

Each seed is played twice, without and with recording (rendering every simulation
frame, HUD, H.264 encoding), alternating to share machine noise.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def main(argv: list[str]) -> int:
    from agents.config import load_eval_config
    from agents.eval_job import make_policy
    from agents.evaluation import eval_seeds, run_episode
    from agents.schema import ConfigError
    from agents.video import VideoRecorder
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
    totals = {"plain": 0.0, "recorded": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in eval_seeds(cfg.episodes, cfg.seed):
            start = time.perf_counter()
            a = run_episode(plain, policy, seed)
            totals["plain"] += time.perf_counter() - start
            start = time.perf_counter()
            recorder = VideoRecorder(filmed, Path(tmp) / f"{seed}.mp4", describe=policy.describe)
            b = run_episode(filmed, policy, seed, on_step=recorder.on_step, on_reset=recorder.start)
            recorder.save()
            totals["recorded"] += time.perf_counter() - start
            assert a.steps == b.steps, "recording must not change the episode"
    overhead = totals["recorded"] / totals["plain"] - 1
    print(
        f"{cfg.policy}, {cfg.episodes} episodes: plain {totals['plain']:.2f} s, "
        f"recorded {totals['recorded']:.2f} s, overhead {overhead:+.1%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
