"""Which meta-actions would be unsafe right now: per-action labels for a learned shield.

A camera policy that has learned what the safety monitor refuses can refuse it itself, and keep doing so
when the monitor is gone. Two ground-truth sources label each of the five meta-actions, for the state the
returned observation shows:

- ``monitor``: the monitor's decision check would refuse it (:class:`envs.safety_monitor.ActionChecker`);
  SLOWER, which the check never refuses, counts as unsafe when even the slowest target speed leaves too
  little room ahead: the state in which the monitor swerves;
- ``replay``: on a copy of the simulator without the monitor, the action followed by the ``continuation``
  crashes within ``horizon`` decisions. The copy shares the env's random state, so the other drivers do what
  they will do: a hindsight label, which sees a leader's braking that no check of the present state can.
  With ``continuation="slower"`` the action is followed by SLOWER, the hardest braking a meta-action asks
  for: a few decisions of it tell whether the action itself was a mistake. With ``"rules"`` the rule-based
  driver (:class:`envs.drivers.OvertakingDriver`) drives on, changing lanes where a gap opens: over a longer
  horizon (~8 decisions) that tells whether the action leads into a trap with no way out, such as being held
  at SLOWER's 20-m/s floor behind a slower car with the next lane blocked, which SLOWER cannot see coming.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from envs.bare_replay import bare_copy, replay_crashes
from envs.config import SafetyConfig
from envs.drivers import DriverParams, OvertakingDriver
from envs.safety_monitor import SLOWER, ActionChecker

N_ACTIONS = 5
RiskSource = Literal["monitor", "replay", "both"]
RISK_SOURCES = ("monitor", "replay", "both")
Continuation = Literal["slower", "rules"]
CONTINUATIONS = ("slower", "rules")


@dataclass(frozen=True)
class RiskSpec:
    """The settings of :class:`ActionRisks` (see there), as a vec env hands them to its workers."""

    source: RiskSource = "monitor"
    horizon: int = 3
    continuation: Continuation = "slower"
    driver: DriverParams | None = None


def monitor_refusals(checker: ActionChecker, ego: Any) -> np.ndarray:
    """1.0 for each meta-action the monitor's check would refuse for ``ego`` now (SLOWER: see module doc)."""
    out = np.zeros(N_ACTIONS, dtype=np.float32)
    for action in range(N_ACTIONS):
        if action == SLOWER:
            lane = getattr(ego, "target_lane_index", ego.lane_index)
            out[action] = checker.front_problem(ego, lane, checker.target_speed(ego, SLOWER)) is not None
        else:
            out[action] = checker.check(ego, action) is not None
    return out


def replay_risks(env: gym.Env, horizon: int, reach: float | None, driver: OvertakingDriver | None = None) -> np.ndarray:
    """1.0 for each meta-action that, then SLOWER (or ``driver``), crashes within ``horizon`` decisions without
    the monitor."""
    then = None if driver is None else driver.act
    return np.array(
        [replay_crashes(bare_copy(env, reach), action, horizon, then) for action in range(N_ACTIONS)],
        dtype=np.float32,
    )


class ActionRisks(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Label every state with the meta-actions that would be unsafe in it.

    - observation, action, reward, termination: unchanged.
    - info: ``action_risks``, five floats (1.0 = unsafe, in DiscreteMetaAction order) for the state the
      returned observation shows, after ``reset`` and after every ``step``. ``monitor`` costs ~0.1 ms a step,
      ``replay`` five copies and up to ``5 * horizon`` simulated decisions (~0.1 s at horizon 3, ~0.2 s at 8
      with the rules).

    :param env: a highway-env environment, with or without the monitor (the replay leaves it out)
    :param source: ``monitor``, ``replay`` or ``both`` (unsafe by either)
    :param safety: the monitor's thresholds for the ``monitor`` labels, and those the rules' proposals pass
    :param horizon: decisions replayed, the labelled one included
    :param reach: the replay copies only the vehicles within this many metres [m] of the ego (None: all)
    :param continuation: who drives the replay after the labelled action: ``slower`` or ``rules``
    :param driver: the rules' style for ``continuation="rules"`` (None: the default style)
    """

    def __init__(
        self,
        env: gym.Env,
        source: RiskSource = "monitor",
        safety: SafetyConfig | None = None,
        horizon: int = 3,
        reach: float | None = 150.0,
        continuation: Continuation = "slower",
        driver: DriverParams | None = None,
    ) -> None:
        if not hasattr(env.unwrapped, "road"):
            raise TypeError("ActionRisks needs a highway-env environment")
        if source not in RISK_SOURCES:
            raise ValueError(f"source: must be one of {', '.join(RISK_SOURCES)}, got {source!r}")
        if not isinstance(env.action_space, gym.spaces.Discrete) or env.action_space.n != N_ACTIONS:
            raise TypeError(f"ActionRisks needs DiscreteMetaAction's {N_ACTIONS} actions, got {env.action_space}")
        if horizon < 1:
            raise ValueError(f"horizon: must be >= 1, got {horizon}")
        if reach is not None and reach <= 0:
            raise ValueError(f"reach: must be > 0 or None, got {reach}")
        if continuation not in CONTINUATIONS:
            raise ValueError(f"continuation: must be one of {', '.join(CONTINUATIONS)}, got {continuation!r}")
        if driver is not None and not isinstance(driver, DriverParams):
            raise TypeError(f"driver must be DriverParams, got {type(driver).__name__}")
        gym.utils.RecordConstructorArgs.__init__(
            self, source=source, safety=safety, horizon=horizon, reach=reach, continuation=continuation, driver=driver
        )
        super().__init__(env)
        self.source, self.horizon, self.reach = source, horizon, reach
        self.checker = ActionChecker(safety or SafetyConfig())
        self.driver = OvertakingDriver(driver, safety) if continuation == "rules" else None

    def risks(self) -> np.ndarray:
        """The labels of the current state."""
        out = np.zeros(N_ACTIONS, dtype=np.float32)
        if self.source in ("monitor", "both"):
            out = np.maximum(out, monitor_refusals(self.checker, self.env.unwrapped.vehicle))
        if self.source in ("replay", "both"):
            out = np.maximum(out, replay_risks(self.env, self.horizon, self.reach, self.driver))
        return out

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "action_risks": self.risks()}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "action_risks": self.risks()}
