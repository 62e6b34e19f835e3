"""Camera sensor faults: dropout (blank frames), Gaussian noise and frozen frames."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.config import FaultsConfig


class CameraFaults(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Corrupt the newest frame of a stacked camera observation.

    - observation: the newest frame (last in the stack) is blanked with probability
      ``dropout``, else repeats the previous frame with probability ``freeze``, then
      gets Gaussian noise of std ``noise_std``; older frames keep what they showed.
      Space unchanged.
    - action, reward, termination, info: unchanged. Ground truth, which the safety
      monitor reads, is untouched: only the camera channel degrades.

    :param env: an env with uint8 (stack, width, height) camera observations
    :param cfg: fault rates
    :param seed: seed of the fault process (re-seeded by ``reset(seed=...)``)
    """

    def __init__(self, env: gym.Env, cfg: FaultsConfig, seed: int | None = None) -> None:
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or space.dtype != np.uint8 or len(space.shape) != 3:
            raise ValueError(f"CameraFaults needs stacked uint8 camera frames, got {space}")
        if not isinstance(cfg, FaultsConfig):
            raise TypeError(f"cfg must be a FaultsConfig, got {type(cfg).__name__}")
        gym.utils.RecordConstructorArgs.__init__(self, cfg=cfg, seed=seed)
        super().__init__(env)
        self.cfg = cfg
        self.rng = np.random.default_rng(seed)
        self._stack: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        if seed is not None:
            self.rng = np.random.default_rng([seed, 7])  # independent of the traffic's stream
        self._stack = None
        return super().reset(seed=seed, options=options)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        clean = observation[-1]
        if self._stack is None:
            self._stack = observation.copy()
        stack = np.roll(self._stack, -1, axis=0)
        frame = clean.astype(np.float32)
        roll = self.rng.random()
        if roll < self.cfg.dropout:
            frame = np.zeros_like(frame)
        elif roll < self.cfg.dropout + self.cfg.freeze:
            frame = stack[-2].astype(np.float32)
        if self.cfg.noise_std > 0:
            frame = frame + self.rng.normal(0.0, self.cfg.noise_std, frame.shape)
        stack[-1] = np.clip(frame, 0, 255).astype(np.uint8)
        self._stack = stack
        return stack.copy()
