"""Reward as a weighted sum of named terms, computed from simulator ground truth.

A term is a function ``(ctx: StepContext) -> float`` registered with
:func:`reward_term` together with its value range (default [0, 1]). Its weight is
the same-named field of :class:`envs.config.RewardConfig`. Adding a term is one
function here plus one field (and YAML key) there.

Potential-based terms (Ng, Harada & Russell 1999) add ``gamma * phi(s') - phi(s)``,
which leaves the optimal policy unchanged; here that is ``headway``. The other
shaping terms (``lane_change``, ``comfort``, ``override``, ``override_repeat``, ``emergency_brake``,
``lane_change_refused``, ``floor_trap``, ``slow_leader``, ``boxed_in``, ``bare_crash``, ``off_road``) are plain
costs: they do change what is optimal, on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from envs.config import RewardConfig
from envs.safety import time_to_collision
from envs.safety_monitor import LANE_LEFT, LANE_RIGHT, SLOWER
from envs.scene import at_speed_floor, boxed_in, ego_ttc, floor_speed, front_ttc, gap_between, neighbours


@dataclass
class StepContext:
    """What a reward term may look at after one decision step."""

    env: Any
    """The unwrapped highway-env ``AbstractEnv`` (ground truth: ``env.vehicle``, ``env.road``)."""
    action: int
    """The action that was executed (after any safety override)."""
    info: dict
    """The step's info (``safety`` is there when the monitor runs)."""
    terminated: bool
    cfg: RewardConfig
    prev: dict[str, Any]
    """The previous step's ``lane``, ``action``, ``danger`` and ``overridden`` (its ``override`` term was 1)."""
    danger: float = 0.0
    """This step's headway danger (see :func:`danger`), computed once per step."""


RewardTerm = Callable[[StepContext], float]
REWARD_TERMS: dict[str, RewardTerm] = {}
TERM_RANGES: dict[str, tuple[float, float]] = {}


def reward_term(name: str, low: float = 0.0, high: float = 1.0) -> Callable[[RewardTerm], RewardTerm]:
    """Register a reward term under ``name`` (must match a RewardConfig field), valued in [low, high]."""

    def register(fn: RewardTerm) -> RewardTerm:
        REWARD_TERMS[name] = fn
        TERM_RANGES[name] = (low, high)
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
    return float(ctx.prev.get("lane") is not None and ego_lane(ctx.env) != ctx.prev["lane"])


@reward_term("off_road")
def off_road(ctx: StepContext) -> float:
    return float(not ctx.env.vehicle.on_road)


@reward_term("comfort")
def comfort(ctx: StepContext) -> float:
    # An action change means a new acceleration or steering command: jerk for the passengers.
    return float(ctx.prev.get("action") is not None and ctx.action != ctx.prev["action"])


@reward_term("override")
def override(ctx: StepContext) -> float:
    safety = ctx.info.get("safety", {})
    if not safety.get("overridden", False):
        return 0.0
    # The emergency brake acts on whatever the policy proposed, so on its steps the cost often prices every
    # action alike; sparing SLOWER makes asking to brake there pay (README, Rewards: what that did).
    asked_to_brake = safety.get("reason") == "emergency_brake" and safety.get("proposed_action") == SLOWER
    return 0.0 if ctx.cfg.override_spares_slower and asked_to_brake else 1.0


@reward_term("override_repeat")
def override_repeat(ctx: StepContext) -> float:
    # Under a shadow monitor an override is a warning the policy may ignore, and the override price alone charges
    # each ignored warning like the first; bare crashes came after two or three of them (docs/experiments.md,
    # session 25). Priced on top, the second ignored warning costs more than the first, before the crash.
    return float(override(ctx) > 0 and ctx.prev.get("overridden", False))


@reward_term("emergency_brake")
def emergency_brake(ctx: StepContext) -> float:
    # The emergency brake fires where an unmonitored policy would have run into the car ahead, so a
    # weight can price those steps like the crash they stand for (README: what that did).
    return float(ctx.info.get("safety", {}).get("emergency_braking", 0) > 0)


@reward_term("lane_change_refused")
def lane_change_refused(ctx: StepContext) -> float:
    # The other half of what the monitor prevents: lane changes into a closing follower or a short
    # gap, which an unmonitored policy completes and crashes in. A lane change off the road is a
    # no-op in highway-env, so its refusal (no_lane) costs nothing here.
    safety = ctx.info.get("safety", {})
    refused = (
        safety.get("proposed_action") in (LANE_LEFT, LANE_RIGHT)
        and safety.get("executed_action") != safety.get("proposed_action")
        and safety.get("reason") != "no_lane"
    )
    return float(refused or safety.get("lane_change_aborts", 0) > 0)


@reward_term("floor_trap")
def floor_trap(ctx: StepContext) -> float:
    # Held at SLOWER's floor and still closing in, the ego's only ways out are a lane change or the
    # monitor's emergency brake; without the monitor these are the bare policy's most common crashes
    # (README, "Where the bare crashes come from"). The cost comes seconds before the brake would fire.
    # Only the lane it is heading for counts: changing lanes out of the trap is the escape, not more of it.
    ego = ctx.env.vehicle
    if ctx.terminated or not at_speed_floor(ego):
        return 0.0
    lane = getattr(ego, "target_lane_index", None) or ego.lane_index
    return float(front_ttc(ctx.env, lane) < ctx.cfg.floor_trap_ttc)


@reward_term("slow_leader")
def slow_leader(ctx: StepContext) -> float:
    # The state that precedes a floor trap: a car ahead slower than SLOWER's floor is caught up with
    # whatever meta-action the ego takes, and the way out is a lane change while a lane is still open.
    # floor_trap's cost comes once that has failed; this one comes while the ego may still be above the
    # floor, further back than gamma 0.8 carries the trap's cost (README, Next steps (1)). The time to
    # close the gap at the floor speed, not the gap, decides: a queue at 19.8 m/s is no trap.
    ego = ctx.env.vehicle
    floor = floor_speed(ego)
    if ctx.terminated or floor is None:
        return 0.0
    lane_index = getattr(ego, "target_lane_index", None) or ego.lane_index
    front, _ = neighbours(ctx.env, lane_index)
    if front is None:
        return 0.0
    gap = gap_between(ctx.env.road.network.get_lane(lane_index), ego, front)
    return float(time_to_collision(gap, floor, front.speed) < ctx.cfg.slow_leader_ttc)


@reward_term("bare_crash")
def bare_crash(ctx: StepContext) -> float:
    # The override term prices a precautionary refusal like a saving brake; this one prices only the
    # overrides whose proposal, replayed without the monitor, crashed (envs.bare_replay): the crashes the
    # bare policy has, seen while the monitor prevents them.
    return float(ctx.info.get("safety", {}).get("bare_crash", False))


@reward_term("boxed_in")
def boxed_in_term(ctx: StepContext) -> float:
    # The floor traps close inside packs, 7-10 decisions before the crash, beyond what gamma 0.8 prices; a
    # driver that plans ahead avoids them by leaving the pack early (docs/experiments.md, session 33). This
    # cost makes time in a pack itself the price, so getting out (ahead, where the road is open) pays now.
    if ctx.terminated:
        return 0.0
    return float(boxed_in(ctx.env, ctx.cfg.boxed_in_reach))


def danger(env: Any, cfg: RewardConfig) -> float:
    """How close the ego is to the vehicle ahead: 0 at TTC >= headway_ttc, 1 at TTC 0."""
    return float(np.clip(1.0 - ego_ttc(env) / cfg.headway_ttc, 0.0, 1.0))


@reward_term("headway", low=-1.0, high=1.0)
def headway(ctx: StepContext) -> float:
    # Potential phi = -danger; F = gamma * phi(s') - phi(s), with phi = 0 after a terminal state.
    now = 0.0 if ctx.terminated else ctx.danger
    return ctx.prev.get("danger", 0.0) - ctx.cfg.shaping_gamma * now


def reward_range(cfg: RewardConfig) -> tuple[float, float]:
    """Lowest and highest weighted sum the terms can reach."""
    low = high = 0.0
    for name, weight in cfg.weights().items():
        a, b = (weight * v for v in TERM_RANGES[name])
        low, high = low + min(a, b), high + max(a, b)
    return low, high


def combine(raw: dict[str, float], cfg: RewardConfig) -> dict[str, float]:
    """Weighted contributions of each term; they sum to the reward.

    With ``cfg.normalize`` each contribution is divided by the reward's range and a
    ``bias`` part shifts the worst case to 0, as highway-env's ``lmap`` does.
    """
    weights = cfg.weights()
    parts = {name: weights[name] * value for name, value in raw.items()}
    if cfg.normalize:
        low, high = reward_range(cfg)
        span = high - low if high > low else 1.0
        parts = {name: value / span for name, value in parts.items()}
        parts["bias"] = -low / span
    return parts


class NamedRewardWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Replace highway-env's reward with a weighted sum of named terms.

    - observation, action, termination: unchanged.
    - reward: ``sum(info["reward_terms"].values())``.
    - info: adds ``reward_terms`` (weighted contributions, plus ``bias`` when
      normalized) and ``reward_raw`` (each term's unweighted value).

    :param env: a highway-env environment (possibly wrapped)
    :param cfg: the term weights
    """

    def __init__(self, env: gym.Env, cfg: RewardConfig) -> None:
        if not isinstance(cfg, RewardConfig):
            raise TypeError(f"cfg must be a RewardConfig, got {type(cfg).__name__}")
        if not hasattr(env.unwrapped, "road"):
            raise TypeError("NamedRewardWrapper needs a highway-env environment")
        gym.utils.RecordConstructorArgs.__init__(self, cfg=cfg)
        super().__init__(env)
        self.cfg = cfg
        self._prev: dict[str, Any] = {}

    def _remember(self, action: int | None, now_danger: float, overridden: bool = False) -> None:
        lane = ego_lane(self.env.unwrapped)
        self._prev = {"lane": lane, "action": action, "danger": now_danger, "overridden": overridden}

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        self._remember(None, danger(self.env.unwrapped, self.cfg))
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, _, terminated, truncated, info = self.env.step(action)
        executed = int(info.get("safety", {}).get("executed_action", action))
        now_danger = danger(self.env.unwrapped, self.cfg)  # a road scan: once per step, shared below
        ctx = StepContext(self.env.unwrapped, executed, info, terminated, self.cfg, self._prev, now_danger)
        raw = {name: float(term(ctx)) for name, term in REWARD_TERMS.items()}
        parts = combine(raw, self.cfg)
        self._remember(executed, now_danger, overridden=raw["override"] > 0)
        info = dict(info, reward_raw=raw, reward_terms=parts)
        return obs, float(sum(parts.values())), terminated, truncated, info
