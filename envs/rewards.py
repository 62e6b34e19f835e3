"""Reward as a weighted sum of named terms, computed from simulator ground truth.

A term is a function ``(ctx: StepContext) -> float`` with a value in [0, 1],
registered with :func:`reward_term`. Its weight is the same-named field of
:class:`envs.config.RewardConfig`. Adding a term is one function here plus one
field (and YAML key) there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from envs.config import RewardConfig


@dataclass
class StepContext:
    """What a reward term may look at after one decision step."""

    env: Any
    """The unwrapped highway-env ``AbstractEnv`` (ground truth: ``env.vehicle``, ``env.road``)."""
    action: Any
    """The action that was executed."""
    prev_lane: int | None
    """Ego's target lane index before the step."""
    cfg: RewardConfig


RewardTerm = Callable[[StepContext], float]
REWARD_TERMS: dict[str, RewardTerm] = {}


def reward_term(name: str) -> Callable[[RewardTerm], RewardTerm]:
    """Register a reward term under ``name`` (must match a RewardConfig field)."""

    def register(fn: RewardTerm) -> RewardTerm:
        REWARD_TERMS[name] = fn
        return fn

    return register


def ego_lane(env: Any) -> int:
    """Index of the lane the ego is in or heading to (0 = leftmost)."""
    vehicle = env.vehicle
    lane_index = getattr(vehicle, "target_lane_index", None) or vehicle.lane_index
    return int(lane_index[2])


@reward_term("collision")
def collision(ctx: StepContext) -> float:
    return float(ctx.env.vehicle.crashed)


@reward_term("high_speed")
def high_speed(ctx: StepContext) -> float:
    # Forward speed, so that weaving across lanes does not pay (highway-env issue 268).
    vehicle = ctx.env.vehicle
    forward_speed = vehicle.speed * np.cos(vehicle.heading)
    low, high = ctx.cfg.speed_range
    return float(np.clip((forward_speed - low) / (high - low), 0.0, 1.0))


@reward_term("right_lane")
def right_lane(ctx: StepContext) -> float:
    vehicle = ctx.env.vehicle
    side_lanes = ctx.env.road.network.all_side_lanes(vehicle.lane_index)
    return ego_lane(ctx.env) / max(len(side_lanes) - 1, 1)


@reward_term("lane_change")
def lane_change(ctx: StepContext) -> float:
    return float(ctx.prev_lane is not None and ego_lane(ctx.env) != ctx.prev_lane)


@reward_term("off_road")
def off_road(ctx: StepContext) -> float:
    return float(not ctx.env.vehicle.on_road)


def combine(raw: dict[str, float], cfg: RewardConfig) -> dict[str, float]:
    """Weighted contributions of each term; they sum to the reward.

    With ``cfg.normalize`` each contribution is divided by the reward's range and a
    ``bias`` part shifts the worst case to 0, as highway-env's ``lmap`` does.
    """
    weights = cfg.weights()
    parts = {name: weights[name] * value for name, value in raw.items()}
    if cfg.normalize:
        low = sum(w for w in weights.values() if w < 0)
        high = sum(w for w in weights.values() if w > 0)
        span = high - low if high > low else 1.0
        parts = {name: value / span for name, value in parts.items()}
        parts["bias"] = -low / span
    return parts


class NamedRewardWrapper(gym.Wrapper):
    """Replace highway-env's reward with a weighted sum of named terms.

    - observation, action, termination: unchanged.
    - reward: ``sum(info["reward_terms"].values())``.
    - info: adds ``reward_terms`` (weighted contributions, plus ``bias`` when
      normalized) and ``reward_raw`` (each term's unweighted value in [0, 1]).

    :param env: a highway-env environment (possibly wrapped)
    :param cfg: the term weights
    """

    def __init__(self, env: gym.Env, cfg: RewardConfig) -> None:
        if not isinstance(cfg, RewardConfig):
            raise TypeError(f"cfg must be a RewardConfig, got {type(cfg).__name__}")
        if not hasattr(env.unwrapped, "road"):
            raise TypeError("NamedRewardWrapper needs a highway-env environment")
        super().__init__(env)
        self.cfg = cfg
        self._prev_lane: int | None = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        self._prev_lane = ego_lane(self.env.unwrapped)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, _, terminated, truncated, info = self.env.step(action)
        env = self.env.unwrapped
        ctx = StepContext(env=env, action=action, prev_lane=self._prev_lane, cfg=self.cfg)
        raw = {name: float(term(ctx)) for name, term in REWARD_TERMS.items()}
        parts = combine(raw, self.cfg)
        self._prev_lane = ego_lane(env)
        info = dict(info, reward_raw=raw, reward_terms=parts)
        return obs, float(sum(parts.values())), terminated, truncated, info
