"""The expert's advice for imitation: what the teacher would do in the state just reached."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.drivers import OvertakingDriver
from envs.guard import GuardedDriver, GuardParams
from envs.planner import LookaheadPlanner, PlannerParams

Expert = OvertakingDriver | GuardedDriver | LookaheadPlanner


class ExpertAdvice(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Tell the learner what the expert would do next (for imitation).

    - observation, action, reward, termination: unchanged.
    - info: ``expert_action``, the expert's meta-action for the state just reached, and
      ``target_speed_index``, the ego's current index into its target speeds (what FASTER and
      SLOWER move, and the frames do not show), after ``reset`` and after every ``step`` that does
      not end the episode, while
      ``advising`` is true (set it false, e.g. with ``venv.set_attr("advising", False)``, once
      the advice is no longer needed), on a random share ``advice_rate`` of those states (drawn
      from a generator seeded by ``reset(seed=...)``), which bounds a planning expert's cost.

    :param env: a highway-env env with ``DiscreteMetaAction`` actions
    :param driver: the expert: the rule-based :class:`OvertakingDriver` (default settings if None), a
        :class:`GuardedDriver`, the rules vetoed where their bare replay crashes, or a :class:`LookaheadPlanner`,
        which plans on a copy of ``env`` (monitor included where it has one)
    :param advice_rate: share of states advised, in (0, 1]
    """

    def __init__(self, env: gym.Env, driver: Expert | None = None, advice_rate: float = 1.0) -> None:
        base = env.unwrapped
        if not hasattr(base, "road"):
            raise TypeError("ExpertAdvice needs a highway-env environment")
        if type(base.action_type).__name__ != "DiscreteMetaAction":
            raise ValueError("ExpertAdvice needs DiscreteMetaAction actions")
        if driver is not None and not isinstance(driver, Expert):
            raise TypeError(
                f"driver must be an OvertakingDriver, GuardedDriver or LookaheadPlanner, got {type(driver).__name__}"
            )
        if not 0 < advice_rate <= 1:
            raise ValueError(f"advice_rate: must be in (0, 1], got {advice_rate}")
        gym.utils.RecordConstructorArgs.__init__(self, driver=driver, advice_rate=advice_rate)
        super().__init__(env)
        self.driver: Expert = driver or OvertakingDriver()
        self.advising = True
        self.advice_rate = advice_rate
        self._rng = np.random.default_rng()

    def teach_with(self, planner: PlannerParams | GuardParams | None) -> None:
        """Change the expert (e.g. between a warm start and PPO): a :class:`LookaheadPlanner` or a
        :class:`GuardedDriver` with these settings over the current rule-based driver, or that driver alone
        (None). Its style and monitor stay."""
        if planner is not None and not isinstance(planner, PlannerParams | GuardParams):
            raise TypeError(f"planner must be PlannerParams, GuardParams or None, got {type(planner).__name__}")
        rules = self.driver if isinstance(self.driver, OvertakingDriver) else self.driver.driver
        if planner is None:
            self.driver = rules
        elif isinstance(planner, PlannerParams):
            self.driver = LookaheadPlanner.from_params(planner, rules)
        else:
            self.driver = GuardedDriver(rules, planner)

    def _advise(self, info: dict) -> dict:
        if not self.advising or (self.advice_rate < 1 and self._rng.random() >= self.advice_rate):
            return info
        base = self.env.unwrapped  # DiscreteMetaAction (checked in __init__): the ego has a speed index
        # the planners copy the simulator from the stack; the rules read it
        action = self.driver.act(base if isinstance(self.driver, OvertakingDriver) else self.env)
        return {**info, "expert_action": action, "target_speed_index": int(base.vehicle.speed_index)}

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        if kwargs.get("seed") is not None:
            self._rng = np.random.default_rng(kwargs["seed"])
        obs, info = self.env.reset(**kwargs)
        return obs, self._advise(info)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:  # the next state is the reset's, advised there: spare the planner
            return obs, reward, terminated, truncated, info
        return obs, reward, terminated, truncated, self._advise(info)
