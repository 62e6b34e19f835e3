"""What an override hid: replaying a monitored step without the monitor.

The safety monitor makes every policy look safe, whether its proposals were or not, and the ``override``
reward term prices a precautionary refusal the same as a brake that saved the ego from the car ahead.
On a step the monitor overrides, :class:`BareReplay` replays that step from a copy of the simulator taken
just before it, on the bare env: the proposed action, then SLOWER (the hardest braking a meta-action asks
for) for the rest of ``horizon`` decisions. If the copy crashes, the override averted a crash that the
same proposal would have had without the monitor: the ``bare_crash`` reward term can price it like one.

The copy shares the env's random state, so the other drivers behave as they would have.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym

from envs.planner import planning_copy
from envs.safety_monitor import SLOWER, SafetyMonitor


def bare_copy(env: gym.Env, reach: float | None = None) -> gym.Env:
    """A copy of ``env``'s simulator as it is now, without the wrappers above it or the monitor's reflexes.

    :param reach: copy only the vehicles within this many metres [m] of the ego (None: all)
    """
    twin = planning_copy(env.unwrapped, reach)
    vars(twin.road).pop("act", None)  # the monitor's reflex hook: the class's own act drives the copy
    return twin


class ReplayOutcome(NamedTuple):
    """How a replay went."""

    crashed: bool
    decisions: int
    """Decisions driven before it crashed or ended (the crashing one excluded)."""
    speed_sum: float
    """The ego's speed [m/s] summed over those decisions."""


def replay_outcome(twin: gym.Env, action: int, horizon: int, then: Callable[[Any], int] | None = None) -> ReplayOutcome:
    """How ``twin`` (a :func:`bare_copy`) fares over ``horizon`` decisions under ``action``, then SLOWER.

    :param then: what drives after ``action``: a function of the unwrapped simulator returning a meta-action
        (e.g. a rule-based driver's ``act``); None = SLOWER
    """
    speed_sum = 0.0
    for decision in range(horizon):
        _, _, terminated, truncated, info = twin.step(action)
        if info.get("crashed", False):
            return ReplayOutcome(True, decision, speed_sum)
        speed_sum += float(info.get("speed", 0.0))
        if terminated or truncated:
            return ReplayOutcome(False, decision + 1, speed_sum)
        action = SLOWER if then is None else then(twin.unwrapped)
    return ReplayOutcome(False, horizon, speed_sum)


def replay_crashes(twin: gym.Env, action: int, horizon: int, then: Callable[[Any], int] | None = None) -> bool:
    """Whether ``twin`` (a :func:`bare_copy`) crashes within ``horizon`` decisions under ``action``, then SLOWER
    (or ``then``: see :func:`replay_outcome`)."""
    return replay_outcome(twin, action, horizon, then).crashed


class BareReplay(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Mark the overrides whose proposal, executed without the monitor, would have crashed.

    - observation, action, reward, termination: unchanged.
    - info: ``safety["bare_crash"]``, True on an overridden step whose bare replay crashed, False on every
      other step. Costs one copy of the simulator per step (~1 ms) and a replay per override (~3 ms a decision).

    :param env: the safety monitor, directly (the replay runs on the simulator below it)
    :param horizon: decisions replayed, the proposed one included
    :param reach: copy only the vehicles within this many metres [m] of the ego (None: all)
    """

    skipped_when_planning = True
    """A planner's copy of the env (:func:`envs.planner.planning_copy`) leaves this wrapper out."""

    def __init__(self, env: gym.Env, horizon: int = 3, reach: float | None = 150.0) -> None:
        if not isinstance(env, SafetyMonitor):
            raise TypeError(f"BareReplay must wrap the SafetyMonitor directly, got {type(env).__name__}")
        if horizon < 1:
            raise ValueError(f"horizon: must be >= 1, got {horizon}")
        if reach is not None and reach <= 0:
            raise ValueError(f"reach: must be > 0 or None, got {reach}")
        gym.utils.RecordConstructorArgs.__init__(self, horizon=horizon, reach=reach)
        super().__init__(env)
        self.horizon, self.reach = horizon, reach

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        before = bare_copy(self.env, self.reach)
        obs, reward, terminated, truncated, info = self.env.step(action)
        safety = dict(info["safety"])
        safety["bare_crash"] = bool(safety["overridden"]) and replay_crashes(before, int(action), self.horizon)
        return obs, reward, terminated, truncated, {**info, "safety": safety}
