"""Camera frames from inside a decision: the simulator's intermediate steps, not only its last.

highway-fast-v0 decides once per second and simulates five steps in between; the camera stack
keeps one frame per decision. The dashed lane lines repeat every 4.33 m, so frames 1 s apart show
the ego's own speed only modulo 4.33 m/s (at 25 m/s the stripes move 5.77 periods between them).
A frame 0.4 s before the newest one tells the periods apart: over 0.4 s, speeds of 20-30 m/s move
the stripes 8-12 m, a spread under one period.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class _SubstepHook:
    """Stands in for ``road.step``: the road's own step, then the wrapper's frame grab.

    A plain object rather than a closure, so that ``copy.deepcopy`` (a planner copying the env to
    look ahead) rebinds it to the copied road and wrapper.
    """

    def __init__(self, road: Any, wrapper: IntraDecisionFrames) -> None:
        self.road = road
        self.wrapper = wrapper

    def __call__(self, dt: float) -> None:
        type(self.road).step(self.road, dt)
        self.wrapper._after_substep()


class IntraDecisionFrames(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Add camera frames rendered at simulation steps inside the last decision.

    - observation: ``(stack, W, H)`` becomes ``(stack + len(lags), W, H)``; the extra frames, the
      scene ``lag`` seconds before the newest frame, go just before it, oldest first, so channels
      stay in time order. At reset, before any step, they are blank, as highway-env leaves the
      older frames of its stack. Space rebuilt.
    - action, reward, termination, info: unchanged; the simulation is untouched (frames are only read).

    :param env: a highway-env env with ``GrayscaleObservation`` camera frames
    :param lags: seconds before the newest frame, each a multiple of the simulation step and shorter
        than the decision period (highway-fast-v0: 0.2, 0.4, 0.6 or 0.8)
    """

    def __init__(self, env: gym.Env, lags: list[float]) -> None:
        base = env.unwrapped
        if not hasattr(base, "road") or not hasattr(base, "config"):
            raise TypeError("IntraDecisionFrames needs a highway-env environment")
        if type(base.observation_type).__name__ != "GrayscaleObservation":
            raise ValueError("IntraDecisionFrames needs camera frames (GrayscaleObservation)")
        substeps = int(base.config["simulation_frequency"] // base.config["policy_frequency"])
        dt = 1.0 / base.config["simulation_frequency"]
        self._grab_after = self._substeps_for(lags, substeps, dt)
        gym.utils.RecordConstructorArgs.__init__(self, lags=lags)
        super().__init__(env)
        space = env.observation_space
        shape = (space.shape[0] + len(lags), *space.shape[1:])
        self.observation_space = gym.spaces.Box(0, 255, shape, np.uint8)
        self._frames: dict[int, np.ndarray] = {}
        self._substep = 0
        self._hooked: Any = None

    @staticmethod
    def _substeps_for(lags: list[float], substeps: int, dt: float) -> list[int]:
        """After which simulation step of a decision (1-based) each lag's frame is taken, oldest first."""
        if not lags:
            raise ValueError("lags: give at least one lag [s]")
        if len(set(lags)) != len(lags):
            raise ValueError(f"lags: repeated lag in {lags}")
        after = []
        for lag in sorted(lags, reverse=True):
            steps_before = lag / dt
            if lag <= 0 or abs(steps_before - round(steps_before)) > 1e-6 or round(steps_before) >= substeps:
                decision = substeps * dt
                raise ValueError(
                    f"lags: {lag} s is not a positive multiple of the simulation step ({dt:g} s) "
                    f"shorter than a decision ({decision:g} s)"
                )
            after.append(substeps - round(steps_before))
        return after

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        self._hook(self.env.unwrapped.road)
        self._frames = {}
        return self._with_frames(obs), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        base = self.env.unwrapped
        if base.road is not self._hooked:
            self._hook(base.road)
        self._frames, self._substep = {}, 0
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._with_frames(obs), reward, terminated, truncated, info

    def _hook(self, road: Any) -> None:
        road.step = _SubstepHook(road, self)
        self._hooked = road

    def _after_substep(self) -> None:
        self._substep += 1
        if self._substep in self._grab_after:
            self._frames[self._substep] = self._render()

    def _render(self) -> np.ndarray:
        observation = self.env.unwrapped.observation_type
        render = getattr(observation, "_render_to_grayscale", None)
        if render is None:  # a planner's copy observes blank frames: nothing to draw
            return np.zeros(self.observation_space.shape[1:], np.uint8)
        return render()

    def _with_frames(self, obs: np.ndarray) -> np.ndarray:
        blank = np.zeros(obs.shape[1:], np.uint8)
        extra = [self._frames.get(after, blank) for after in self._grab_after]
        return np.concatenate([obs[:-1], np.stack(extra), obs[-1:]], axis=0)
