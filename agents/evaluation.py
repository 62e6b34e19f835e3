"""Deterministic evaluation episodes on held-out seeds and their metrics.

Return alone hides degenerate policies (always-SLOWER scores well and never
crashes), so every summary reports crash rate and mean speed next to it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from envs.safety_monitor import LANE_LEFT, LANE_RIGHT, REFLEX_REASONS
from envs.scene import boxed_in, crash_kind, ego_ttc, placements

EVAL_SEED_BASE = 1_000_000
"""Evaluation seeds start here; training seeds are validated to stay below."""

StepHook = Callable[[Any, Any, float, dict], None]
"""Called after every decision step with (obs, action, reward, info)."""


@dataclass
class EpisodeResult:
    """One evaluation episode."""

    seed: int
    episode_return: float = 0.0
    crashed: bool = False
    crash_kind: str = ""
    """How it crashed (one of ``envs.scene.CRASH_KINDS``); "" if it did not."""
    speeds: list[float] = field(default_factory=list)
    """Ego speed [m/s] after every decision step."""
    boxed_in: list[bool] = field(default_factory=list)
    """After every decision step: whether traffic ahead blocked its lane and the adjacent ones (envs.scene)."""
    distance: float = 0.0
    """Distance travelled along the road [m]."""
    lane_changes: int = 0
    floor_traps: int = 0
    """Steps that ended held at the speed floor closing in on a slower car (the ``floor_trap`` reward term's 1s)."""
    slow_leaders: int = 0
    """Steps that ended behind a car slower than the speed floor, close ahead (the ``slow_leader`` term's 1s)."""
    interventions: int = 0
    """Steps on which the safety monitor overrode the policy."""
    vetoes: int = 0
    """Steps on which the policy's learned shield replaced its first choice (``agents.shield``)."""
    hidden_crashes: int | None = None
    """Overrides whose proposal, replayed without the monitor, crashed (``envs.bare_replay``); None: no replay ran."""
    flagged_lane_changes: int = 0
    """Lane changes the policy proposed and the monitor's decision check refused (under a shadow monitor: would
    have refused, and they ran)."""
    flagged_lane_change_crashes: int = 0
    """Of those, the ones whose step ended in a crash (only a shadow monitor lets them run)."""
    intervention_reasons: dict[str, int] = field(default_factory=dict)
    """Those steps counted by the monitor's reason (``rss_front``, ``emergency_brake``, ...)."""
    min_ttc: float = math.inf
    """Smallest time-to-collision [s] seen after any decision step."""
    reward_terms: dict[str, float] = field(default_factory=dict)
    """Each reward term's contribution, summed over the episode."""

    @property
    def steps(self) -> int:
        return len(self.speeds)

    @property
    def mean_speed(self) -> float:
        return float(np.mean(self.speeds)) if self.speeds else 0.0

    def row(self) -> dict[str, Any]:
        """The per-episode record of metrics.json."""
        return {
            "seed": self.seed,
            "return": self.episode_return,
            "crashed": self.crashed,
            "crash_kind": self.crash_kind,
            "mean_speed": self.mean_speed,
            "steps": self.steps,
            "distance": self.distance,
            "lane_changes": self.lane_changes,
            "floor_traps": self.floor_traps,
            "slow_leaders": self.slow_leaders,
            "interventions": self.interventions,
            "vetoes": self.vetoes,
            "hidden_crashes": self.hidden_crashes,
            "flagged_lane_changes": self.flagged_lane_changes,
            "min_ttc": None if math.isinf(self.min_ttc) else self.min_ttc,
        }


def _hidden_crashes(results: list[EpisodeResult]) -> dict[str, Any]:
    """Overrides that hid a crash, and the share of episodes with at least one (None without the replay)."""
    replayed = [r.hidden_crashes for r in results if r.hidden_crashes is not None]
    if not replayed:
        return {"hidden_crashes": None, "hidden_crash_episodes": None}
    return {"hidden_crashes": sum(replayed), "hidden_crash_episodes": sum(n > 0 for n in replayed) / len(replayed)}


def flagged_lane_change(safety: dict[str, Any]) -> bool:
    """Whether a step's ``info["safety"]`` says the policy proposed a lane change that the monitor's decision check
    refused, or in shadow mode would have. A lane change off the road (``no_lane``) is a no-op, not a risk."""
    reason = safety.get("reason")
    return (
        safety.get("proposed_action") in (LANE_LEFT, LANE_RIGHT)
        and bool(safety.get("overridden", False))
        and reason not in (*REFLEX_REASONS, "no_lane")
    )


def eval_seeds(n: int, offset: int = 0) -> list[int]:
    """``n`` held-out seeds, distinct from every training seed."""
    return [EVAL_SEED_BASE + offset + i for i in range(n)]


def run_episode(
    env: gym.Env,
    policy: Any,
    seed: int,
    on_step: StepHook | None = None,
    on_reset: Callable[[Any], None] | None = None,
) -> EpisodeResult:
    """Play one episode of ``policy`` from ``env.reset(seed=seed)``.

    :param policy: a callable obs -> action; its ``reset(env, seed)`` runs after the reset if present
    :param on_step: optional hook after every decision step (e.g. the video recorder)
    :param on_reset: optional hook with the first observation
    """
    obs, _ = env.reset(seed=seed)
    if hasattr(policy, "reset"):
        policy.reset(env, seed)
    if on_reset is not None:
        on_reset(obs)
    base = env.unwrapped
    start_x = float(base.vehicle.position[0])
    result, done = EpisodeResult(seed=seed), False
    while not done:
        action = policy(obs)
        result.vetoes += int(getattr(policy, "vetoed", False))
        before = placements(base)
        obs, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        result.episode_return += float(reward)
        result.speeds.append(float(info["speed"]))
        result.boxed_in.append(boxed_in(base))
        if info.get("crashed", False) and not result.crashed:
            result.crashed, result.crash_kind = True, crash_kind(base, before)
        result.lane_changes += int(info.get("reward_raw", {}).get("lane_change", 0.0))
        result.floor_traps += int(info.get("reward_raw", {}).get("floor_trap", 0.0))
        result.slow_leaders += int(info.get("reward_raw", {}).get("slow_leader", 0.0))
        safety = info.get("safety", {})
        if "bare_crash" in safety:
            result.hidden_crashes = (result.hidden_crashes or 0) + int(safety["bare_crash"])
        if flagged_lane_change(safety):
            result.flagged_lane_changes += 1
            result.flagged_lane_change_crashes += int(bool(info.get("crashed", False)))
        if safety.get("overridden", False):
            result.interventions += 1
            reason = str(safety.get("reason") or "unknown")
            result.intervention_reasons[reason] = result.intervention_reasons.get(reason, 0) + 1
        result.min_ttc = min(result.min_ttc, ego_ttc(base))
        for name, value in info.get("reward_terms", {}).items():
            result.reward_terms[name] = result.reward_terms.get(name, 0.0) + float(value)
        if on_step is not None:
            on_step(obs, action, float(reward), info)
    result.distance = float(base.vehicle.position[0]) - start_x
    return result


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (well-behaved at 0 and n)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(values: np.ndarray, z: float = 1.96) -> tuple[float, float]:
    """95 % normal-approximation interval of a mean."""
    if values.size < 2:
        return (float(values.mean()), float(values.mean())) if values.size else (0.0, 0.0)
    half = z * values.std(ddof=1) / math.sqrt(values.size)
    return (float(values.mean() - half), float(values.mean() + half))


def _reason_totals(results: list[EpisodeResult]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for r in results:
        for reason, count in r.intervention_reasons.items():
            totals[reason] = totals.get(reason, 0) + count
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def _crash_kinds(results: list[EpisodeResult]) -> dict[str, int]:
    kinds = Counter(r.crash_kind for r in results if r.crashed)
    return dict(kinds.most_common())


def _traffic_split(results: list[EpisodeResult], speeds: np.ndarray) -> dict[str, float | None]:
    """Share of steps boxed in by traffic, and the mean speed on those steps and on the others.

    :param speeds: every step's speed, in the order of ``results``
    """
    boxed = np.concatenate([r.boxed_in for r in results]).astype(bool)
    if boxed.size != speeds.size or not speeds.size:
        return {"boxed_in_share": None, "speed_boxed_in": None, "speed_free": None}
    return {
        "boxed_in_share": float(boxed.mean()),
        "speed_boxed_in": float(speeds[boxed].mean()) if boxed.any() else None,
        "speed_free": float(speeds[~boxed].mean()) if (~boxed).any() else None,
    }


def summarize(results: list[EpisodeResult]) -> dict[str, Any]:
    """Aggregate metrics; ``mean_speed`` averages every decision step of every episode."""
    if not results:
        return {"episodes": 0}
    returns = np.array([r.episode_return for r in results])
    crashes = sum(r.crashed for r in results)
    steps = sum(r.steps for r in results)
    all_speeds = np.concatenate([r.speeds for r in results])
    terms = sorted({name for r in results for name in r.reward_terms})
    ttcs = [r.min_ttc for r in results if not math.isinf(r.min_ttc)]
    return {
        "episodes": len(results),
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "mean_return_ci95": list(mean_interval(returns)),
        "collision_rate": crashes / len(results),
        "collision_rate_ci95": list(wilson_interval(crashes, len(results))),
        "mean_speed": float(all_speeds.mean()) if all_speeds.size else 0.0,
        "mean_distance": float(np.mean([r.distance for r in results])),
        "mean_length": steps / len(results),
        "lane_changes_per_episode": float(np.mean([r.lane_changes for r in results])),
        "intervention_rate": sum(r.interventions for r in results) / steps if steps else 0.0,
        "veto_rate": sum(r.vetoes for r in results) / steps if steps else 0.0,
        "floor_trap_share": sum(r.floor_traps for r in results) / steps if steps else 0.0,
        "slow_leader_share": sum(r.slow_leaders for r in results) / steps if steps else 0.0,
        **_hidden_crashes(results),
        "flagged_lane_changes_per_episode": float(np.mean([r.flagged_lane_changes for r in results])),
        "flagged_lane_change_crashes": sum(r.flagged_lane_change_crashes for r in results),
        "interventions_by_reason": _reason_totals(results),
        "crashes_by_kind": _crash_kinds(results),
        **_traffic_split(results, all_speeds),
        "min_ttc": min(ttcs) if ttcs else None,
        "reward_terms": {name: float(np.mean([r.reward_terms.get(name, 0.0) for r in results])) for name in terms},
        "seeds": [r.seed for r in results],
    }
