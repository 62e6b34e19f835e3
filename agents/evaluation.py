"""Deterministic evaluation episodes on held-out seeds: return, crash rate, speed.

Return alone hides degenerate policies (always-SLOWER scores well and never
crashes), so every summary reports crash rate and mean speed next to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np

EVAL_SEED_BASE = 1_000_000
"""Evaluation seeds start here; training seeds are validated to stay below."""

Policy = Callable[[Any], Any]
"""Maps one observation to one action."""


@dataclass
class EpisodeResult:
    """One evaluation episode."""

    seed: int
    episode_return: float
    crashed: bool
    steps: int
    speeds: list[float]
    """Ego speed [m/s] after every decision step."""

    @property
    def mean_speed(self) -> float:
        return float(np.mean(self.speeds)) if self.speeds else 0.0


def eval_seeds(n: int, offset: int = 0) -> list[int]:
    """``n`` held-out seeds, distinct from every training seed."""
    return [EVAL_SEED_BASE + offset + i for i in range(n)]


def run_episode(env: gym.Env, policy: Policy, seed: int) -> EpisodeResult:
    """Play one episode with ``policy`` from ``env.reset(seed=seed)``."""
    obs, _ = env.reset(seed=seed)
    total, speeds, crashed, done = 0.0, [], False, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        total += float(reward)
        speeds.append(float(info["speed"]))
        crashed = crashed or bool(info.get("crashed", False))
        done = terminated or truncated
    return EpisodeResult(seed, total, crashed, len(speeds), speeds)


def evaluate(env: gym.Env, policy: Policy, seeds: list[int]) -> list[EpisodeResult]:
    return [run_episode(env, policy, seed) for seed in seeds]


def summarize(results: list[EpisodeResult]) -> dict[str, Any]:
    """Aggregate metrics; ``mean_speed`` averages every decision step of every episode."""
    if not results:
        return {"episodes": 0}
    returns = np.array([r.episode_return for r in results])
    all_speeds = np.concatenate([r.speeds for r in results if r.speeds] or [np.zeros(0)])
    return {
        "episodes": len(results),
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "collision_rate": float(np.mean([r.crashed for r in results])),
        "mean_speed": float(all_speeds.mean()) if all_speeds.size else 0.0,
        "mean_length": float(np.mean([r.steps for r in results])),
        "seeds": [r.seed for r in results],
    }


def episode_rows(results: list[EpisodeResult]) -> list[dict[str, Any]]:
    """Per-episode rows for JSON/CSV (speeds reduced to their mean)."""
    rows = []
    for r in results:
        row = asdict(r)
        row.pop("speeds")
        row["mean_speed"] = r.mean_speed
        rows.append(row)
    return rows
