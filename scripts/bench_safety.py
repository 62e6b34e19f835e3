"""Safety monitor benchmarks: a random driver with and without the monitor, and the monitor's overhead.

    python scripts/bench_safety.py [--episodes 200] [--density 1.5] [--overhead-steps 300] [--out FILE.json]

Both runs use the same seeds and the same random actions, in one process. The
overhead compares the env step time with and without the monitor side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def random_driving(episodes: int, density: float, monitored: bool) -> dict:
    from agents.evaluation import eval_seeds, run_episode, summarize
    from agents.policies import RandomPolicy
    from envs import EnvConfig, RewardConfig, make_env
    from envs.config import SafetyConfig

    env = make_env(
        EnvConfig(observation="kinematics", vehicles_density=density),
        RewardConfig(),
        safety=SafetyConfig() if monitored else None,
    )
    results = [run_episode(env, RandomPolicy(5), seed) for seed in eval_seeds(episodes)]
    env.close()
    m = summarize(results)
    return {k: m[k] for k in ("episodes", "collision_rate", "collision_rate_ci95", "intervention_rate", "mean_speed")}


def step_times(steps: int, density: float) -> dict:
    """Mean wall time per env step [ms], plain vs monitored, interleaved to share machine noise."""
    from envs import EnvConfig, RewardConfig, make_env
    from envs.config import SafetyConfig

    cfg = EnvConfig(vehicles_density=density)  # camera frames, as the agent trains
    envs = {"plain": make_env(cfg, RewardConfig()), "monitored": make_env(cfg, RewardConfig(), safety=SafetyConfig())}
    totals = {name: 0.0 for name in envs}
    rng = np.random.default_rng(0)
    for env in envs.values():
        env.reset(seed=0)
    done_steps = 0
    while done_steps < steps:
        action = 1 if rng.random() < 0.5 else 4  # gentle driving: long episodes, both envs alike
        for name, env in envs.items():
            start = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(action)
            totals[name] += time.perf_counter() - start
            if terminated or truncated:
                env.reset(seed=done_steps)
        done_steps += 1
    ms = {name: 1000 * t / steps for name, t in totals.items()}
    return {**ms, "overhead": ms["monitored"] / ms["plain"] - 1.0, "steps": steps}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--density", type=float, default=1.5)
    parser.add_argument("--overhead-steps", type=int, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    report = {
        "density": args.density,
        "random_without_monitor": random_driving(args.episodes, args.density, monitored=False),
        "random_with_monitor": random_driving(args.episodes, args.density, monitored=True),
        "step_time_ms": step_times(args.overhead_steps, args.density),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        from envs.io import write_text

        write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
